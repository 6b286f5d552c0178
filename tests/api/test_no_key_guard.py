"""No API keys must not mean "open to any web page" (issue 8.6), through the real app on every store.

A browser page can send a "simple" cross-origin request (text/plain, form types, or no
Content-Type at all) without a CORS preflight, and DNS rebinding lets a page read from a server on
loopback under a foreign Host name. Without keys, therefore: every guarded route answers only a
Host the server was told to answer; state-changing methods need a JSON / NDJSON / Arrow
Content-Type and no foreign Origin. /live and /ready stay open. With keys: behaviour unchanged,
except that an explicit GOVTRACK_ALLOWED_HOSTS is enforced too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from storage.base import EventFilter, EventStore, Page
from tests.api.readkit import assert_error
from tests.conftest import FIXTURES

PASCAL = FIXTURES / "addin_batch_pascal.json"
INGEST_KEY = "guard-ingest-key-0123456789abcdef"
FOREIGN_HOSTS = (
    "evil.example",
    "evil.example:8000",
    "127.0.0.1.evil.example",
    "localhost.evil.example",
    "[::2]:8000",
)
LOOPBACK_HOSTS = (
    "127.0.0.1",
    "127.0.0.1:8000",
    "localhost",
    "LocalHost:8000",
    "localhost.",
    "[::1]",
    "[::1]:8000",
)
SIMPLE_TYPES = (
    None,  # no Content-Type at all: the ingest route used to read it as JSON
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
)
BODY_TYPES = ("application/json", "application/json; charset=utf-8", "application/x-ndjson")


def stored(store: EventStore) -> int:
    rows: int = store.query(EventFilter(), Page(limit=10_000)).num_rows
    return rows


def post_events(client: TestClient, content_type: str | None, **headers: str) -> Any:
    """POST the 25-event fixture (as NDJSON when asked for NDJSON)."""
    body = PASCAL.read_bytes()
    if content_type is not None and "ndjson" in content_type:
        body = "\n".join(json.dumps(e) for e in json.loads(body)["events"]).encode()
    if content_type is not None:
        headers = {"Content-Type": content_type, **headers}
    return client.post("/api/events", content=body, headers=headers)


@pytest.fixture
def app_with(store: EventStore, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """The real app over the parametrised store, with settings overrides (lifespan running)."""
    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        settings = Settings(
            store_url=f"parquet://{tmp_path / 'unused-store'}",
            spool_dir=tmp_path / "spool",
            archive_url=str(tmp_path / "archive"),
            **overrides,
        )
        client = TestClient(create_app(settings, store=store))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


# --------------------------------------------------------------------------- Content-Type


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
def test_no_keys_simple_content_types_are_415_and_nothing_stored(
    client: TestClient, store: EventStore, content_type: str | None
) -> None:
    assert_error(post_events(client, content_type), 415, "unsupported_media_type")
    assert stored(store) == 0


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
def test_no_keys_other_state_changing_routes_need_a_json_type(
    client: TestClient, tmp_path: Path, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert_error(client.post("/api/exports", content=b"{}", headers=headers), 415, "unsupported_media_type")
    assert not list((tmp_path / "archive").rglob("*.parquet"))  # no export was started
    query = client.post("/api/events/query", content=b"{}", headers=headers)
    assert_error(query, 415, "unsupported_media_type")


@pytest.mark.parametrize("content_type", BODY_TYPES)
def test_no_keys_json_and_ndjson_are_stored(client: TestClient, store: EventStore, content_type: str) -> None:
    resp = post_events(client, content_type)
    assert resp.status_code == 200, resp.text
    assert stored(store) == 25


def test_no_keys_reads_need_no_content_type(client: TestClient) -> None:
    assert client.get("/api/events").status_code == 200
    assert client.get("/api/stats").status_code == 200


# --------------------------------------------------------------------------- Host


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
def test_no_keys_foreign_host_is_refused(client: TestClient, store: EventStore, host: str) -> None:
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends Host: evil.example."""
    assert_error(client.get("/api/events", headers={"Host": host}), 421, "host_not_allowed")
    assert_error(client.get("/api/stats", headers={"Host": host}), 421, "host_not_allowed")
    assert_error(post_events(client, "application/json", Host=host), 421, "host_not_allowed")
    assert stored(store) == 0


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_no_keys_loopback_hosts_are_answered(client: TestClient, host: str) -> None:
    resp = client.get("/api/events", headers={"Host": host})
    assert resp.status_code == 200, resp.text


def test_live_and_ready_stay_open_to_any_host(client: TestClient) -> None:
    for path in ("/live", "/ready"):
        assert client.get(path, headers={"Host": "evil.example"}).status_code == 200, path


def test_allowed_hosts_setting_adds_names(app_with: Callable[..., TestClient], store: EventStore) -> None:
    client = app_with(allowed_hosts="govtrack.internal, Reports.Example:8443")
    for host in ("govtrack.internal", "govtrack.internal:8000", "reports.example", "127.0.0.1:8000"):
        assert client.get("/api/events", headers={"Host": host}).status_code == 200, host
    assert_error(client.get("/api/events", headers={"Host": "evil.example"}), 421, "host_not_allowed")


def test_the_host_the_server_was_started_on_is_answered(app_with: Callable[..., TestClient]) -> None:
    client = app_with(host="192.0.2.10", allow_unauthenticated_bind=True)
    assert client.get("/api/events", headers={"Host": "192.0.2.10:8000"}).status_code == 200
    assert_error(client.get("/api/events", headers={"Host": "192.0.2.11:8000"}), 421, "host_not_allowed")


def test_settings_read_allowed_hosts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVTRACK_ALLOWED_HOSTS", "a.example,[::1]:9000, B.example ")
    assert Settings().allowed_hosts == ("a.example", "[::1]:9000", "B.example")


# --------------------------------------------------------------------------- Origin


@pytest.mark.parametrize("origin", ["http://evil.example", "https://evil.example:8000", "null"])
def test_no_keys_foreign_origin_is_403_on_state_changing_requests(
    client: TestClient, store: EventStore, origin: str
) -> None:
    resp = post_events(client, "application/json", Origin=origin)
    assert_error(resp, 403, "origin_not_allowed")
    assert stored(store) == 0


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8000", "http://localhost:3000", "http://[::1]:8000"])
def test_no_keys_loopback_origin_is_accepted(client: TestClient, origin: str) -> None:
    assert post_events(client, "application/json", Origin=origin).status_code == 200


# --------------------------------------------------------------------------- with keys


def test_with_keys_behaviour_is_unchanged(app_with: Callable[..., TestClient], store: EventStore) -> None:
    client = app_with(api_keys=f"{INGEST_KEY}:ingest")
    key = {"X-API-Key": INGEST_KEY}
    assert_error(post_events(client, None, Host="evil.example"), 401, "unauthorized")
    resp = post_events(client, None, Host="evil.example", Origin="http://evil.example", **key)
    assert resp.status_code == 200, resp.text  # a keyed client is not a browser page: no Host/type rules
    assert stored(store) == 25


def test_with_keys_explicit_allowed_hosts_are_enforced(app_with: Callable[..., TestClient]) -> None:
    client = app_with(api_keys=f"{INGEST_KEY}:ingest", allowed_hosts="govtrack.internal")
    key = {"X-API-Key": INGEST_KEY}
    assert_error(post_events(client, "application/json", Host="evil.example", **key), 421, "host_not_allowed")
    resp = post_events(client, "application/json", Host="govtrack.internal", **key)
    assert resp.status_code == 200, resp.text
