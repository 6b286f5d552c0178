"""Dependency aliases so that route signatures read like prose."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.settings import Settings
from api.state import AppState, app_state
from storage.base import EventStore

__all__ = ["SettingsDep", "StateDep", "StoreDep"]


def get_store(request: Request) -> EventStore:
    """The app's event store."""
    return app_state(request).store


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return app_state(request).settings


StateDep = Annotated[AppState, Depends(app_state)]
StoreDep = Annotated[EventStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
