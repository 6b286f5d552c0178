"""What the contract (api.md) says each route takes, written from the contract, not from the code.

The published schema must declare all of it, so that schemathesis, which generates only what a
schema declares, exercises every parameter and body; `undeclared` names what is missing.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["CONTRACT_BODIES", "CONTRACT_PARAMETERS", "undeclared"]

_FILTERS: Final = (
    "from",
    "to",
    "event_type",
    "user_name",
    "workbook_name",
    "sheet_name",
    "machine_name",
    "session_id",
    "correlation_id",
    "cell_address",
    "text",
)
_LIST_FILTERS: Final = ("event_type", "user_name", "workbook_name", "sheet_name")

#: (method, path) -> query parameters the contract gives that route.
CONTRACT_PARAMETERS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("get", "/api/events"): (*_FILTERS, "order", "limit", "cursor"),
    ("get", "/api/events/stream"): _FILTERS,  # "same filters"; resumed with Last-Event-ID
    ("get", "/api/cells/history"): ("workbook_name", "sheet_name", "cell_address"),
    ("get", "/api/stats"): (*_FILTERS, "top"),
    ("get", "/api/stats/timeseries"): (*_FILTERS, "bucket", "group_by"),
    ("get", "/api/sessions"): ("user_name", "from", "to", "limit", "cursor"),
    # Verifiable history (api.md "Verifiable history")
    ("get", "/api/log/checkpoint"): (),
    ("get", "/api/log/key"): (),
    ("get", "/api/events/{event_id}/proof"): (),
    ("get", "/api/log/consistency"): ("from", "to"),
    ("get", "/api/cells/state"): ("workbook_name", "sheet_name", "cell_address", "at"),
    ("get", "/api/workbooks/state"): ("workbook_name", "at"),
}
#: Routes where workbook_name / sheet_name name one cell or workbook: single values, not lists.
_SINGLE_VALUED: Final = ("/api/cells/history", "/api/cells/state", "/api/workbooks/state")
#: (method, path) -> (media types, JSON body fields) of the request bodies the contract defines.
CONTRACT_BODIES: Final[dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]]] = {
    ("post", "/api/events"): (
        ("application/json", "application/x-ndjson", "application/vnd.apache.arrow.stream"),
        (),
    ),
    ("post", "/api/events/query"): (("application/json",), (*_FILTERS, "order", "limit", "cursor")),
    ("post", "/api/exports"): (("application/json",), (*_FILTERS, "destination")),
}


def _body_fields(schema: dict[str, Any]) -> set[str]:
    return set(schema.get("properties", {}))


def undeclared(published: dict[str, Any]) -> list[str]:
    """Every contract parameter, list filter, body media type or body field the schema lacks."""
    missing: list[str] = []
    paths = published["paths"]
    for (method, path), names in CONTRACT_PARAMETERS.items():
        params = {p["name"]: p for p in paths[path][method].get("parameters", []) if p["in"] == "query"}
        missing += [f"{method} {path}: parameter {n}" for n in names if n not in params]
        if path not in _SINGLE_VALUED:  # the cell's (workbook's) keys are single values there
            for name in set(_LIST_FILTERS) & set(params):
                schema = params[name]["schema"]
                if path != "/api/sessions" and (schema.get("type") != "array" or not params[name]["explode"]):
                    missing.append(f"{method} {path}: {name} is not a repeatable list")
    for (method, path), (media, fields) in CONTRACT_BODIES.items():
        content = paths[path][method].get("requestBody", {}).get("content", {})
        missing += [f"{method} {path}: body {m}" for m in media if m not in content]
        declared = _body_fields(content.get("application/json", {}).get("schema", {}))
        missing += [f"{method} {path}: body field {f}" for f in fields if f not in declared]
    return missing
