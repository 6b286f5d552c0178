"""Typed application state: the resources the lifespan builds and the routes reach."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from storage.base import EventStore

if TYPE_CHECKING:
    from api.metrics import Metrics
    from api.settings import Settings
    from storage.deferred import DeferredOpenStore
    from storage.resilient import ResilientAppender
    from storage.writer import GroupCommitWriter

__all__ = ["AppState", "app_state"]


@dataclass
class AppState:
    """Everything a request may need, built once per app in the lifespan.

    `store` is what reads use (it raises TransientStoreError until the store opened); `deferred`
    is the same object, with its open state; `appender` is the write path behind the writer
    (store, else spool) and owns the spool and the breaker. `draining` turns true when shutdown
    begins: from then on new requests are answered 503 `shutting_down`.
    """

    settings: Settings
    store: EventStore
    deferred: DeferredOpenStore
    appender: ResilientAppender
    writer: GroupCommitWriter
    metrics: Metrics
    started_monotonic: float
    draining: bool = False
    ingest_in_flight: int = 0


def app_state(request: Request) -> AppState:
    """The app's state; set by the lifespan before the first request is served."""
    state: AppState = request.app.state.govtrack
    return state
