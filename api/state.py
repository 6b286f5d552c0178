"""Typed application state: the resources the lifespan builds and the routes reach."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from storage.base import EventStore

if TYPE_CHECKING:
    from api.settings import Settings
    from storage.writer import GroupCommitWriter

__all__ = ["AppState", "app_state"]


@dataclass
class AppState:
    """Everything a request may need, built once per app in the lifespan."""

    settings: Settings
    store: EventStore
    writer: GroupCommitWriter
    started_monotonic: float


def app_state(request: Request) -> AppState:
    """The app's state; set by the lifespan before the first request is served."""
    state: AppState = request.app.state.govtrack
    return state
