"""Per-value normalisation shared by every input format: field-name aliases, event types, value text, ids.

These are the small pure functions the contract defines once (`CellChange` -> `cell_change`, numbers
stored as their JSON text, absent ids derived as UUIDv5 of the content), kept apart from the
column-wise decoder so that the rules can be read and tested on their own.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Final

import msgspec

from storage.schema import INPUT_FIELDS

__all__ = [
    "ALIASES",
    "EVENT_ID_NAMESPACE",
    "FIELD_OF_ALIAS",
    "derive_event_id",
    "json_text",
    "normalize_event_type",
    "raw_text",
    "value_text",
]

#: Fixed namespace of derived event ids. Never change it: retried batches must derive the same ids.
EVENT_ID_NAMESPACE: Final = uuid.UUID("6f1d3c0e-8b9a-5c41-9a3e-2f7b0d6c4e15")


def _aliases(field: str) -> tuple[str, ...]:
    """snake_case, camelCase and PascalCase spellings of `field`, plus the .NET `…ID` habit."""
    parts = field.split("_")
    camel = parts[0] + "".join(p.capitalize() for p in parts[1:])
    pascal = "".join(p.capitalize() for p in parts)
    names = [field, camel, pascal]
    if field.endswith("_id"):
        names += [camel[:-2] + "ID", pascal[:-2] + "ID"]
    return tuple(dict.fromkeys(names))


#: Canonical field -> every accepted spelling of it.
ALIASES: Final[dict[str, tuple[str, ...]]] = {f: _aliases(f) for f in INPUT_FIELDS}
#: Accepted spelling -> canonical field.
FIELD_OF_ALIAS: Final[dict[str, str]] = {a: f for f, names in ALIASES.items() for a in names}

#: Word boundaries, each found in one pass with fixed-width lookarounds (linear in the text: the
#: former `([A-Z]+)([A-Z][a-z])` backtracked over every upper-case run, quadratic in its length):
#: before the last capital of a run that starts a word (`XMLImport` -> `XML_Import`), and between a
#: lower-case letter or digit and a capital (`cellChange` -> `cell_Change`).
_ACRONYM_WORD = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")
_LOWER_UPPER = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\W_]+")


@lru_cache(maxsize=4096)
def normalize_event_type(value: str) -> str:
    """Lower snake_case: `CellChange`, `cell-change`, `CELL_CHANGE`, `cell change` -> `cell_change`.

    Cached because a batch carries a handful of distinct types thousands of times. Linear in the
    text; the decoder only hands it types within the 64-character limit anyway.
    """
    text = _ACRONYM_WORD.sub("_", value)
    text = _LOWER_UPPER.sub("_", text)
    return _SEPARATORS.sub("_", text).strip("_").lower()


_encode = msgspec.json.Encoder().encode

#: Compact JSON text of a decoded JSON value (UTF-8, non-ASCII unescaped: one form per value); the
#: encoder's own method, so that `map(json_text, values)` runs without a Python frame per value.
json_text: Final[Callable[[object], bytes]] = _encode


def raw_text(value: msgspec.Raw) -> str:
    """The text of a number as it was sent (json_input decodes non-integer numbers to `Raw`)."""
    return bytes(value).decode()


def value_text(value: object) -> str | None:
    """old_value/new_value as stored: strings as-is, numbers/booleans as their JSON text, null stays null.

    Numbers come as `msgspec.Raw` (their text as sent) or int (whose text is `str`; `-0` and huge
    integers come as `Raw`, see api/ingest/json_input.py).

    Raises:
        TypeError: for arrays and objects, which the contract does not allow as cell values.
    """
    if value is None or type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is msgspec.Raw:
        return raw_text(value)
    raise TypeError("must be a string, number, boolean or null")


_sorted_encode = msgspec.json.Encoder(order="sorted").encode


def derive_event_id(content: Mapping[str, object]) -> str:
    """UUIDv5 of the canonical JSON (sorted keys, no nulls) of a normalised event's stored content.

    `content` holds the stored values without event_id/received_at/batch_id; the timestamp is given
    as integer microseconds since the epoch (UTC), so every spelling of one instant derives one id.
    Same as `uuid.uuid5(EVENT_ID_NAMESPACE, canonical_json)`, without the detour through str.
    """
    canonical = _sorted_encode({k: v for k, v in content.items() if v is not None})
    digest = hashlib.sha1(EVENT_ID_NAMESPACE.bytes + canonical, usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))
