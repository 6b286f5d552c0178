"""Default caps on what one ingest body may cost the decoder; the settings (api/settings.py) override them.

Kept free of heavy imports so that the settings can take their defaults from here.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_INLINE_DECODE_BYTES", "DEFAULT_MAX_ARROW_BYTES", "DEFAULT_MAX_EXTRA_KEYS"]

#: Distinct extra (attribute) field names one batch may use: each one is a column while attributes
#: are assembled, and a map key in storage.
DEFAULT_MAX_EXTRA_KEYS: Final = 1_000
#: Decoded size of an Arrow IPC body's buffers (compressed ones counted expanded), checked from the
#: stream's metadata before any buffer is decompressed: the JSON body limit's counterpart.
DEFAULT_MAX_ARROW_BYTES: Final = 64 * 1024 * 1024
#: JSON/NDJSON bodies up to this (decompressed) size are decoded on the event loop; a hostile body
#: of this size costs at most a few tens of milliseconds there (api/routes/ingest.py).
DEFAULT_INLINE_DECODE_BYTES: Final = 512 * 1024
