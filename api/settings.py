"""Service settings, read once from `GOVTRACK_*` environment variables (or passed explicitly).

Nothing here runs at import time: `Settings()` reads the environment when it is constructed, and
the CLI builds it once and hands it to `create_app`. Defaults that depend on the working directory
are computed at construction, not at import.

API keys (`GOVTRACK_API_KEYS`): a comma-separated list of `key:scope+scope` entries, for example
`GOVTRACK_API_KEYS="k3y-one:ingest+read,k3y-two:read,k3y-admin:ingest+read+admin"`. A key without
`:scopes` gets every scope. A JSON list of the same strings is accepted as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["SCOPES", "ApiKey", "Settings", "parse_api_keys"]

SCOPES: Final[frozenset[str]] = frozenset({"ingest", "read", "admin"})
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key and the scopes it grants; the key itself is never logged (repr hides it)."""

    key: str
    scopes: frozenset[str]

    def __repr__(self) -> str:
        return f"ApiKey(key='***', scopes={sorted(self.scopes)})"


def _parse_one_key(entry: str) -> ApiKey:
    """`key:scope+scope` -> ApiKey; unknown scopes are a configuration error, not ignored."""
    key, sep, scope_text = entry.strip().partition(":")
    if not key:
        raise ValueError("empty API key")
    scopes = frozenset(s.strip() for s in scope_text.split("+") if s.strip()) if sep else SCOPES
    unknown = scopes - SCOPES
    if unknown:
        raise ValueError(f"unknown API key scope(s) {sorted(unknown)}; known: {sorted(SCOPES)}")
    return ApiKey(key=key, scopes=scopes)


def parse_api_keys(value: Any) -> tuple[ApiKey, ...]:
    """Accept the comma format, a JSON list of entries, or already-parsed keys."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        entries: list[Any] = json.loads(text) if text.startswith("[") else text.split(",")
    else:
        entries = list(value)
    keys = [e if isinstance(e, ApiKey) else _parse_one_key(str(e)) for e in entries if str(e).strip()]
    return tuple(keys)


def _default_store_url() -> str:
    return f"parquet://{Path.cwd() / 'data'}"


def _default_spool_dir() -> Path:
    return Path.cwd() / "spool"


def _default_archive_url() -> str:
    return str(Path.cwd() / "archive")


class Settings(BaseSettings):
    """Everything the service can be configured with; each field maps to `GOVTRACK_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="GOVTRACK_", extra="ignore", frozen=True)

    store_url: str = Field(
        default_factory=_default_store_url,
        description="parquet:///dir (default ./data), chdb:///dir, or http(s)://user:pass@host:8123/db",
    )
    spool_dir: Path = Field(
        default_factory=_default_spool_dir, description="local spool for unavailable store"
    )
    archive_url: str = Field(
        default_factory=_default_archive_url, description="archive tier: a path, file:// or s3:// URI"
    )
    api_keys: Annotated[tuple[ApiKey, ...], NoDecode] = Field(
        default=(), description="key:scope+scope,... (scopes: ingest, read, admin)"
    )
    max_batch_events: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    log_level: LogLevel = "info"
    log_format: Literal["json", "console"] = "json"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    allow_unauthenticated_bind: bool = False
    writer_max_rows: int = Field(
        default=50_000, ge=1, description="most rows one group-committed append takes"
    )
    writer_max_wait_ms: float = Field(
        default=2.0, ge=0, description="how long the writer lingers for more requests before an append"
    )
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with 503 answers")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> tuple[ApiKey, ...]:
        return parse_api_keys(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @property
    def writer_max_wait_s(self) -> float:
        """The group-commit linger in seconds."""
        return self.writer_max_wait_ms / 1000.0
