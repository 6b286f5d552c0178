"""API-key authentication and scope checks for the HTTP face.

Keys and scopes
    Three scopes: `ingest` (POST /api/events), `read` (events, cells, stats, sessions, health,
    metrics) and `admin` (exports, archive). `admin` implies `read` (an operator exporting data can
    see it anyway); `ingest` is never implied: only a key granted `ingest` can add events to the
    audit trail, so a leaked dashboard or admin key cannot forge audit entries.

Configuration (two sources, merged)
    * `GOVTRACK_API_KEYS` (settings.api_keys): `key:scope+scope,key2:scope` — a key without
      `:scopes` gets every scope (the settings' documented rule). Entries may be pre-hashed,
      `sha256:<64 hex>:scope+scope`. The settings keep only the parsed `KeyEntry`s (digests).
    * A keys file (`settings.api_keys_file`, `GOVTRACK_API_KEYS_FILE`), one key per line:
      `<key-or-sha256:hex> <scope>[+scope...]`; blank lines and whole-line `#` comments ignored.
      Scopes are required in the file (`ingest+read+admin` for everything). Generate a key and its
      line without storing the plaintext anywhere: `python -m api.auth new ingest`.

Secrets handling
    Only SHA-256 digests of the keys are kept in memory. A presented key is hashed and compared
    with `hmac.compare_digest` against *every* configured digest, without an early exit, so timing
    reveals neither whether nor which key matched. The principal recorded for logs is the key id
    (first 8 hex digits of the digest), never the key. Keys are accepted only from the
    `X-API-Key` header or `Authorization: Bearer <key>`, never from the query string (which ends
    up in access logs).

No keys configured: every request is allowed as principal `anonymous` (the CLI then binds to
loopback only), within what `api.hostguard` lets through: a Host the server answers, and for
state-changing methods a JSON/NDJSON/Arrow Content-Type and no foreign Origin, so that a web page
in the operator's browser cannot use the open server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog
from fastapi import Request
from starlette.datastructures import Headers

from api.errors import ApiError
from api.hostguard import guard_of

__all__ = [
    "ANONYMOUS",
    "KEYRING_STATE_ATTR",
    "SCOPES",
    "KeyEntry",
    "KeyRing",
    "Principal",
    "ScopeGuard",
    "authorize",
    "effective_scopes",
    "hash_key",
    "install_keyring",
    "keyring_from_settings",
    "keyring_of",
    "load_keys_file",
    "parse_api_keys",
    "parse_key_entry",
    "parse_keys_file",
    "presented_key",
    "require_scope",
]

SCOPES: Final[frozenset[str]] = frozenset({"ingest", "read", "admin"})
_IMPLIED: Final[dict[str, frozenset[str]]] = {"admin": frozenset({"read"})}
HASH_PREFIX: Final = "sha256:"
KEYRING_STATE_ATTR: Final = "govtrack_keyring"
_MAX_PRESENTED_LEN: Final = 1024  # longer header values are not keys; don't bother hashing them

log = structlog.get_logger("govtrack.auth")


def hash_key(key: str) -> bytes:
    """The SHA-256 digest a key is stored and compared as."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def effective_scopes(granted: Iterable[str]) -> frozenset[str]:
    """Granted scopes plus the ones they imply (`admin` -> `read`)."""
    scopes = set(granted)
    for scope in list(scopes):
        scopes |= _IMPLIED.get(scope, frozenset())
    return frozenset(scopes)


def _check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    found = frozenset(scopes)
    unknown = found - SCOPES
    if unknown:
        raise ValueError(f"unknown API key scope(s) {sorted(unknown)}; known: {sorted(SCOPES)}")
    if not found:
        raise ValueError("an API key needs at least one scope")
    return found


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: a key id (never the key) and its effective scopes."""

    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """Whether this principal may use endpoints guarded by `scope`."""
        return scope in self.scopes


ANONYMOUS: Final = Principal(key_id="anonymous", scopes=SCOPES)


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One configured key, held only as its digest, with the scopes granted to it."""

    digest: bytes
    scopes: frozenset[str]

    @property
    def key_id(self) -> str:
        """A short, log-safe name of the key: the first 8 hex digits of its digest."""
        return self.digest.hex()[:8]

    def __repr__(self) -> str:
        return f"KeyEntry(key_id={self.key_id!r}, scopes={sorted(self.scopes)})"

    @classmethod
    def from_token(cls, token: str, scopes: Iterable[str]) -> KeyEntry:
        """`token` is a plaintext key or `sha256:<64 hex>` (a key hashed by the operator)."""
        token = token.strip()
        checked = _check_scopes(scopes)
        if token.startswith(HASH_PREFIX):
            hex_digest = token[len(HASH_PREFIX) :].lower()
            if len(hex_digest) != 64 or any(c not in "0123456789abcdef" for c in hex_digest):
                raise ValueError("a pre-hashed key must be 'sha256:' followed by 64 hex digits")
            return cls(bytes.fromhex(hex_digest), checked)
        if not token:
            raise ValueError("empty API key")
        return cls(hash_key(token), checked)


class KeyRing:
    """The configured keys; empty means authentication is off (everything allowed)."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[KeyEntry] = ()) -> None:
        merged: dict[bytes, KeyEntry] = {}
        for entry in entries:
            if entry.digest in merged:
                raise ValueError(f"API key {entry.key_id} is configured twice; give it one entry")
            merged[entry.digest] = entry
        self._entries: tuple[KeyEntry, ...] = tuple(merged.values())

    @classmethod
    def from_api_keys(cls, keys: Iterable[Any]) -> KeyRing:
        """From the settings' parsed keys: `KeyEntry`s, or objects with `.key` and `.scopes`."""
        return cls(k if isinstance(k, KeyEntry) else KeyEntry.from_token(str(k.key), k.scopes) for k in keys)

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured, i.e. requests must authenticate."""
        return bool(self._entries)

    @property
    def entries(self) -> tuple[KeyEntry, ...]:
        """The configured entries (digests and scopes only)."""
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __or__(self, other: KeyRing) -> KeyRing:
        return KeyRing((*self._entries, *other._entries))

    def __repr__(self) -> str:
        return f"KeyRing({list(self._entries)!r})"

    def authenticate(self, key: str) -> Principal | None:
        """The principal for `key`, or None; compares against every entry in constant time."""
        if not key or len(key) > _MAX_PRESENTED_LEN:
            return None
        digest = hash_key(key)
        found: KeyEntry | None = None
        for entry in self._entries:  # no early exit: the loop's length never depends on the match
            if hmac.compare_digest(entry.digest, digest):
                found = entry
        if found is None:
            return None
        return Principal(key_id=found.key_id, scopes=effective_scopes(found.scopes))


# --------------------------------------------------------------------------- parsing


def parse_key_entry(entry: str) -> KeyEntry:
    """`key[:scope+scope]` or `sha256:<hex>[:scope+scope]`; no scopes means every scope."""
    entry = entry.strip()
    if entry.startswith(HASH_PREFIX):
        head, sep, scope_text = entry[len(HASH_PREFIX) :].partition(":")
        token = HASH_PREFIX + head
    else:
        token, sep, scope_text = entry.partition(":")
    scopes = [s.strip() for s in scope_text.split("+") if s.strip()] if sep else sorted(SCOPES)
    return KeyEntry.from_token(token, scopes)


def parse_api_keys(text: str) -> KeyRing:
    """Parse the `GOVTRACK_API_KEYS` format: comma-separated entries or a JSON list of them.

    Raises:
        ValueError: an empty key, a malformed hash, an unknown scope or a duplicate key. The message
            never contains a key.
    """
    text = text.strip()
    if not text:
        return KeyRing()
    entries: list[Any] = json.loads(text) if text.startswith("[") else text.split(",")
    return KeyRing(parse_key_entry(str(e)) for e in entries if str(e).strip())


def parse_keys_file(text: str) -> KeyRing:
    """Parse a keys file: `<key-or-sha256:hex> <scope>[+scope...]` per line, `#` comments.

    Raises:
        ValueError: naming the offending line number (never its content).
    """
    entries: list[KeyEntry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):  # whole-line comments only: a key may contain '#'
            continue
        token, _, scope_text = line.partition(" ")
        scopes = [s for s in scope_text.replace(",", "+").replace(" ", "+").split("+") if s]
        try:
            entries.append(KeyEntry.from_token(token, scopes))
        except ValueError as exc:
            raise ValueError(f"keys file line {number}: {exc}") from None
    return KeyRing(entries)


def load_keys_file(path: Path) -> KeyRing:
    """Read and parse a keys file (UTF-8)."""
    return parse_keys_file(path.read_text(encoding="utf-8"))


def keyring_from_settings(settings: Any) -> KeyRing:
    """Both configured sources: `settings.api_keys` and, if set, `settings.api_keys_file`."""
    ring = KeyRing.from_api_keys(getattr(settings, "api_keys", ()))
    keys_file = getattr(settings, "api_keys_file", None)
    if keys_file:
        ring = ring | load_keys_file(Path(keys_file))
    return ring


# --------------------------------------------------------------------------- app wiring


def install_keyring(app: Any, keyring: KeyRing) -> None:
    """Attach the keyring to an app (FastAPI/Starlette); call once at start so errors fail fast."""
    setattr(app.state, KEYRING_STATE_ATTR, keyring)


def keyring_of(request: Request) -> KeyRing:
    """The app's keyring: installed one, else built from the app's settings (and then cached).

    An app with neither is a wiring error and fails closed (RuntimeError -> 500), never open.
    """
    ring = getattr(request.app.state, KEYRING_STATE_ATTR, None)
    if isinstance(ring, KeyRing):
        return ring
    app_state = getattr(request.app.state, "govtrack", None)
    if app_state is None:
        raise RuntimeError("auth is not wired: no keyring installed and no app state with settings")
    ring = keyring_from_settings(app_state.settings)
    install_keyring(request.app, ring)
    return ring


def presented_key(headers: Headers) -> str | None:
    """The key from `X-API-Key`, else from `Authorization: Bearer`; None when neither carries one."""
    key = headers.get("x-api-key", "").strip()
    if key:
        return key
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def _unauthorized(message: str, error: str | None) -> ApiError:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def _record(request: Request, principal: Principal) -> None:
    """Remember who is calling, for the access log: request.state and the log context."""
    request.state.principal = principal.key_id
    structlog.contextvars.bind_contextvars(principal=principal.key_id)


def authorize(request: Request, scope: str) -> Principal:
    """Authenticate the request and check `scope`; raises ApiError 401/403 (421/415 via the guard)."""
    ring = keyring_of(request)
    guard_of(request).check(request, keys_enabled=ring.enabled)
    if not ring.enabled:
        _record(request, ANONYMOUS)
        return ANONYMOUS
    key = presented_key(request.headers)
    client = request.client.host if request.client else None
    if key is None:
        log.warning("auth_failed", reason="missing_key", path=request.url.path, scope=scope, client=client)
        raise _unauthorized("an API key is required: send X-API-Key or Authorization: Bearer", None)
    principal = ring.authenticate(key)
    if principal is None:
        log.warning("auth_failed", reason="invalid_key", path=request.url.path, scope=scope, client=client)
        raise _unauthorized("the API key is not valid", "invalid_token")
    _record(request, principal)
    if not principal.allows(scope):
        log.warning("auth_failed", reason="missing_scope", principal=principal.key_id, scope=scope)
        raise ApiError(
            403,
            "forbidden",
            f"the API key lacks the '{scope}' scope",
            details=[{"required_scope": scope}],
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
    return principal


class ScopeGuard:
    """The FastAPI dependency `require_scope` returns; a class so audits can find `.scope` on routes."""

    __slots__ = ("scope",)

    def __init__(self, scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; known: {sorted(SCOPES)}")
        self.scope = scope

    def __repr__(self) -> str:
        return f"require_scope({self.scope!r})"

    async def __call__(self, request: Request) -> Principal:
        """Admit the request or raise ApiError 401/403; async so it never takes a thread."""
        return authorize(request, self.scope)


def require_scope(scope: str) -> ScopeGuard:
    """A FastAPI dependency that admits requests whose key has `scope`; it returns the Principal.

    Use on a router (`app.include_router(r, dependencies=[Depends(require_scope("read"))])`) or
    as a route parameter (`principal: Annotated[Principal, Depends(require_scope("ingest"))]`).

    Raises:
        ValueError: `scope` is not one of SCOPES (a typo fails at import, not at request time).
    """
    return ScopeGuard(scope)


def _main(argv: list[str]) -> int:
    """`python -m api.auth new [scopes]` prints a fresh key and its keys-file line."""
    if len(argv) < 1 or argv[0] != "new":
        print("usage: python -m api.auth new [scope+scope]", file=sys.stderr)
        return 2
    scopes = argv[1] if len(argv) > 1 else "ingest"
    _check_scopes(scopes.split("+"))
    key = secrets.token_urlsafe(32)
    print(f"key (give to the client, store nowhere else): {key}")
    print(f"keys-file line: {HASH_PREFIX}{hash_key(key).hex()} {scopes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
