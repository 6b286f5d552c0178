"""What a server without API keys refuses so that a web page cannot use it (issue 8.6).

Without keys anyone who reaches the port has every scope, and "anyone" includes a page in the
operator's browser: loopback is reachable from there. Two browser tricks matter:

* A "simple" cross-origin request needs no CORS preflight: POST with `text/plain`, a form type,
  or no Content-Type at all. So without keys a state-changing method (POST/PUT/PATCH/DELETE)
  needs a JSON / NDJSON / Arrow Content-Type (415 otherwise), which a page can only send after a
  preflight this server never grants, and a request carrying a foreign `Origin` is refused (403).
* DNS rebinding: a page on `evil.example` re-resolves its own name to 127.0.0.1 and reads the
  answers, with `Host: evil.example`. So without keys the Host header must name a host this server
  was told to answer (421 otherwise): the loopback names (`127.0.0.1`, `localhost`, `::1`), the
  host it was started on (`--host`), the address the connection arrived on (an IP literal cannot
  be rebound), and `GOVTRACK_ALLOWED_HOSTS`. Ports are ignored; `*` there turns the check off.

With keys the caller has proven who it is and none of this applies, except that an explicit
`GOVTRACK_ALLOWED_HOSTS` is enforced there too. The checks run inside the scope guard
(`api.auth.authorize`), so /live and /ready (unguarded) stay open, and unknown paths or methods
keep their 404/405.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.requests import Request

from api.errors import ApiError

__all__ = [
    "BODY_MEDIA_TYPES",
    "LOOPBACK_NAMES",
    "STATE_CHANGING_METHODS",
    "RequestGuard",
    "guard_of",
    "host_name",
    "install_request_guard",
]

GUARD_STATE_ATTR: Final = "govtrack_request_guard"
LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost", "::1"})
#: Bodies the service reads; none of them is a CORS "simple" content type.
BODY_MEDIA_TYPES: Final = frozenset(
    {
        "application/json",
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/vnd.apache.arrow.stream",
    }
)
STATE_CHANGING_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WILDCARD_BINDS: Final = frozenset({"0.0.0.0", "::"})  # noqa: S104 - names, not a bind
_ANY: Final = "*"
_SHOWN_CHARS: Final = 100


def host_name(value: str) -> str | None:
    """The host of a Host header or allowed-hosts entry: lower case, no port, brackets or final dot.

    `[::1]:8000` -> `::1`, `LocalHost:80` -> `localhost`; a bare IPv6 address is kept whole.
    None when there is no usable name (empty, bad port, unclosed bracket).
    """
    text = value.strip().lower()
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
    elif text.count(":") > 1:
        name = text
    else:
        name, _, port = text.partition(":")
        if port and not port.isdigit():
            return None
    name = name.rstrip(".")
    return name or None


@dataclass(frozen=True, slots=True)
class RequestGuard:
    """The Host / Origin / Content-Type rules of one app."""

    hosts: frozenset[str] = LOOPBACK_NAMES
    explicit: bool = False  # GOVTRACK_ALLOWED_HOSTS was set: enforce it with keys as well
    any_host: bool = False  # `*` among the allowed hosts

    @classmethod
    def from_settings(cls, settings: Any) -> RequestGuard:
        """Loopback names, the host the server was started on, and `settings.allowed_hosts`."""
        configured: Iterable[str] = getattr(settings, "allowed_hosts", ()) or ()
        configured = [c for c in configured if c.strip()]
        names = {n for n in (host_name(c) for c in configured if c.strip() != _ANY) if n}
        bind = host_name(str(getattr(settings, "host", "") or ""))
        if bind and bind not in _WILDCARD_BINDS:
            names.add(bind)
        return cls(
            hosts=LOOPBACK_NAMES | frozenset(names),
            explicit=bool(configured),
            any_host=any(c.strip() == _ANY for c in configured),
        )

    def check(self, request: Request, *, keys_enabled: bool) -> None:
        """Refuse what a web page could forge; raises ApiError 421, 403 or 415."""
        if (not keys_enabled or self.explicit) and not self._host_allowed(request):
            shown = request.headers.get("host", "")[:_SHOWN_CHARS]
            raise ApiError(
                421,
                "host_not_allowed",
                f"this server does not answer for host {shown!r}; add it to GOVTRACK_ALLOWED_HOSTS",
            )
        if keys_enabled or request.method not in STATE_CHANGING_METHODS:
            return
        origin = request.headers.get("origin")
        if origin is not None and not self._allowed(urlsplit(origin.strip()).hostname):
            raise ApiError(
                403,
                "origin_not_allowed",
                f"requests from origin {origin[:_SHOWN_CHARS]!r} are refused while no API keys are "
                "configured",
            )
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in BODY_MEDIA_TYPES:
            raise ApiError(
                415,
                "unsupported_media_type",
                f"{request.method} needs a Content-Type of {', '.join(sorted(BODY_MEDIA_TYPES))} "
                f"while no API keys are configured (got {media or 'none'!r})",
            )

    def _host_allowed(self, request: Request) -> bool:
        name = host_name(request.headers.get("host", ""))
        server = request.scope.get("server")
        arrived_on = host_name(str(server[0])) if server else None
        return self._allowed(name) or (name is not None and name == arrived_on)

    def _allowed(self, name: str | None) -> bool:
        if self.any_host:
            return True
        return name is not None and name.rstrip(".") in self.hosts


def install_request_guard(app: Any, guard: RequestGuard) -> None:
    """Attach the app's guard (create_app does, from the settings)."""
    setattr(app.state, GUARD_STATE_ATTR, guard)


def guard_of(request: Request) -> RequestGuard:
    """The app's guard; an app that installed none gets the strict default (loopback names only)."""
    guard = getattr(request.app.state, GUARD_STATE_ATTR, None)
    return guard if isinstance(guard, RequestGuard) else RequestGuard()
