"""The service's OpenAPI schema, completed with the parameters and bodies the contract (api.md) defines.

Why: the read routes parse the raw query string and the ingest route the raw body, so the schema
FastAPI publishes declares neither, and schemathesis, which generates only what a schema declares,
would call those routes bare. This adds the contract's query parameters and request bodies to a
copy of the published schema so the generated requests exercise them; the published schema itself
is tested unchanged elsewhere.
"""

from __future__ import annotations

import copy
from typing import Any, Final

__all__ = ["with_contract_parameters"]

_TEXT: Final = {"type": "string"}
_LIST: Final = {"type": "array", "items": {"type": "string"}}
_LIST_FILTERS: Final = ("event_type", "user_name", "workbook_name", "sheet_name")
_SCALAR_FILTERS: Final = ("machine_name", "session_id", "correlation_id", "cell_address", "text")
_PAGING: Final[dict[str, dict[str, Any]]] = {
    "order": {"type": "string", "enum": ["asc", "desc"]},
    "limit": {"type": "integer"},
    "cursor": _TEXT,
}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "style": "form",
        "explode": True,
    }


def _filters() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"from": {"type": "string", "format": "date-time"}}
    out["to"] = out["from"]
    out |= {name: _LIST for name in _LIST_FILTERS} | {name: _TEXT for name in _SCALAR_FILTERS}
    return out


def _event_object() -> dict[str, Any]:
    cell = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]}
    props: dict[str, Any] = {name: _TEXT for name in (*_LIST_FILTERS, *_SCALAR_FILTERS[:-1])}
    props |= {
        "event_id": {"type": "string", "format": "uuid"},
        "timestamp": {"type": "string", "format": "date-time"},
    }
    props |= {"old_value": cell, "new_value": cell, "formula": {"type": ["string", "null"]}}
    return {"type": "object", "properties": props, "required": ["timestamp", "event_type", "user_name"]}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def with_contract_parameters(published: dict[str, Any]) -> dict[str, Any]:
    """A copy of `published` with the contract's query parameters and request bodies declared."""
    schema = copy.deepcopy(published)
    paths = schema["paths"]
    filters = _filters()
    per_route: dict[str, dict[str, dict[str, Any]]] = {
        "/api/events": filters | _PAGING,
        "/api/stats": filters | {"top": {"type": "integer"}},
        "/api/stats/timeseries": filters
        | {
            "bucket": {"type": "string", "enum": ["minute", "hour", "day", "week"]},
            "group_by": {"type": "string", "enum": ["event_type", "user_name", "workbook_name"]},
        },
        "/api/sessions": {"user_name": _TEXT, "from": filters["from"], "to": filters["to"]}
        | {"limit": _PAGING["limit"], "cursor": _TEXT},
    }
    for path, params in per_route.items():
        paths[path]["get"]["parameters"] = [_query(name, spec) for name, spec in params.items()]
    cell_keys = ("workbook_name", "sheet_name", "cell_address")
    paths["/api/cells/history"]["get"]["parameters"] = [
        *(_query(name, _TEXT, required=True) for name in cell_keys),
        _query("limit", {"type": "integer"}),
    ]
    query_body = {"type": "object", "properties": filters | _PAGING}
    paths["/api/events/query"]["post"]["requestBody"] = _json_body(query_body)
    events = {"type": "array", "items": _event_object(), "maxItems": 20}
    ingest = {"type": "object", "properties": {"events": events, "batch_id": _TEXT}, "required": ["events"]}
    paths["/api/events"]["post"]["requestBody"] = _json_body(ingest)
    return schema
