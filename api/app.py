"""The application factory: settings in, a FastAPI app out, resources built in the lifespan.

`create_app(settings)` opens nothing: the store is created and opened, and the group-commit
writer started, when the lifespan starts; at shutdown the writer is drained and whatever the app
created is closed. A store passed in by the caller (tests, benchmarks) is used but not closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.logging import get_logger
from api.middleware import RequestContextMiddleware
from api.routes import cells, events, exports, ingest, ops, sessions, stats
from api.routes.ops import VERSION
from api.settings import Settings
from api.state import AppState
from storage.base import EventStore
from storage.factory import create_store
from storage.writer import GroupCommitWriter

__all__ = ["create_app"]

log = get_logger("govtrack.app")


def _lifespan(
    settings: Settings, injected: EventStore | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The lifespan bound to these settings; owns the store only when it created it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = injected if injected is not None else create_store(settings.store_url)
        owned = injected is None
        await asyncio.to_thread(store.open)  # idempotent, so an injected store may be opened again
        writer = GroupCommitWriter(
            store, max_rows=settings.writer_max_rows, max_wait_s=settings.writer_max_wait_s
        )
        writer.start()
        app.state.govtrack = AppState(
            settings=settings, store=store, writer=writer, started_monotonic=time.monotonic()
        )
        log.info("started", store=store.name, store_owned=owned, version=VERSION)
        try:
            yield
        finally:
            await writer.drain_and_stop()
            if owned:
                await asyncio.to_thread(store.close)
            log.info("stopped", appends=writer.stats.appends, rows=writer.stats.rows)

    return lifespan


def create_app(settings: Settings, *, store: EventStore | None = None) -> FastAPI:
    """Build the app; nothing is opened until the lifespan runs."""
    app = FastAPI(
        title="govtrack",
        version=VERSION,
        summary="Columnar store and HTTP API for spreadsheet audit events.",
        lifespan=_lifespan(settings, store),
    )
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    for module in (ops, ingest, events, cells, stats, sessions, exports):
        app.include_router(module.router)
    return app
