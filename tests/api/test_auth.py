"""API keys: parsing, hashing, constant-time lookup, scopes, and the HTTP behaviour of require_scope.

The HTTP tests use a tiny app with the real error handlers and request-id middleware, so the
error bodies are the contract's; they need no store.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import pytest
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from api.auth import (
    ANONYMOUS,
    SCOPES,
    KeyEntry,
    KeyRing,
    Principal,
    effective_scopes,
    hash_key,
    install_keyring,
    keyring_from_settings,
    load_keys_file,
    parse_api_keys,
    parse_keys_file,
    presented_key,
    require_scope,
)
from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.settings import Settings

INGEST_KEY = "ingest-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
WRONG_KEY = "wrong-key-0123456789abcdef"
KEYS_TEXT = f"{INGEST_KEY}:ingest,{READ_KEY}:read,{ADMIN_KEY}:admin"


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


# --------------------------------------------------------------------------- parsing and lookup


def test_parse_api_keys_grants_listed_scopes() -> None:
    ring = parse_api_keys(KEYS_TEXT)
    assert len(ring) == 3
    assert ring.authenticate(INGEST_KEY) == Principal(key_id(INGEST_KEY), frozenset({"ingest"}))
    assert ring.authenticate(READ_KEY) == Principal(key_id(READ_KEY), frozenset({"read"}))


def test_admin_implies_read_but_never_ingest() -> None:
    principal = parse_api_keys(f"{ADMIN_KEY}:admin").authenticate(ADMIN_KEY)
    assert principal is not None
    assert principal.scopes == frozenset({"admin", "read"})
    assert not principal.allows("ingest")
    assert effective_scopes(["ingest"]) == frozenset({"ingest"})


def test_key_without_scopes_gets_every_scope_like_settings() -> None:
    principal = parse_api_keys("plain-key-without-scopes").authenticate("plain-key-without-scopes")
    assert principal is not None
    assert principal.scopes == SCOPES


def test_parse_api_keys_json_list_and_plus_separated_scopes() -> None:
    ring = parse_api_keys(f'["{INGEST_KEY}:ingest+read"]')
    principal = ring.authenticate(INGEST_KEY)
    assert principal is not None
    assert principal.scopes == frozenset({"ingest", "read"})


def test_empty_configuration_disables_auth() -> None:
    assert not parse_api_keys("").enabled
    assert not parse_api_keys("  ").enabled
    assert parse_api_keys(KEYS_TEXT).enabled


def test_pre_hashed_entry_matches_plaintext_key() -> None:
    digest = hashlib.sha256(READ_KEY.encode()).hexdigest()
    ring = parse_api_keys(f"sha256:{digest.upper()}:read")
    assert ring.authenticate(READ_KEY) == Principal(key_id(READ_KEY), frozenset({"read"}))
    assert ring.authenticate(f"sha256:{digest}") is None  # the hash is not itself a key


@pytest.mark.parametrize(
    "text",
    [
        f"{READ_KEY}:write",  # unknown scope
        f"{READ_KEY}:",  # explicit empty scope list
        ":read",  # empty key
        "sha256:abc:read",  # short hash
        f"sha256:{'g' * 64}:read",  # not hex
        f"{READ_KEY}:read,{READ_KEY}:ingest",  # duplicate key
    ],
)
def test_bad_configuration_is_refused_without_echoing_keys(text: str) -> None:
    with pytest.raises(ValueError, match=r".") as info:
        parse_api_keys(text)
    assert READ_KEY not in str(info.value)


def test_only_digests_are_held() -> None:
    ring = parse_api_keys(KEYS_TEXT)
    held = repr(ring) + "".join(repr(e) + e.digest.hex() for e in ring.entries)
    for key in (INGEST_KEY, READ_KEY, ADMIN_KEY):
        assert key not in held
    assert {e.digest for e in ring.entries} == {hash_key(k) for k in (INGEST_KEY, READ_KEY, ADMIN_KEY)}
    assert all(len(e.key_id) == 8 for e in ring.entries)


def test_lookup_compares_every_entry_without_early_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first entry matching must not stop the loop: timing would tell which entry matched."""
    calls: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)  # api.auth looks it up per call
    ring = parse_api_keys(KEYS_TEXT)
    for key in (INGEST_KEY, ADMIN_KEY, WRONG_KEY):
        calls.clear()
        ring.authenticate(key)
        assert calls == [e.digest for e in ring.entries]


def test_unknown_and_oversized_keys_are_refused() -> None:
    ring = parse_api_keys(KEYS_TEXT)
    assert ring.authenticate(WRONG_KEY) is None
    assert ring.authenticate("") is None
    assert ring.authenticate(READ_KEY + "x" * 2000) is None


def test_keys_file_format(tmp_path: Path) -> None:
    digest = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
    text = f"# govtrack keys\n\n{INGEST_KEY} ingest\nsha256:{digest}  admin+ingest\n  {READ_KEY} read,admin\n"
    path = tmp_path / "keys"
    path.write_text(text, encoding="utf-8")
    ring = load_keys_file(path)
    assert len(ring) == 3
    admin = ring.authenticate(ADMIN_KEY)
    assert admin is not None
    assert admin.scopes == frozenset({"admin", "ingest", "read"})
    reader = ring.authenticate(READ_KEY)
    assert reader is not None
    assert reader.scopes == frozenset({"admin", "read"})


@pytest.mark.parametrize("line", [INGEST_KEY, f"{INGEST_KEY} everything", "sha256:12 read"])
def test_keys_file_errors_name_the_line_not_the_key(line: str) -> None:
    with pytest.raises(ValueError, match="line 2") as info:
        parse_keys_file(f"# header\n{line}\n")
    assert INGEST_KEY not in str(info.value)


def test_keyring_from_real_settings(tmp_path: Path) -> None:
    settings = Settings(api_keys=f"{INGEST_KEY}:ingest,{READ_KEY}", spool_dir=tmp_path / "spool")
    ring = keyring_from_settings(settings)
    assert len(ring) == 2
    reader = ring.authenticate(READ_KEY)
    assert reader is not None
    assert reader.scopes == SCOPES


def test_keyring_from_settings_merges_the_keys_file(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text(f"{ADMIN_KEY} admin\n", encoding="utf-8")
    settings = SimpleNamespace(
        api_keys=Settings(api_keys=f"{INGEST_KEY}:ingest").api_keys,
        api_keys_file=tmp_path / "keys",
    )
    ring = keyring_from_settings(settings)
    assert len(ring) == 2
    assert ring.authenticate(ADMIN_KEY) is not None
    assert ring.authenticate(INGEST_KEY) is not None
    with pytest.raises(ValueError, match="configured twice"):
        _ = ring | KeyRing([KeyEntry.from_token(ADMIN_KEY, ["read"])])


def test_require_scope_refuses_unknown_scope_at_definition() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        require_scope("write")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-API-Key": READ_KEY}, READ_KEY),
        ({"Authorization": f"Bearer {READ_KEY}"}, READ_KEY),
        ({"Authorization": f"bearer   {READ_KEY} "}, READ_KEY),
        ({"X-API-Key": READ_KEY, "Authorization": f"Bearer {WRONG_KEY}"}, READ_KEY),
        ({"Authorization": f"Basic {READ_KEY}"}, None),
        ({"Authorization": "Bearer "}, None),
        ({"X-API-Key": "  "}, None),
        ({}, None),
    ],
)
def test_presented_key(headers: dict[str, str], expected: str | None) -> None:
    from starlette.datastructures import Headers

    assert presented_key(Headers(headers=headers)) == expected


# --------------------------------------------------------------------------- HTTP


def make_app(ring: KeyRing) -> FastAPI:
    """A tiny app guarded like the real one: real error handlers and request-id middleware."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    install_keyring(app, ring)

    @app.post("/ingest", dependencies=[Depends(require_scope("ingest"))])
    async def ingest() -> dict[str, str]:
        return {"status": "stored"}

    @app.get("/read")
    async def read(
        request: Request, principal: Annotated[Principal, Depends(require_scope("read"))]
    ) -> dict[str, Any]:
        return {
            "principal": principal.key_id,
            "state_principal": request.state.principal,
            "log_context": structlog.contextvars.get_contextvars().get("principal"),
        }

    @app.post("/admin", dependencies=[Depends(require_scope("admin"))])
    async def admin() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app(parse_api_keys(KEYS_TEXT)))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_missing_key_is_401_with_challenge(client: TestClient) -> None:
    response = client.get("/read", headers={"X-Request-ID": "req-1"})
    body = assert_error(response, 401, "unauthorized")
    assert body["request_id"] == "req-1"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": WRONG_KEY}, {"Authorization": f"Bearer {WRONG_KEY}"}, {"Authorization": "Basic x"}],
)
def test_wrong_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/read", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_key_in_query_string_is_not_accepted(client: TestClient) -> None:
    assert_error(client.get("/read", params={"api_key": READ_KEY}), 401, "unauthorized")


@pytest.mark.parametrize(
    ("path", "method", "key"),
    [
        ("/ingest", "POST", READ_KEY),
        ("/ingest", "POST", ADMIN_KEY),
        ("/read", "GET", INGEST_KEY),
        ("/admin", "POST", READ_KEY),
    ],
)
def test_key_without_scope_is_403(client: TestClient, path: str, method: str, key: str) -> None:
    response = client.request(method, path, headers={"X-API-Key": key})
    body = assert_error(response, 403, "forbidden")
    assert body["error"]["details"] == [{"required_scope": path.strip("/")}]


@pytest.mark.parametrize("header", ["x-api-key", "bearer"])
@pytest.mark.parametrize(
    ("path", "method", "key"),
    [
        ("/ingest", "POST", INGEST_KEY),
        ("/read", "GET", READ_KEY),
        ("/read", "GET", ADMIN_KEY),
        ("/admin", "POST", ADMIN_KEY),
    ],
)
def test_key_with_scope_is_admitted_via_either_header(
    client: TestClient, header: str, path: str, method: str, key: str
) -> None:
    headers = {"X-API-Key": key} if header == "x-api-key" else {"Authorization": f"Bearer {key}"}
    response = client.request(method, path, headers=headers)
    assert response.status_code == 200, response.text


def test_principal_is_recorded_as_key_id(client: TestClient) -> None:
    response = client.get("/read", headers={"Authorization": f"Bearer {READ_KEY}"})
    assert response.json() == {
        "principal": key_id(READ_KEY),
        "state_principal": key_id(READ_KEY),
        "log_context": key_id(READ_KEY),
    }


def test_no_keys_configured_allows_everything_as_anonymous() -> None:
    """Every scope, as `anonymous`, for what a web page cannot forge (api.hostguard: JSON types)."""
    json_type = {"Content-Type": "application/json"}
    with TestClient(make_app(KeyRing())) as open_client:
        assert open_client.post("/ingest", headers=json_type).status_code == 200
        assert open_client.post("/admin", headers={**json_type, "X-API-Key": WRONG_KEY}).status_code == 200
        assert open_client.get("/read").json()["principal"] == ANONYMOUS.key_id
        assert_error(open_client.post("/ingest"), 415, "unsupported_media_type")
        assert_error(open_client.get("/read", headers={"Host": "evil.example"}), 421, "host_not_allowed")


def test_unwired_app_fails_closed() -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/read", dependencies=[Depends(require_scope("read"))])
    async def read() -> dict[str, str]:
        return {"status": "open"}

    response = TestClient(app).get("/read")
    assert response.status_code == 500


def test_logs_never_contain_the_key(
    client: TestClient, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        client.get("/read", headers={"X-API-Key": WRONG_KEY})
        client.get("/read", headers={"Authorization": f"Bearer {WRONG_KEY}"})
        client.post("/ingest", headers={"X-API-Key": READ_KEY})
        client.get("/read", headers={"X-API-Key": READ_KEY})
        client.get("/read", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    captured = capsys.readouterr()
    everything = repr(events) + caplog.text + captured.out + captured.err
    assert "auth_failed" in everything  # the capture saw the auth log lines at all
    for key in (READ_KEY, WRONG_KEY, ADMIN_KEY):
        assert key not in everything
