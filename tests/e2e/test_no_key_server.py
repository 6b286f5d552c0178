"""A real `govtrack serve` without keys (uvicorn, loopback) refuses what a web page could forge.

In process the app sees TestClient's addresses; here the Host, Origin and Content-Type rules of
api.hostguard meet uvicorn's real scope (the server address is the socket's), on every store.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES
from tests.e2e.server import Server, ServerDirs

PASCAL = (FIXTURES / "addin_batch_pascal.json").read_bytes()
JSON = {"Content-Type": "application/json"}


def _code(resp: httpx.Response) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["code"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_real_server_without_keys_refuses_forged_browser_requests(kind: str, tmp_path: Path) -> None:
    dirs = ServerDirs(tmp_path)
    server = Server(dirs, dirs.url_for(kind))
    try:
        server.wait_ready(probe="/api/stats")  # the store is open (stats answer 503 until then)
        with httpx.Client(base_url=server.base, timeout=30) as http:
            assert _code(http.get("/api/events", headers={"Host": "evil.example"})) == (
                421,
                "host_not_allowed",
            )
            rebound = http.post("/api/events", content=PASCAL, headers={**JSON, "Host": "evil.example:8000"})
            assert _code(rebound) == (421, "host_not_allowed")
            assert _code(http.post("/api/events", content=PASCAL)) == (415, "unsupported_media_type")
            plain = http.post("/api/events", content=PASCAL, headers={"Content-Type": "text/plain"})
            assert _code(plain) == (415, "unsupported_media_type")
            export = http.post("/api/exports", content=b"{}", headers={"Content-Type": "text/plain"})
            assert _code(export) == (415, "unsupported_media_type")
            foreign = http.post(
                "/api/events", content=PASCAL, headers={**JSON, "Origin": "http://evil.example"}
            )
            assert _code(foreign) == (403, "origin_not_allowed")
            assert http.get("/api/stats").json()["total_events"] == 0  # nothing above was stored
            assert http.get("/live", headers={"Host": "evil.example"}).status_code == 200
            assert http.get("/ready", headers={"Host": "evil.example"}).status_code == 200
            stored = http.post("/api/events", content=PASCAL, headers={**JSON, "Host": "localhost:1"})
            assert stored.status_code == 200, stored.text
            assert http.get("/api/stats").json()["total_events"] == 25
    finally:
        server.stop()
