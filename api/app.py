"""The application factory: settings in, a FastAPI app out, resources built in the lifespan.

`create_app(settings)` opens nothing: the keyring is parsed (a bad keys file fails here, before
anything binds) and the metrics registry created; the store, spool, breaker and group-commit
writer are built when the lifespan starts (`api.runtime`), and torn down at shutdown. A store
passed in by the caller (tests, benchmarks) is used but not closed.

Scopes (the contract: only /live and /ready are open): ingest -> `ingest`; events (their stream
too), cells, stats, sessions, /health and /metrics -> `read`; exports -> `admin` (implies read).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request

from api import runtime
from api.auth import install_keyring, keyring_from_settings, require_scope
from api.errors import install_error_handlers
from api.hostguard import RequestGuard, install_request_guard
from api.logging import ensure_logging, get_logger
from api.metrics import Metrics, MetricsMiddleware, install_metrics, metrics_of
from api.metrics import router as metrics_router
from api.middleware import RequestContextMiddleware
from api.openapi import install_openapi
from api.routes import (
    archive,
    asof,
    cells,
    events,
    exports,
    holds,
    ingest,
    ops,
    proofs,
    sessions,
    stats,
    stream,
)
from api.routes.ops import VERSION
from api.routes.pages import install_pages
from api.settings import Settings
from api.tracing import install_tracing, telemetry_config
from storage.base import EventStore
from storage.errors import StoreError

__all__ = ["begin_shutdown", "create_app"]

log = get_logger("govtrack.app")


def _lifespan(
    settings: Settings, injected: EventStore | None, metrics: Metrics
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The lifespan bound to these settings; owns the store only when it created it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await runtime.start(settings, injected, metrics)
        app.state.govtrack = rt.state
        log.info("started", store=rt.state.deferred.name, store_owned=rt.owned, version=VERSION)
        try:
            yield
        finally:
            await runtime.stop(rt)

    return lifespan


def begin_shutdown(app: Any) -> None:
    """Refuse new requests with 503 `shutting_down` from now on (the CLI calls it on SIGTERM)."""
    state = getattr(app.state, "govtrack", None)
    if state is not None:
        state.draining = True


async def _time_query(request: Request) -> AsyncIterator[None]:
    """Read-route dependency: query latency by route name, store errors by kind."""
    started = time.perf_counter()
    metrics = metrics_of(request.app)
    try:
        yield
    except StoreError as exc:
        metrics.record_store_error(runtime.error_kind(exc))
        raise
    finally:
        name = getattr(request.scope.get("route"), "name", None) or "unknown"
        metrics.record_query(name, time.perf_counter() - started)


def create_app(settings: Settings, *, store: EventStore | None = None) -> FastAPI:
    """Build the app; nothing is opened until the lifespan runs."""
    ensure_logging()
    metrics = Metrics()
    app = FastAPI(
        title="govtrack",
        version=VERSION,
        summary="Columnar store and HTTP API for spreadsheet audit events.",
        lifespan=_lifespan(settings, store, metrics),
        docs_url=None,  # /docs and /redoc come from api.routes.pages, with vendored assets
        redoc_url=None,
        telemetry=telemetry_config(settings),  # request spans only with GOVTRACK_TRACING (api/tracing.py)
    )
    install_error_handlers(app)
    install_openapi(app)
    install_metrics(app, metrics)
    install_keyring(app, keyring_from_settings(settings))
    install_request_guard(app, RequestGuard.from_settings(settings))
    install_tracing(app)  # inside the request-id middleware, so the request span gets the id
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts every answer
    read, admin = Depends(require_scope("read")), Depends(require_scope("admin"))
    timed = Depends(_time_query)
    app.include_router(ops.router)  # /live, /ready open; /health guarded inside
    app.include_router(metrics_router, dependencies=[read])
    app.include_router(ingest.router, dependencies=[Depends(require_scope("ingest"))])
    # Before events: /api/events/{event_id} would take "stream". Not timed: a stream has no latency.
    app.include_router(stream.router, dependencies=[read])
    for module in (events, cells, asof, stats, sessions, proofs):
        app.include_router(module.router, dependencies=[read, timed])
    app.include_router(exports.router, dependencies=[admin, timed])
    app.include_router(archive.router, dependencies=[admin])
    app.include_router(holds.router, dependencies=[admin])
    install_pages(app)  # /, /docs, /redoc and /static: no key for the HTML, the data calls need one
    return app
