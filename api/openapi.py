"""The published OpenAPI schema: the contract's error shape, read parameters and request bodies.

Why this exists: the read routes parse the raw query string (repeatable list filters, camelCase
aliases, every problem reported in one 400) and the body routes parse raw bytes, so FastAPI cannot
infer what they take; and its default 422 `HTTPValidationError` is not what this service answers.
So the routes declare their parameters and bodies from the tables here (`openapi_extra`), their
error statuses with `ErrorBody` (`errors(...)`), and `install_openapi` post-processes the schema in
one place: FastAPI's 422 body becomes the contract's error shape, and the statuses that apply
across routes are added where they apply (401/403/421 where a scope guard runs, 415 where it
guards a state-changing method, 503 while shutting down everywhere but /live, 500 everywhere).
Declaring never changes what a route accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict

from api.auth import ScopeGuard
from api.filters import LIST_FIELDS, MAX_LIST_VALUES, SCALAR_FIELDS, VALUE_LIMITS
from api.formats import MEDIA_TYPES
from api.hostguard import STATE_CHANGING_METHODS
from storage.schema import FIELDS, INPUT_FIELDS, INTEGER_INPUT_FIELDS, MAX_SESSION_SEQ

__all__ = [
    "FILTERS",
    "ErrorBody",
    "ErrorInfo",
    "errors",
    "event_read_body",
    "export_body",
    "ingest_body",
    "install_openapi",
    "json_errors",
    "ok",
    "query_parameters",
    "stream_content",
    "text_ok",
]


class ErrorInfo(BaseModel):
    """What went wrong: a stable machine `code`, a message for people, per-item `details`."""

    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    details: list[Any]


class ErrorBody(BaseModel):
    """The one shape of every 4xx/5xx body."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorInfo
    request_id: str


_WHY: Final[dict[int, str]] = {
    400: "invalid request (`invalid_query`, `invalid_cursor`, `invalid_json`, ...)",
    401: "an API key is required or not valid (when keys are configured)",
    403: "the API key lacks the scope this route needs (`forbidden`), or, with no keys configured, a "
    "state-changing request from a foreign Origin (`origin_not_allowed`)",
    404: "not found",
    409: "conflict",
    413: "request too large",
    415: "unsupported Content-Type or Content-Encoding; with no keys configured, every state-changing "
    "request needs a JSON, NDJSON or Arrow Content-Type",
    421: "the Host header names a host this server does not answer (`host_not_allowed`): always with "
    "no keys configured, with keys once GOVTRACK_ALLOWED_HOSTS is set",
    422: "the request is well-formed but invalid",
    429: "overloaded; retry after `Retry-After` seconds",
    500: "internal error (details are logged, never returned)",
    501: "not provided by this deployment (`log_disabled`: several writers sharing a ClickHouse server "
    "keep no transparency log)",
    503: "store unavailable, spool full or shutting down; retry after `Retry-After` seconds",
}


def errors(*statuses: int, **why: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries answering `statuses` with the contract's error body.

    `why` overrides a description by status, e.g. `errors(404, s404="no event with that id")`.
    """
    return {
        status: {"model": ErrorBody, "description": why.get(f"s{status}", _WHY[status])}
        for status in statuses
    }


def json_errors(*statuses: int, **why: str) -> dict[int | str, dict[str, Any]]:
    """`errors(...)` for a route whose success body is not JSON: the error body stays JSON."""
    return {
        status: {
            "description": why.get(f"s{status}", _WHY[status]),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        for status in statuses
    }


def text_ok(description: str, example: str | None = None) -> dict[int | str, dict[str, Any]]:
    """A `responses=` entry for a text/plain success body (signed notes, proofs, keys)."""
    media: dict[str, Any] = {"schema": {"type": "string"}}
    if example is not None:
        media["example"] = example
    return {200: {"description": description, "content": {"text/plain": media}}}


def ok(
    model: Any, description: str, *, status: int = 200, content: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A `responses=` entry documenting a success body (`content`: further media types)."""
    entry: dict[str, Any] = {"model": model, "description": description}
    if content:
        entry["content"] = content
    return {status: entry}


# --- query parameters: one table for every read route ------------------------------------------

_TIMESTAMP: Final = {"type": "string", "format": "date-time"}


def _text(name: str) -> dict[str, Any]:
    return {"type": "string", "maxLength": VALUE_LIMITS.get(name, 1024)}


def _param_schemas() -> dict[str, tuple[dict[str, Any], str]]:
    """Each query parameter a read route takes: name -> (schema, description) query parameter a read route takes."""
    table: dict[str, tuple[dict[str, Any], str]] = {
        "from": (_TIMESTAMP, "inclusive lower bound; ISO-8601, `Z`/offset/none (= UTC), up to 7 digits"),
        "to": (_TIMESTAMP, "exclusive upper bound; ISO-8601 like `from`"),
    }
    for name in LIST_FIELDS:
        items = {"type": "array", "items": _text(name), "maxItems": MAX_LIST_VALUES}
        table[name] = (items, f"exact {name}; repeat the parameter for several (any of them)")
    for name in SCALAR_FIELDS:
        how = "case-sensitive substring of old_value, new_value or formula" if name == "text" else "exact"
        table[name] = (_text(name), f"{how} {name}" if name != "text" else how)
    table |= {
        "order": ({"type": "string", "enum": ["desc", "asc"]}, "by (timestamp, event_id); default desc"),
        "cursor": ({"type": "string", "maxLength": 2048}, "`next_cursor` of the previous page"),
        "top": ({"type": "integer", "minimum": 1, "maximum": 1000}, "length of the top lists; default 10"),
        "bucket": (
            {"type": "string", "enum": ["minute", "hour", "day", "week"]},
            "bucket width; default hour (weeks start Monday 00:00 UTC)",
        ),
        "group_by": (
            {"type": "string", "enum": ["event_type", "user_name", "workbook_name"]},
            "one series per value of this field",
        ),
        "format": (
            {"type": "string", "enum": list(MEDIA_TYPES)},
            "response format; overrides `Accept`",
        ),
    }
    return table


_PARAMS: Final = _param_schemas()
FILTERS: Final[tuple[str, ...]] = ("from", "to", *LIST_FIELDS, *SCALAR_FIELDS)


def _limit(maximum: int, default: int, note: str = "") -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1, "maximum": maximum}
    return _query("limit", schema, f"page size 1-{maximum:,}, default {default:,}{note}")


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
        "style": "form",
        "explode": True,
    }


def query_parameters(
    *names: str,
    limit: tuple[int, int] | None = None,
    limit_note: str = "",
    required: Iterable[str] = (),
    single: Iterable[str] = (),
) -> dict[str, Any]:
    """`openapi_extra` declaring these query parameters from the table.

    `limit` = (maximum, default); `required` names must be present; `single` list filters take
    one value on this route (e.g. the cell of /api/cells/history).
    """
    needed, one = set(required), set(single)
    params = []
    for name in names:
        schema, description = _PARAMS[name]
        if name in one and schema.get("type") == "array":
            schema, description = schema["items"], f"exact {name}"
        params.append(_query(name, schema, description, required=name in needed))
    if limit is not None:
        params.append(_limit(*limit, limit_note))
    return {"parameters": params}


# --- request bodies ------------------------------------------------------------------------------


def _body_properties(*names: str) -> dict[str, Any]:
    """JSON body fields: a list filter takes one value or a list, the rest one value."""
    props: dict[str, Any] = {}
    for name in names:
        schema, description = _PARAMS[name]
        if schema.get("type") == "array":
            schema = {"anyOf": [schema["items"], schema]}
        props[name] = {**schema, "description": description}
    return props


def _json_body(schema: dict[str, Any], *, required: bool, description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": required,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


def event_read_body(max_limit: int) -> dict[str, Any]:
    """POST /api/events/query: the read filters and paging as one JSON object."""
    props = _body_properties(*FILTERS, "order", "cursor")
    props["limit"] = {"type": "integer", "minimum": 1, "maximum": max_limit}
    schema = {"type": "object", "properties": props}
    return _json_body(schema, required=False, description="filters (snake, camel or Pascal names)")


def export_body() -> dict[str, Any]:
    """POST /api/exports: the read filters and an optional destination."""
    props = _body_properties(*FILTERS)
    props["destination"] = {"type": "string", "minLength": 1, "maxLength": 4096}
    schema = {"type": "object", "properties": props}
    return _json_body(schema, required=False, description="filters and an optional `destination` path")


def _event_schema() -> dict[str, Any]:
    """One input event: the known fields with their limits; any other field goes to attributes."""
    cell = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]}
    props: dict[str, Any] = {}
    for field in FIELDS:
        if field.name not in INPUT_FIELDS:
            continue
        if field.name in ("old_value", "new_value"):
            props[field.name] = cell
        elif field.name == "timestamp":
            props[field.name] = _TIMESTAMP
        elif field.name == "event_id":
            props[field.name] = {"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]}
        elif field.name in INTEGER_INPUT_FIELDS:
            number = {"type": "integer", "minimum": 0, "maximum": MAX_SESSION_SEQ}
            props[field.name] = {"anyOf": [number, {"type": "null"}]}
        else:
            text: dict[str, Any] = {"type": "string", "maxLength": field.max_len}
            props[field.name] = text if field.required else {"anyOf": [text, {"type": "null"}]}
    required = [f.name for f in FIELDS if f.required]
    return {"type": "object", "properties": props, "required": required}


def ingest_body() -> dict[str, Any]:
    """POST /api/events: a JSON batch (object or bare array), NDJSON, or an Arrow IPC stream."""
    events = {"type": "array", "items": _event_schema()}
    batch = {"type": "object", "properties": {"events": events, "batch_id": {"type": "string"}}}
    batch["required"] = ["events"]
    binary = {"type": "string", "format": "binary"}
    return {
        "requestBody": {
            "required": True,
            "description": "events; `Content-Encoding: gzip|zstd` accepted; `Idempotency-Key` = batch_id",
            "content": {
                "application/json": {"schema": {"anyOf": [batch, events]}},
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/vnd.apache.arrow.stream": {"schema": binary},
            },
        }
    }


def stream_content() -> dict[str, Any]:
    """The non-JSON formats of an events read (the JSON one is the route's model)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {media.split(";")[0]: binary for fmt, media in MEDIA_TYPES.items() if fmt != "json"}


# --- the schema, post-processed in one place ------------------------------------------------------

_ERROR_REF: Final = {"$ref": "#/components/schemas/ErrorBody"}


def _guarded(dependant: Dependant) -> bool:
    """Whether a scope guard (auth) runs for this route."""
    return any(isinstance(d.call, ScopeGuard) or _guarded(d) for d in dependant.dependencies)


def _takes(dependant: Dependant, kind: str) -> bool:
    """Whether FastAPI validates parameters of `kind` (e.g. "body_params") for this route."""
    return bool(getattr(dependant, kind)) or any(_takes(d, kind) for d in dependant.dependencies)


def _error_response(status: int) -> dict[str, Any]:
    return {"description": _WHY[status], "content": {"application/json": {"schema": _ERROR_REF}}}


def _complete(operation: dict[str, Any], path: str, method: str, dependant: Dependant) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "422" in responses and "HTTPValidationError" in str(responses["422"]):
        # FastAPI's own validation: query/path problems are answered 400, body/header ones 422
        del responses["422"]
        if _takes(dependant, "body_params") or _takes(dependant, "header_params"):
            responses["422"] = _error_response(422)
        if _takes(dependant, "query_params") or _takes(dependant, "path_params"):
            responses.setdefault("400", _error_response(400))
    cross = [500] + ([] if path == "/live" else [503])
    if _guarded(dependant):  # the guard also runs api.hostguard's Host/Origin/Content-Type rules
        cross += [401, 403, 421] + ([415] if method.upper() in STATE_CHANGING_METHODS else [])
    for status in cross:
        responses.setdefault(str(status), _error_response(status))


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema with the contract's error shape everywhere (see the module docstring)."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    dependants: dict[tuple[str, str], Dependant] = {
        (str(ctx.path_format), method.lower()): ctx.dependant
        for ctx in iter_route_contexts(app.routes)
        if isinstance(ctx.original_route, APIRoute)
        for method in ctx.methods or ()
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            dependant = dependants.get((path, method))
            if dependant is not None:
                _complete(operation, path, method, dependant)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components.setdefault(
        "ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for name, definition in (
        ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items()
    ):
        components.setdefault(name, definition)
    components["ErrorBody"].pop("$defs", None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve `build_openapi(app)` (built once, on first request) as the app's schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
