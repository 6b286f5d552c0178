"""Numbers and booleans keep their JSON text as sent: cell values, attributes (also nested), every form.

The contract stores numbers in old_value/new_value and in attributes as their JSON text; the text
is the one in the body, byte for byte (no float or int round trip: `1e-400`, `-0`, `1E+2` and
30-digit integers stay what they were). Bodies are built as text here, so that any literal the JSON
grammar allows can be sent, not only the ones Python's json module writes.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.errors import ApiError
from api.ingest.decoding import DecodedBatch, decode_batch

NOW = dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.UTC)


def decode(body: bytes, kind: Literal["json", "ndjson"] = "json") -> DecodedBatch:
    return decode_batch(body, kind, max_events=10_000, header_batch_id="b", received_at=NOW, now=NOW)


def event_text(new: str = '"v"', old: str = "null", extra: str = '"x"', **more: str) -> str:
    """One event as compact JSON text with the given raw JSON texts spliced in."""
    fields = [
        '"timestamp":"2025-06-03T08:06:01Z"',
        '"event_type":"cell_change"',
        '"user_name":"u"',
        f'"old_value":{old}',
        f'"new_value":{new}',
        f'"Extra":{extra}',
    ]
    fields += [f"{json.dumps(k)}:{v}" for k, v in more.items()]
    return "{" + ",".join(fields) + "}"


def stored(batch: DecodedBatch) -> list[dict[str, Any]]:
    assert batch.errors == ()
    rows: list[dict[str, Any]] = batch.table.to_pylist()
    return rows


EXAMPLES = [
    "0",
    "-0",
    "-0.0",
    "0.0",
    "0e0",
    "-0E-0",
    "1e-400",
    "-1e-400",
    "1e400",
    "1E+2",
    "1e+20",
    "1e20",
    "0.1e1",
    "2.50",
    "100",
    "-3.75",
    "3.14159265358979323846264338327950288",
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "18446744073709551616",
    "-9223372036854775809",
    "true",
    "false",
]


@pytest.mark.parametrize("literal", EXAMPLES)
@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_literal_kept_in_values_and_attributes(literal: str, kind: Literal["json", "ndjson"]) -> None:
    text = event_text(new=literal, old=literal, extra=literal, Nested=f'{{"a": [{literal}, -0, 1]}}')
    body = text if kind == "ndjson" else f"[{text}]"
    (row,) = stored(decode(body.encode(), kind))
    assert (row["old_value"], row["new_value"]) == (literal, literal)
    attributes = dict(row["attributes"])
    assert attributes["Extra"] == literal
    assert attributes["Nested"] == f'{{"a":[{literal},-0,1]}}'


def test_negative_zero_beside_zero_and_zero_strings() -> None:
    """-0 is told apart from 0 in the same batch, and from strings that merely contain "-0,"."""
    events = [
        event_text(new="0", old="-0", extra='"a -0, b"'),
        event_text(new='"-0,"', old="0", extra="[0, -0]"),
        event_text(new="-0", old='"0"', extra="0"),
    ]
    rows = stored(decode(("[" + ",\n".join(events) + "]").encode()))
    assert [(r["old_value"], r["new_value"]) for r in rows] == [("-0", "0"), ("0", "-0,"), ("0", "-0")]
    assert [dict(r["attributes"])["Extra"] for r in rows] == ['"a -0, b"', "[0,-0]", "0"]


def test_pretty_printed_negative_zero() -> None:
    body = b'[\n  {\n    "timestamp": "2025-06-03T08:06:01Z", "event_type": "x", "user_name": "u",\n' + (
        b'    "new_value": -0\n  },\n  {"timestamp": "2025-06-03T08:06:02Z", "event_type": "x",'
        b' "user_name": "u", "new_value": -0\t, "K": [ -0 ]}\n]'
    )
    rows = stored(decode(body))
    assert [r["new_value"] for r in rows] == ["-0", "-0"]
    assert dict(rows[1]["attributes"]) == {"K": "[-0]"}


@pytest.mark.parametrize("digits", [99, 100, 4000, 5000])
@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_huge_integers_keep_their_text(kind: Literal["json", "ndjson"], digits: int) -> None:
    """Huge ints take the exact path: int -> str is quadratic, and refused past 4300 digits."""
    big = "9" * digits
    text = event_text(new=big, old="-" + big, extra=f"[{big}]")
    body = text if kind == "ndjson" else f'{{"events": [{text}]}}'
    (row,) = stored(decode(body.encode(), kind))
    assert (row["new_value"], row["old_value"]) == (big, "-" + big)
    assert dict(row["attributes"])["Extra"] == f"[{big}]"


def test_huge_integer_body_still_refuses_what_is_not_json() -> None:
    """The exact re-read taken for huge integers is as strict as the fast one."""
    big = "9" * 5000
    for bad in (r'"\ud800"', "NaN", "Infinity", '"a\x01b"', "[1,]"):
        body = f"[{event_text(new=big, extra=bad)}]".encode()
        with pytest.raises(ApiError) as info:
            decode(body)
        assert (info.value.status, info.value.code) == (400, "invalid_body"), bad


def test_value_over_the_cell_limit_is_an_event_error() -> None:
    body = f"[{event_text(new='1' + '0' * 32767)}, {event_text()}]".encode()
    batch = decode(body)
    assert [(e.index, e.field) for e in batch.errors] == [(0, "new_value")]


# --- any valid JSON number literal round-trips byte for byte ---------------------------------------

_digits = st.text("0123456789", min_size=1, max_size=30)
_int_part = st.one_of(
    st.just("0"),
    st.builds(lambda d, rest: d + rest, st.sampled_from("123456789"), st.text("0123456789", max_size=30)),
)


@st.composite
def json_numbers(draw: st.DrawFn) -> str:
    """Any literal of RFC 8259's number grammar: -? int frac? exp?, exponent with e/E and an optional sign."""
    sign = draw(st.sampled_from(["", "-"]))
    fraction = draw(st.one_of(st.just(""), _digits.map(lambda d: "." + d)))
    exponent = ""
    if draw(st.booleans()):
        exponent = draw(st.sampled_from("eE")) + draw(st.sampled_from(["", "+", "-"])) + draw(_digits)
    return sign + draw(_int_part) + fraction + exponent


_PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(st.lists(json_numbers(), min_size=1, max_size=6), st.sampled_from(["json", "ndjson"]))
def test_any_number_literal_round_trips_exactly(literals: list[str], kind: Literal["json", "ndjson"]) -> None:
    texts = [
        event_text(new=n, old=literals[i - 1], extra=f'{{"n": {n}}}', **{f"K{i}": n})
        for i, n in enumerate(literals)
    ]
    body = "\n".join(texts) if kind == "ndjson" else "[" + ", ".join(texts) + "]"
    rows = stored(decode(body.encode(), kind))
    for i, (row, literal) in enumerate(zip(rows, literals, strict=True)):
        assert (row["new_value"], row["old_value"]) == (literal, literals[i - 1])
        assert dict(row["attributes"]) == {"Extra": f'{{"n":{literal}}}', f"K{i}": literal}
