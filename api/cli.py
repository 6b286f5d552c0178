"""The `govtrack` command: `govtrack serve [--host HOST] [--port PORT]`.

Settings come from `GOVTRACK_*` environment variables, read once here and passed to
`create_app`; `--host`/`--port` override `GOVTRACK_HOST`/`GOVTRACK_PORT`.
Shutdown on SIGTERM/SIGINT is described in `api.server`; a graceful stop exits 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence

from api.auth import keyring_from_settings
from api.logging import configure_logging, get_logger
from api.settings import Settings

__all__ = ["is_loopback", "main"]

_ENV_HELP = """\
environment (read once at start):
  GOVTRACK_STORE_URL        parquet:///dir (default: parquet://$PWD/data), chdb:///dir (embedded
                            ClickHouse) or http(s)://user:pass@host:8123/db (ClickHouse server)
  GOVTRACK_SPOOL_DIR        local spool directory for batches the store cannot take (default ./spool)
  GOVTRACK_ARCHIVE_URL      archive tier: a path, file:// or s3:// URI (default ./archive)
  GOVTRACK_API_KEYS         comma-separated key:scope+scope entries, scopes ingest, read, admin;
                            e.g. "k1:ingest,k2:read+admin"; a key without scopes gets all of them;
                            "sha256:<hex>:scopes" for a key stored hashed.
                            With no keys the server binds loopback only.
  GOVTRACK_API_KEYS_FILE    keys file, "<key-or-sha256:hex> scope+scope" per line
                            (python -m api.auth new ingest prints a fresh key and its line)
  GOVTRACK_ALLOW_UNAUTHENTICATED_BIND  true: allow a non-loopback bind without API keys
  GOVTRACK_HOST, GOVTRACK_PORT         defaults for --host / --port (127.0.0.1, 8000)
  GOVTRACK_MAX_BATCH_EVENTS (10000), GOVTRACK_MAX_BODY_BYTES (67108864, after decompression)
  GOVTRACK_LOG_LEVEL        debug|info|warning|error (default info)
  GOVTRACK_LOG_FORMAT       json|console (default json)
  GOVTRACK_WRITER_MAX_ROWS (50000), GOVTRACK_WRITER_MAX_WAIT_MS (0): group-commit batching
  GOVTRACK_MAX_PENDING_ROWS (200000), GOVTRACK_MAX_INFLIGHT_REQUESTS (64): past them ingest
                            answers 429 with Retry-After GOVTRACK_OVERLOAD_RETRY_AFTER_S (1)
  GOVTRACK_SPOOL_MAX_BYTES (1 GiB): past it (store down) ingest answers 503, Retry-After
                            GOVTRACK_RETRY_AFTER_S (5)
  GOVTRACK_STORE_RETRY_ATTEMPTS (3; 1 for ClickHouse, which retries itself),
  GOVTRACK_STORE_RETRY_MAX_WAIT_MS (200): write attempts before a batch is spooled
  GOVTRACK_BREAKER_FAILURE_THRESHOLD (3), GOVTRACK_BREAKER_RESET_TIMEOUT_S (2): circuit breaker
  GOVTRACK_REPLAY_INTERVAL_S (1): spool replay period; GOVTRACK_STORE_OPEN_RETRY_MAX_S (5):
                            backoff cap while the store cannot be opened (the service serves meanwhile)
  GOVTRACK_SHUTDOWN_TIMEOUT_S (20): bound on in-flight requests and on draining at shutdown
"""


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govtrack",
        description="Columnar store and HTTP API for spreadsheet audit events.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_ENV_HELP,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the HTTP API (uvicorn)",
        description="Run the HTTP API with uvicorn, settings from GOVTRACK_* variables.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_ENV_HELP,
    )
    serve.add_argument("--host", help="address to bind (default: GOVTRACK_HOST or 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help="TCP port (default: GOVTRACK_PORT or 8000; 0 picks a free one)"
    )
    return parser


def check_bind(settings: Settings, host: str) -> str | None:
    """Why binding `host` is refused (no keys and not loopback), or None when it is allowed.

    Keys from the list and from the keys file both count.

    Raises:
        ValueError, OSError: the keys file is malformed or unreadable.
    """
    if settings.allow_unauthenticated_bind or is_loopback(host) or keyring_from_settings(settings).enabled:
        return None
    return (
        f"refusing to bind {host!r} without API keys: configure GOVTRACK_API_KEYS, bind 127.0.0.1, "
        "or set GOVTRACK_ALLOW_UNAUTHENTICATED_BIND=true"
    )


def _serve(settings: Settings, host: str, port: int) -> int:
    configure_logging(settings.log_level, settings.log_format)
    log = get_logger("govtrack.cli")
    try:
        refusal = check_bind(settings, host)
        keys = len(keyring_from_settings(settings))
    except (ValueError, OSError) as exc:
        log.error("api_keys_invalid", error=str(exc))
        return 2
    if refusal:
        log.error("bind_refused", host=host, reason=refusal)
        return 2
    if not keys:
        log.warning("no_api_keys", host=host, note="no API keys configured: serving on loopback only")
    from api.server import serve  # imported here so that `--help` and a refused bind stay fast

    serve(settings, host, port)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `govtrack` console script."""
    args = _parser().parse_args(argv)
    settings = Settings()
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if args.command == "serve":
        return _serve(settings, host, port)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
