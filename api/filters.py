"""Parse the contract's read filters, from a query string or a JSON body, into `EventFilter` + paging.

Both request forms funnel into one mapping of snake_case name -> list of raw values, so the two
endpoints cannot drift apart. Every bad value becomes a 400 `invalid_query` listing each problem;
nothing a client sends can reach a store unvalidated or turn into a 500.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from api.errors import ApiError
from storage.base import EventFilter, Order, SessionFilter
from storage.schema import STRING_LIMITS

__all__ = [
    "DEFAULT_LIMIT",
    "JSON_MAX_LIMIT",
    "LIST_FIELDS",
    "MAX_LIST_VALUES",
    "SCALAR_FIELDS",
    "STREAM_MAX_LIMIT",
    "VALUE_LIMITS",
    "RawParams",
    "ReadQuery",
    "int_param",
    "parse_event_query",
    "parse_filter",
    "parse_session_query",
    "parse_timestamp",
    "raw_from_body",
    "raw_from_query",
    "single",
]

DEFAULT_LIMIT: Final = 100
JSON_MAX_LIMIT: Final = 10_000
STREAM_MAX_LIMIT: Final = 1_000_000
MAX_LIST_VALUES: Final = 1_000
MAX_TIMESTAMP_CHARS: Final = 64

# Filter bounds are clamped into a range every engine can bind (ClickHouse DateTime64 starts in
# 1900); stored events lie in [2000, now + 24 h], so clamping never changes which rows match.
_LOWEST: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_HIGHEST: Final = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)

LIST_FIELDS: Final[dict[str, str]] = {
    "event_type": "event_types",
    "user_name": "user_names",
    "workbook_name": "workbook_names",
    "sheet_name": "sheet_names",
}
SCALAR_FIELDS: Final[tuple[str, ...]] = (
    "machine_name",
    "session_id",
    "correlation_id",
    "cell_address",
    "text",
)
#: Longest accepted value per filter: the column's own limit (a longer value cannot match anyway).
VALUE_LIMITS: Final[dict[str, int]] = {
    **{name: STRING_LIMITS[name][1] for name in (*LIST_FIELDS, *SCALAR_FIELDS) if name in STRING_LIMITS},
    "text": STRING_LIMITS["new_value"][1],
}

RawParams = dict[str, list[Any]]

_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class ReadQuery:
    """A parsed read: the filter, the page size and order, and the client's cursor token (if any)."""

    flt: EventFilter
    limit: int
    order: Order
    cursor: str | None


def snake_name(key: str) -> str:
    """`eventType` / `EventType` / `event_type` -> `event_type`, so .NET clients may send any."""
    return _CAMEL_BOUNDARY.sub("_", key).lower()


def raw_from_query(items: Iterable[tuple[str, str]]) -> RawParams:
    """Group a query string's items by snake_case name; repeated names make a list.

    Values are never split on commas: workbook paths and multi-area addresses contain them.
    Empty values (`?user_name=`) count as absent, as HTML forms send them.
    """
    raw: RawParams = {}
    for key, value in items:
        if value != "":
            raw.setdefault(snake_name(key), []).append(value)
    return raw


def raw_from_body(body: object) -> RawParams:
    """Group a JSON body's fields by snake_case name; a list value stays a list, null is absent."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_query", "the request body must be a JSON object of filters")
    raw: RawParams = {}
    for key, value in body.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        raw.setdefault(snake_name(str(key)), []).extend(values)
    return raw


def parse_timestamp(value: object, name: str) -> dt.datetime:
    """ISO-8601 with `Z`, an offset or none (= UTC), up to 7 fractional digits -> aware UTC.

    Raises:
        ValueError: with a client-facing message when the text is not such a timestamp.
    """
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_CHARS:
        raise ValueError(f"{name} must be an ISO-8601 date-time string")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        parsed = parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{name} is not an ISO-8601 date-time: {value!r}") from exc
    return min(max(parsed, _LOWEST), _HIGHEST)


class _Collector:
    """Collects per-parameter problems so a client learns about all of them in one 400."""

    def __init__(self, raw: RawParams) -> None:
        self.raw = raw
        self.errors: list[dict[str, str]] = []

    def fail(self, name: str, message: str) -> None:
        self.errors.append({"field": name, "message": message})

    def strings(self, name: str) -> tuple[str, ...]:
        values = self.raw.get(name, [])
        if len(values) > MAX_LIST_VALUES:
            self.fail(name, f"at most {MAX_LIST_VALUES} values")
            return ()
        limit = VALUE_LIMITS.get(name, 1024)
        out: list[str] = []
        for value in values:
            if not isinstance(value, str):
                self.fail(name, "values must be strings")
            elif len(value) > limit:
                self.fail(name, f"values must be at most {limit} characters")
            else:
                out.append(value)
        return tuple(dict.fromkeys(out))

    def one(self, name: str) -> Any:
        values = self.raw.get(name, [])
        if len(values) > 1:
            self.fail(name, "takes a single value")
            return None
        return values[0] if values else None

    def string(self, name: str) -> str | None:
        if len(self.raw.get(name, [])) > 1:
            self.fail(name, "takes a single value")
            return None
        found = self.strings(name)
        return found[0] if found else None

    def timestamp(self, name: str) -> dt.datetime | None:
        value = self.one(name)
        if value is None:
            return None
        try:
            return parse_timestamp(value, name)
        except ValueError as exc:
            self.fail(name, str(exc))
            return None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.one(name)
        if value is None:
            return default
        try:
            return int_param(value, name, low, high)
        except ValueError as exc:
            self.fail(name, str(exc))
            return default

    def order(self) -> Order:
        value = self.one("order")
        if value is None or value == "desc":
            return "desc"
        if value == "asc":
            return "asc"
        self.fail("order", "must be 'asc' or 'desc'")
        return "desc"

    def raise_if_failed(self) -> None:
        if self.errors:
            fields = ", ".join(dict.fromkeys(e["field"] for e in self.errors))
            raise ApiError(400, "invalid_query", f"invalid query parameters: {fields}", details=self.errors)


def int_param(value: object, name: str, low: int, high: int) -> int:
    """An integer in [low, high] from query text or JSON (booleans and floats with fractions refused).

    Raises:
        ValueError: with a client-facing message.
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        number = int(value) if re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value) else None
    if number is None or not low <= number <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")
    return number


def single(raw: RawParams, name: str) -> Any:
    """The one value of `name`, or None; a repeated name is a 400."""
    values = raw.get(name, [])
    if len(values) > 1:
        raise ApiError(
            400,
            "invalid_query",
            f"{name} takes a single value",
            details=[{"field": name, "message": "repeated"}],
        )
    return values[0] if values else None


def _event_filter(c: _Collector) -> EventFilter:
    return EventFilter(
        start=c.timestamp("from"),
        end=c.timestamp("to"),
        event_types=c.strings("event_type"),
        user_names=c.strings("user_name"),
        workbook_names=c.strings("workbook_name"),
        sheet_names=c.strings("sheet_name"),
        machine_name=c.string("machine_name"),
        session_id=c.string("session_id"),
        correlation_id=c.string("correlation_id"),
        cell_address=c.string("cell_address"),
        text=c.string("text"),
    )


def parse_event_query(raw: RawParams, *, max_limit: int = JSON_MAX_LIMIT) -> ReadQuery:
    """The event filter, limit, order and cursor of a read; every problem reported at once."""
    c = _Collector(raw)
    flt = _event_filter(c)
    limit = c.integer("limit", DEFAULT_LIMIT, 1, max_limit)
    order = c.order()
    cursor = c.one("cursor")
    if cursor is not None and not isinstance(cursor, str):
        c.fail("cursor", "must be a string")
        cursor = None
    c.raise_if_failed()
    return ReadQuery(flt=flt, limit=limit, order=order, cursor=cursor)


def parse_filter(raw: RawParams) -> EventFilter:
    """Only the event filter (stats, timeseries, exports): paging parameters are not read."""
    c = _Collector(raw)
    flt = _event_filter(c)
    c.raise_if_failed()
    return flt


def parse_session_query(raw: Mapping[str, list[Any]]) -> tuple[SessionFilter, int, str | None]:
    """The sessions listing's filter (user_name, from, to), limit and cursor token."""
    c = _Collector(dict(raw))
    flt = SessionFilter(user_name=c.string("user_name"), start=c.timestamp("from"), end=c.timestamp("to"))
    limit = c.integer("limit", DEFAULT_LIMIT, 1, JSON_MAX_LIMIT)
    cursor = c.one("cursor")
    if cursor is not None and not isinstance(cursor, str):
        c.fail("cursor", "must be a string")
        cursor = None
    c.raise_if_failed()
    return flt, limit, cursor
