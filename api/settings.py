"""Service settings, read once from `GOVTRACK_*` environment variables (or passed explicitly).

Nothing here runs at import time: `Settings()` reads the environment when it is constructed, and
the CLI builds it once and hands it to `create_app`. Defaults that depend on the working directory
are computed at construction, not at import.

API keys (`GOVTRACK_API_KEYS`): a comma-separated list of `key:scope+scope` entries, for example
`GOVTRACK_API_KEYS="k3y-one:ingest+read,k3y-two:read,k3y-admin:ingest+read+admin"`. A key without
`:scopes` gets every scope. A JSON list of the same strings is accepted as well, and so are keys
hashed by the operator, `sha256:<64 hex>:scopes`. Only SHA-256 digests are kept (`KeyEntry`): the
plaintext is dropped as soon as the setting is parsed. `GOVTRACK_API_KEYS_FILE` names a keys file
(see api.auth), merged with the list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api.auth import SCOPES, KeyEntry, parse_key_entry
from api.ingest.limits import DEFAULT_INLINE_DECODE_BYTES, DEFAULT_MAX_ARROW_BYTES, DEFAULT_MAX_EXTRA_KEYS
from storage.base import ENGINE_MEMORY_MB

__all__ = ["SCOPES", "ApiKey", "Settings", "parse_api_keys"]

LogLevel = Literal["debug", "info", "warning", "error", "critical"]

#: The settings' name for a configured key: its digest and scopes, never the key itself.
ApiKey = KeyEntry


def parse_api_keys(value: Any) -> tuple[KeyEntry, ...]:
    """Accept the comma format, a JSON list of entries, or already-parsed entries; keep digests only."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        entries: list[Any] = json.loads(text) if text.startswith("[") else text.split(",")
    else:
        entries = list(value)
    keys = [e if isinstance(e, KeyEntry) else parse_key_entry(str(e)) for e in entries if str(e).strip()]
    return tuple(keys)


def _default_store_url() -> str:
    return f"parquet://{Path.cwd() / 'data'}"


def _default_spool_dir() -> Path:
    return Path.cwd() / "spool"


def _default_archive_url() -> str:
    return str(Path.cwd() / "archive")


class Settings(BaseSettings):
    """Everything the service can be configured with; each field maps to `GOVTRACK_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="GOVTRACK_",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # keys stay out of errors
    )

    store_url: str = Field(
        default_factory=_default_store_url,
        description="parquet:///dir (default parquet://$PWD/data), chdb:///dir (embedded ClickHouse) or "
        "http(s)://user:pass@host:8123/db (ClickHouse server)",
    )
    spool_dir: Path = Field(
        default_factory=_default_spool_dir,
        description="local spool directory for batches the store cannot take (default ./spool)",
    )
    archive_url: str = Field(
        default_factory=_default_archive_url,
        description="archive tier: a path or file:///dir (default ./archive), s3://bucket/prefix, or "
        "abfs://container/prefix (abfs://container@account.dfs.core.windows.net/prefix)",
    )
    api_keys: Annotated[tuple[KeyEntry, ...], NoDecode] = Field(
        default=(),
        description="comma-separated key:scope+scope entries, scopes ingest, read, admin (e.g. "
        '"k1:ingest,k2:read+admin"); a key without scopes gets all of them; sha256:<hex>:scopes for a '
        "key stored hashed. With no keys the server binds loopback only",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="keys file: `<key-or-sha256:hex> scope+scope` per line, # comments (`govtrack keys "
        "new --scopes ingest` prints a fresh key and its line); merged with GOVTRACK_API_KEYS",
    )
    cursor_secret: SecretStr | None = Field(
        default=None,
        description="key for paging cursors; set the same value on every replica so cursors survive "
        "restarts and work on any replica (unset: a random key per process)",
    )
    max_batch_events: int = Field(
        default=10_000, ge=1, description="most events one ingest request may carry (past it 413)"
    )
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="most bytes one request body may take, after decompression (past it 413)",
    )
    log_level: LogLevel = Field(default="info", description="debug, info, warning, error or critical")
    log_format: Literal["json", "console"] = Field(
        default="json", description="json (one object per line) or console (for a person)"
    )
    host: str = Field(default="127.0.0.1", description="address `govtrack serve` binds without --host")
    port: int = Field(
        default=8000, ge=0, le=65535, description="TCP port without --port (0 picks a free one)"
    )
    allow_unauthenticated_bind: bool = Field(
        default=False, description="true: allow a non-loopback bind without API keys"
    )
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="comma-separated host names the server answers besides 127.0.0.1, localhost, [::1] "
        "and --host (ports ignored; * for any); without API keys any other Host header is 421, and "
        "POST/PUT/PATCH/DELETE need a JSON, NDJSON or Arrow Content-Type (415) and no foreign Origin "
        "(403); with keys it is enforced once set",
    )
    engine_memory_mb: int = Field(
        default=ENGINE_MEMORY_MB,
        ge=64,
        description="memory budget of the embedded engine (DuckDB over Parquet, or chdb): past it DuckDB "
        "spills to disk and chdb refuses the query; bounds the process whatever the data's size",
    )
    writer_max_rows: int = Field(
        default=50_000, ge=1, description="most rows one group-committed append takes"
    )
    writer_max_wait_ms: float = Field(
        default=0.0,
        ge=0,
        description="how long the writer lingers for more requests before an append (0: requests that "
        "arrive while an append runs are coalesced anyway)",
    )
    max_pending_rows: int = Field(
        default=200_000, ge=1, description="rows queued for the writer before ingest answers 429"
    )
    max_inflight_requests: int = Field(
        default=64, ge=1, description="ingest requests being read/decoded/committed at once before 429"
    )
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with 503 answers")
    overload_retry_after_s: int = Field(default=1, ge=1, description="Retry-After sent with 429 answers")
    spool_max_bytes: int = Field(
        default=1024**3, ge=1, description="byte cap of the spool; past it ingest answers 503"
    )
    store_retry_attempts: int | None = Field(
        default=None,
        ge=1,
        description="store attempts per batch before spooling; default 3, or 1 for ClickHouse (it retries itself)",
    )
    store_retry_max_wait_ms: float = Field(default=200.0, ge=0, description="cap of one retry backoff wait")
    breaker_failure_threshold: int = Field(
        default=3, ge=1, description="consecutive transient store failures that open the circuit breaker"
    )
    breaker_reset_timeout_s: float = Field(
        default=2.0, ge=0, description="open breaker: seconds before one probe is let through"
    )
    replay_interval_s: float = Field(
        default=1.0, gt=0, description="how often the spool is replayed into the store"
    )
    store_open_retry_max_s: float = Field(
        default=5.0, gt=0, description="cap of the backoff between attempts to open an unreachable store"
    )
    shutdown_timeout_s: float = Field(
        default=20.0, gt=0, description="bound on in-flight requests and on draining the writer at shutdown"
    )
    tracing: bool = Field(
        default=False,
        description="OpenTelemetry spans for requests, decode, group commit and store calls, exported "
        "as the standard OTEL_* variables say (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*); "
        "OTEL_SDK_DISABLED=true turns them off again (api/tracing.py)",
    )
    max_series_points: int = Field(
        default=250_000,
        ge=1,
        description="most points (buckets x groups) one /api/stats/timeseries answer may hold; past it "
        "400 invalid_query, refused before the series is built (a year of hours for ~28 groups)",
    )
    read_batch_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=64 * 1024,
        description="event data one streamed read holds at a time: reads above one batch are fetched "
        "from the store in keyset batches of about this size, so a 1,000,000-row read costs "
        "this much memory, not the whole result",
    )
    max_concurrent_large_reads: int = Field(
        default=4,
        ge=1,
        description="streamed reads over 10,000 rows and exports running at once; one more is answered "
        "429 too_many_large_reads with Retry-After GOVTRACK_OVERLOAD_RETRY_AFTER_S",
    )
    max_event_streams: int = Field(
        default=32,
        ge=1,
        description="GET /api/events/stream connections open at once; one more is answered 429 "
        "too_many_streams with Retry-After GOVTRACK_OVERLOAD_RETRY_AFTER_S",
    )
    stream_buffer_bytes: int = Field(
        default=1024 * 1024,
        ge=4096,
        description="event data waiting for one stream's client; a client that takes nothing for "
        "GOVTRACK_STREAM_STALL_S while it is full is dropped (a final `event: dropped`)",
    )
    stream_stall_s: float = Field(
        default=10.0,
        gt=0,
        description="how long a stream's client may take nothing while its buffer is full before "
        "it is dropped; a client that reads, however slowly, is never dropped",
    )
    stream_heartbeat_s: float = Field(
        default=15.0,
        gt=0,
        description="an idle stream sends a comment line this often (proxies keep it open)",
    )
    stream_poll_s: float = Field(
        default=0.25,
        gt=0,
        description="how often a stream checks the transparency log for new commits (an in-memory "
        "read; the store is queried only when leaves were committed)",
    )
    exports_dir: Path | None = Field(
        default=None,
        description="the folder every export is written inside (destinations are relative to it); "
        "default `exports` beside a local archive (./exports beside ./archive), else ./exports; "
        "never inside the archive",
    )
    export_url_prefixes: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="comma-separated object-store URL prefixes an export may name (e.g. "
        "s3://bucket/exports/); any other URL is 400 invalid_destination. Empty by default",
    )
    archive_after_days: int | None = Field(
        default=None,
        ge=1,
        description="move months that ended more than this many days ago from the hot store to "
        "GOVTRACK_ARCHIVE_URL, verified before the hot copy is dropped (a background job; unset: off, "
        "POST /api/archive and `govtrack archive` still work)",
    )
    archive_interval_s: float = Field(
        default=3600.0, gt=0, description="how often the archive and retention job runs when either is on"
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="delete archived months wholly older than this many days, unless a legal hold covers "
        "them; each deletion is recorded in <archive>/_deletions/ (unset: off, nothing is ever deleted)",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint for s3:// archives and exports (an S3-compatible store); unset: AWS's, "
        "or AWS_ENDPOINT_URL. Keys and region also come from the standard AWS variables and files",
    )
    s3_region: str | None = Field(
        default=None, description="S3 region (unset: AWS_REGION or the SDK's default)"
    )
    azure_account_name: str | None = Field(
        default=None, description="storage account of abfs://container/prefix URLs (or name it in the URL)"
    )
    azure_account_key: SecretStr | None = Field(
        default=None,
        description="its account key (unset: Azure's default credential, e.g. AZURE_CLIENT_ID...)",
    )
    azure_blob_endpoint: str | None = Field(
        default=None, description="http(s)://host:port of the Blob service (Azurite); unset: Azure's"
    )
    csv_neutralize: bool = Field(
        default=True,
        description="CSV cells starting with = + - @ tab or CR get a leading ' so a spreadsheet does "
        "not run them as formulas (OWASP CSV injection); false for machine consumers",
    )
    max_batch_extra_keys: int = Field(
        default=DEFAULT_MAX_EXTRA_KEYS,
        ge=1,
        description="distinct extra field names (kept as attributes) one ingest batch may use; past it "
        "413 too_many_attribute_keys, refused before attributes are built",
    )
    max_arrow_decoded_bytes: int = Field(
        default=DEFAULT_MAX_ARROW_BYTES,
        ge=1024,
        description="bytes an Arrow IPC body's buffers may take decoded (compressed buffers counted "
        "expanded), checked from the stream's metadata before decompressing; past it 413",
    )
    inline_decode_max_bytes: int = Field(
        default=DEFAULT_INLINE_DECODE_BYTES,
        ge=0,
        description="JSON/NDJSON bodies up to this size (decompressed) are decoded on the event loop, "
        "larger ones and every Arrow body in a worker thread (see api/routes/ingest.py)",
    )

    log_dir: Path | None = Field(
        default=None,
        description="the transparency log's tree files and latest checkpoint (default <data>/log "
        "for a local store, else ./log)",
    )
    log_key_file: Path | None = Field(
        default=None,
        description="the log's Ed25519 signing key (a PRIVATE+KEY+... line, mode 0600); in local mode "
        "a fresh one is generated there on first start and its verifier key logged "
        "(default <log dir>/signing.key)",
    )
    log_origin: str = Field(
        default="govtrack.local/log",
        pattern=r"^[^\s+]+$",
        description="the log's origin line in checkpoints and the key's name (a schema-less URL, no "
        "spaces or '+'); set one per deployment so auditors can tell logs apart",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> tuple[KeyEntry, ...]:
        return parse_api_keys(value)

    @field_validator("export_url_prefixes", mode="before")
    @classmethod
    def _parse_prefixes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(h.strip() for h in value.split(",") if h.strip())
        return value

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

    @property
    def store_retry_max_wait_s(self) -> float:
        """The retry backoff cap in seconds."""
        return self.store_retry_max_wait_ms / 1000.0

    def retry_attempts_for(self, engine: str) -> int:
        """Write-path attempts per batch for `engine`: ClickHouseStore retries inside already."""
        if self.store_retry_attempts is not None:
            return self.store_retry_attempts
        return 1 if engine == "clickhouse" else 3
