"""Fixed-width byte views of Arrow string columns, for format checks in numpy instead of regex kernels.

Arrow's regex kernels compile the pattern on every call (0.1-0.7 ms each here), more than the whole
check costs when the column's bytes are viewed as an (n, width) uint8 matrix and tested per position.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

__all__ = ["DIGIT", "HEX", "byte_matrix"]

DIGIT: Final = np.zeros(256, dtype=bool)
DIGIT[ord("0") : ord("9") + 1] = True
HEX: Final = DIGIT.copy()
HEX[ord("a") : ord("f") + 1] = True
HEX[ord("A") : ord("F") + 1] = True


def byte_lengths_of(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(start, byte length) of each value of a string column, from its offsets (null values: length 0)."""
    n = len(strings)
    offsets_buffer = strings.buffers()[1]
    if offsets_buffer is None:  # an all-null array may come without offsets
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[strings.offset : strings.offset + n + 1]
    return offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64)


def byte_matrix(strings: pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, width) uint8 matrix of each value's first `width` bytes (0-padded), and each value's byte length.

    Null values have length 0. `strings` must be of Arrow type string.
    """
    n = len(strings)
    data_buffer = strings.buffers()[2]
    starts, lengths = byte_lengths_of(strings)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    if data.size == 0:
        return np.zeros((n, width), dtype=np.uint8), lengths
    if n and (lengths == width).all():  # every value exactly `width` bytes, back to back: a plain view
        first = int(starts[0])
        return data[first : first + n * width].reshape(n, width), lengths
    columns = np.arange(width)
    matrix = data[np.minimum(starts[:, None] + columns, data.size - 1)]
    matrix[columns >= lengths[:, None]] = 0
    return matrix, lengths
