"""Decoded JSON events -> one Arrow array per input field, plus the attributes map, built column-wise.

The batch's union of keys is computed once (in C); each canonical field is then pulled out of every
event with one `map(dict.get, ...)` when the batch uses one spelling of it (the normal case), and per
event only when a batch mixes spellings. Values of the wrong JSON type become per-event errors and
nulls; the rest of validation runs vectorised on the arrays (api/ingest/validation.py).

Numbers arrive as `msgspec.Raw` (their text as sent) or int (see api/ingest/json_input.py); an int 0
where the text is kept sets `zero_ints`, because it may have been sent as `-0`. A huge int (100
digits or more) in a cell value is not converted back to text here (CPython's int -> str is
quadratic in the digits: 4,300 of them cost ~0.3 ms); it sets `huge_ints`, and the body is read
again by the exact path, which keeps every number's text without converting it. (In attributes
msgspec's encoder converts them: msgspec refuses integers past 4,300 digits, which bounds that.)
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any, Final

import msgspec
import numpy as np
import pyarrow as pa

from api.ingest.body_errors import check_extra_keys
from api.ingest.limits import DEFAULT_MAX_EXTRA_KEYS
from api.ingest.normalize import ALIASES, FIELD_OF_ALIAS, json_text, value_text
from storage.schema import INTEGER_INPUT_FIELDS, MAX_SESSION_SEQ

__all__ = ["RawColumns", "TypeIssue", "columns_from_events"]

_VALUE_FIELDS: Final = frozenset({"old_value", "new_value"})
#: Fields that are JSON integers (session_seq), never text: not part of the one-struct conversion.
_INTEGER_FIELDS: Final = frozenset(INTEGER_INPUT_FIELDS)
_INT_KINDS: Final[frozenset[type]] = frozenset({int, type(None)})
_INTEGER_MESSAGE: Final = f"must be an integer from 0 to {MAX_SESSION_SEQ}"
_INTEGER_TEXT: Final = re.compile(r"-?[0-9]{1,19}")
#: Attributes are built key by key while the key x event grid is at most this many times the
#: batch's keys (each event's keys, canonical ones included), else event by event.
_GRID_PER_KEY: Final = 4
_MISSING: Final = object()
_HUGE: Final = 10**99
#: Stands for a huge int's text until the exact path replaces the whole batch.
_HUGE_TEXT: Final = "\x00huge integer\x00"


_TEXT_KINDS: Final[frozenset[type]] = frozenset({str, type(None)})
_SCALAR_KINDS: Final[frozenset[type]] = _TEXT_KINDS | frozenset({bool, int, msgspec.Raw})
_encode_scalar: Final = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class TypeIssue:
    """A per-event problem found before validation: wrong JSON type, oversize event."""

    field: str | None
    message: str


@dataclass(slots=True)
class RawColumns:
    """Input fields as Arrow arrays (timestamp may be text or timestamp-typed) and the issues so far.

    `zero_ints`: an integer 0 was decoded in a cell value or an attribute, whose text may have been `-0`;
    `huge_ints`: a cell value holds an int of 100 digits or more, not converted to text.
    """

    length: int
    arrays: dict[str, pa.Array]
    attributes: pa.Array
    issues: dict[int, TypeIssue] = field(default_factory=dict)
    zero_ints: bool = False
    huge_ints: bool = False

    def add_issue(self, index: int, field_name: str | None, message: str) -> None:
        """Record `message` unless the event already has an issue (the first problem is reported)."""
        self.issues.setdefault(index, TypeIssue(field_name, message))


def columns_from_events(
    events: list[dict[str, Any]], *, max_extra_keys: int = DEFAULT_MAX_EXTRA_KEYS
) -> RawColumns:
    """Column-wise extraction; `events` must all be dicts (the caller checks).

    Raises:
        ApiError: 413 `too_many_attribute_keys` when the batch uses more than `max_extra_keys`
            distinct extra field names (checked before any attribute is built).
    """
    keys = set().union(*events)
    check_extra_keys(sum(1 for k in keys if k not in FIELD_OF_ALIAS), max_extra_keys)
    out = RawColumns(len(events), {}, pa.array([], pa.map_(pa.string(), pa.string())))
    spelled = {name: [a for a in aliases if a in keys] for name, aliases in ALIASES.items()}
    plain = _plain_strings(events, spelled)
    for name, present in spelled.items():
        array = plain.get(name)
        out.arrays[name] = array if array is not None else _to_array(_pull(events, present), name, out)
    extras = sorted(k for k in keys if k not in FIELD_OF_ALIAS)
    out.attributes = _attributes(events, extras, out)
    return out


def _plain_strings(events: list[dict[str, Any]], spelled: dict[str, list[str]]) -> dict[str, pa.Array]:
    """Every text field spelled one way in the batch, converted by one Arrow struct conversion.

    The usual batch (one spelling per field, strings or null) becomes Arrow in C, without a Python
    list per field; a batch where some value is not a string (an issue to report per event) or a
    field has several spellings takes the per-field path for those (empty result here).
    """
    single = {name: present[0] for name, present in spelled.items() if len(present) == 1}
    texts = [
        (name, key)
        for name, key in single.items()
        if name not in _VALUE_FIELDS and name not in _INTEGER_FIELDS
    ]
    if not texts or any(len(present) > 1 for present in spelled.values()):
        return {}
    struct = pa.struct([(key, pa.string()) for _, key in texts])
    try:
        converted = pa.array(events, type=struct)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return {}
    return {name: converted.field(i) for i, (name, _) in enumerate(texts)}


def _pull(events: list[dict[str, Any]], present: list[str]) -> list[Any]:
    """One field's values in event order; with mixed spellings, the key last in the event wins."""
    if not present:
        return [None] * len(events)
    if len(present) == 1:
        return list(map(dict.get, events, repeat(present[0])))
    chosen = set(present)
    values: list[Any] = []
    for event in events:
        value = None
        for key, item in event.items():
            if key in chosen:
                value = item
        values.append(value)
    return values


def _to_array(values: list[Any], name: str, out: RawColumns) -> pa.Array:
    """Strings straight to Arrow; any other type is converted (cell values) or becomes an issue."""
    kinds = set(map(type, values))
    if name in _INTEGER_FIELDS:
        return _integers(values, kinds, name, out)
    if kinds <= _TEXT_KINDS:
        return pa.array(values, type=pa.string())
    if name in _VALUE_FIELDS and kinds <= _SCALAR_KINDS:
        return _scalar_texts(values, kinds, out)
    convert = _value_or_issue if name in _VALUE_FIELDS else _string_or_issue
    return pa.array([convert(v, i, name, out) for i, v in enumerate(values)], type=pa.string())


def _scalar_texts(values: list[Any], kinds: set[type], out: RawColumns) -> pa.Array:
    """Cell values of scalar JSON types as their text, one msgspec encoder call each.

    The encoder writes a `Raw` number as sent, an int in digits and a bool as true/false. Ints are
    looked at first: a huge one is never converted (see the module doc), a 0 may have been `-0`.
    """
    if int in kinds:
        ints = [v for v in values if type(v) is int]
        if 0 in ints:
            out.zero_ints = True
        if any(not -_HUGE < v < _HUGE for v in ints):
            out.huge_ints = True
            return pa.nulls(len(values), pa.string())  # the exact path decodes the body again
    texts = [v if v is None or v.__class__ is str else _encode_scalar(v).decode() for v in values]
    return pa.array(texts, pa.string())


def _integers(values: list[Any], kinds: set[type], name: str, out: RawColumns) -> pa.Array:
    """An integer field as int64: ints (and nulls) in one conversion, anything else per value.

    Range (0 to 2**63 - 1) is checked by validation on the array; here only what is no integer at
    all: a string, a boolean, a fraction or exponent (`3.0` is `Raw`), a huge integer. The exact
    decoding path hands every number over as `Raw`, whose text must then be plain digits.
    """
    if kinds <= _INT_KINDS:
        try:
            return pa.array(values, type=pa.int64())
        except (OverflowError, pa.ArrowInvalid):
            pass  # an int beyond int64: that value's error, found below
    return pa.array([_int_or_issue(v, i, name, out) for i, v in enumerate(values)], type=pa.int64())


def _int_or_issue(value: Any, index: int, name: str, out: RawColumns) -> int | None:
    if value is None:
        return None
    if type(value) is msgspec.Raw:
        text = bytes(value).decode()
        value = int(text) if _INTEGER_TEXT.fullmatch(text) else None
    if type(value) is int and -MAX_SESSION_SEQ - 1 <= value <= MAX_SESSION_SEQ:
        return value  # a negative one is flagged by validation, with the range
    out.add_issue(index, name, _INTEGER_MESSAGE)
    return None


def _string_or_issue(value: Any, index: int, name: str, out: RawColumns) -> str | None:
    if value is None or type(value) is str:
        return value
    out.add_issue(index, name, _type_message(name))
    return None


def _value_or_issue(value: Any, index: int, name: str, out: RawColumns) -> str | None:
    if type(value) is int and not -_HUGE < value < _HUGE:
        out.huge_ints = True
        return _HUGE_TEXT
    try:
        text = value_text(value)
    except TypeError as exc:
        out.add_issue(index, name, str(exc))
        return None
    if text == "0" and type(value) is int:
        out.zero_ints = True
    return text


def _type_message(name: str) -> str:
    if name == "timestamp":
        return "must be an ISO-8601 date-time string"
    if name == "event_id":
        return "must be a UUID string"
    return "must be a string"


def _attributes(events: list[dict[str, Any]], extras: list[str], out: RawColumns) -> pa.Array:
    """map<string,string> of every non-field key -> compact JSON text, keys in sorted order per event.

    Two ways to the same map, chosen so that the cost is linear in the batch's key/value pairs:
    by key (each extra key one column, interleaved row-major with one numpy index and one Arrow
    `take`; fastest when a few keys recur in most events, the add-in's case) unless the batch's
    key x event grid would be much larger than its pairs (many keys, each in few events), then by
    event (each event's own extra keys, sorted).
    """
    n = len(events)
    if not extras:
        offsets = pa.array(np.zeros(n + 1, dtype=np.int32))
        return pa.MapArray.from_arrays(offsets, pa.array([], pa.string()), pa.array([], pa.string()))
    if len(extras) * n > _GRID_PER_KEY * sum(map(len, events)):
        return _attributes_by_event(events, out)
    flat = pa.concat_arrays(
        [
            _encode_column(list(map(dict.get, events, repeat(key), repeat(_MISSING))), key, out)
            for key in extras
        ]
    )
    present = np.asarray(flat.is_valid()).reshape(len(extras), n).T
    rows, columns = np.nonzero(present)  # row-major: each event's keys in `extras` (sorted) order
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(present.sum(axis=1), out=offsets[1:])
    names = pa.array(extras, pa.string()).take(pa.array(columns))
    return pa.MapArray.from_arrays(pa.array(offsets), names, flat.take(pa.array(columns * n + rows)))


def _attributes_by_event(events: list[dict[str, Any]], out: RawColumns) -> pa.Array:
    """The attributes map built event by event: linear in the pairs, however many distinct keys."""
    fields = FIELD_OF_ALIAS.keys()
    own_keys = [sorted(event.keys() - fields) for event in events]
    counts = np.fromiter(map(len, own_keys), dtype=np.int64, count=len(events))
    names = list(chain.from_iterable(own_keys))
    values = list(chain.from_iterable(map(map, map(operator.attrgetter("__getitem__"), events), own_keys)))
    try:
        encoded: list[bytes | None] = list(map(json_text, values))
    except RecursionError:
        owners = np.repeat(np.arange(len(events)), counts).tolist()
        encoded = [_text_or_issue(v, owners[i], names[i], out) for i, v in enumerate(values)]
    _flag_numbers(encoded, out)
    offsets = np.zeros(len(events) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.MapArray.from_arrays(
        pa.array(offsets), pa.array(names, pa.string()), pa.array(encoded, pa.string())
    )


def _encode_column(values: list[Any], key: str, out: RawColumns) -> pa.Array:
    """JSON text per value (null where the key is absent).

    Fast paths: a column of one string everywhere (an add-in version) is repeated in C; a column of
    strings is encoded once per distinct value and mapped in C. (Only for str: a set would merge 1
    and True, whose texts differ.)
    """
    try:
        distinct = set(values)
    except TypeError:
        distinct = None
    if distinct is not None and len(distinct) == 1 and type(value := next(iter(distinct))) is str:
        return pa.repeat(pa.scalar(json_text(value).decode(), pa.string()), len(values))
    if distinct is not None and all(type(v) is str or v is _MISSING for v in distinct):
        texts: dict[object, bytes | None] = {v: json_text(v) for v in distinct if v is not _MISSING}
        texts[_MISSING] = None
        return pa.array(list(map(texts.__getitem__, values)), pa.string())
    try:
        encoded = [None if v is _MISSING else json_text(v) for v in values]
    except RecursionError:
        encoded = [_text_or_issue(v, i, key, out) for i, v in enumerate(values)]
    _flag_numbers(encoded, out)
    return pa.array(encoded, pa.string())


def _flag_numbers(encoded: list[bytes | None], out: RawColumns) -> None:
    """Set `zero_ints` from a column of attribute texts (see the module doc)."""
    if not out.zero_ints and _may_hold_zero(encoded):
        out.zero_ints = True


def _may_hold_zero(texts: list[bytes | None]) -> bool:
    """Whether an int 0 may be among these JSON texts: one is `0`, or an array/object text holds a 0."""
    return b"0" in texts or any(t[:1] in (b"[", b"{") and b"0" in t for t in texts if t)


def _text_or_issue(value: Any, index: int, key: str, out: RawColumns) -> bytes | None:
    """JSON text of one value; a value that decoded but nests too deeply to encode is the event's error."""
    if value is _MISSING:
        return None
    try:
        return json_text(value)
    except RecursionError:
        out.add_issue(index, key, "is nested too deeply")
        return None
