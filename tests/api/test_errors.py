"""Every error has one shape and every response an X-Request-ID, on every store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Query
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api.app import create_app
from api.errors import ApiError
from api.settings import Settings
from storage.base import EventStore
from storage.errors import InvalidQueryError, TerminalStoreError, TransientStoreError


def assert_error_shape(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["details"], list)
    assert body["request_id"] == resp.headers["X-Request-ID"]
    return body


class Probe(BaseModel):
    size: int


def probe_app(store: EventStore, tmp_path: Path) -> FastAPI:
    """The real app plus a few routes that raise each error family."""
    settings = Settings(
        store_url=f"parquet://{tmp_path / 'unused'}", spool_dir=tmp_path / "spool", archive_url=str(tmp_path)
    )
    app = create_app(settings, store=store)

    @app.get("/_probe/query")
    async def by_query(size: int = Query(ge=1)) -> dict[str, int]:
        return {"size": size}

    @app.post("/_probe/body")
    async def by_body(probe: Probe) -> dict[str, int]:
        return {"size": probe.size}

    @app.get("/_probe/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(1000):
                yield f"{i}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/_probe/raise/{kind}")
    async def raising(kind: str) -> None:
        errors: dict[str, Exception] = {
            "api": ApiError(409, "conflict", "already there", details=[{"index": 1}]),
            "invalid_query": InvalidQueryError("bad cursor"),
            "transient": TransientStoreError("unreachable"),
            "terminal": TerminalStoreError("schema mismatch"),
            "bug": RuntimeError("boom"),
        }
        raise errors[kind]

    return app


@pytest.fixture
def probe(store: EventStore, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(probe_app(store, tmp_path)) as client:
        yield client


def test_request_id_is_echoed(client: TestClient) -> None:
    resp = client.get("/live", headers={"X-Request-ID": "client-chosen-42"})
    assert resp.headers["X-Request-ID"] == "client-chosen-42"


def test_request_id_is_generated_and_unique(client: TestClient) -> None:
    first = client.get("/live").headers["X-Request-ID"]
    second = client.get("/live").headers["X-Request-ID"]
    assert first
    assert second
    assert first != second


def test_unsafe_client_request_id_is_replaced(client: TestClient) -> None:
    resp = client.get("/live", headers={"X-Request-ID": "x" * 500})
    assert resp.headers["X-Request-ID"] != "x" * 500


def test_error_echoes_client_request_id(client: TestClient) -> None:
    resp = client.get("/no/such/path", headers={"X-Request-ID": "trace-me"})
    body = assert_error_shape(resp, 404, "not_found")
    assert body["request_id"] == "trace-me"


def test_method_not_allowed(client: TestClient) -> None:
    resp = client.delete("/live")
    assert_error_shape(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


def test_bad_query_parameter_is_400_invalid_query(probe: TestClient) -> None:
    body = assert_error_shape(probe.get("/_probe/query", params={"size": "x"}), 400, "invalid_query")
    assert body["error"]["details"][0]["loc"] == ["query", "size"]
    assert body["error"]["details"][0]["message"]
    assert_error_shape(probe.get("/_probe/query"), 400, "invalid_query")


def test_bad_json_body_field_is_422_validation_error(probe: TestClient) -> None:
    body = assert_error_shape(probe.post("/_probe/body", json={"size": "big"}), 422, "validation_error")
    assert body["error"]["details"][0]["loc"] == ["body", "size"]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("api", 409, "conflict"),
        ("invalid_query", 400, "invalid_query"),
        ("transient", 503, "store_unavailable"),
        ("terminal", 500, "store_error"),
        ("bug", 500, "internal_error"),
    ],
)
def test_error_families_map_to_one_shape(probe: TestClient, kind: str, status: int, code: str) -> None:
    resp = probe.get(f"/_probe/raise/{kind}", headers={"X-Request-ID": f"req-{kind}"})
    body = assert_error_shape(resp, status, code)
    assert body["request_id"] == f"req-{kind}"
    if kind == "transient":
        assert int(resp.headers["Retry-After"]) > 0
    if kind == "api":
        assert body["error"]["details"] == [{"index": 1}]
    if kind == "bug":
        assert "boom" not in resp.text  # no internals leak to the client


def test_streamed_response_passes_through_with_request_id(probe: TestClient) -> None:
    resp = probe.get("/_probe/stream", headers={"X-Request-ID": "stream-1"})
    assert resp.status_code == 200
    assert resp.headers["X-Request-ID"] == "stream-1"
    assert resp.text.splitlines() == [str(i) for i in range(1000)]
