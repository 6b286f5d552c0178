"""The `govtrack` command: `govtrack serve [--host HOST] [--port PORT]`.

Settings come from `GOVTRACK_*` environment variables, read once here and passed to
`create_app`; `--host`/`--port` override `GOVTRACK_HOST`/`GOVTRACK_PORT`.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence

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
                            e.g. "k1:ingest,k2:read+admin"; a key without scopes gets all of them.
                            With no keys the server binds loopback only.
  GOVTRACK_ALLOW_UNAUTHENTICATED_BIND  true: allow a non-loopback bind without API keys
  GOVTRACK_HOST, GOVTRACK_PORT         defaults for --host / --port (127.0.0.1, 8000)
  GOVTRACK_MAX_BATCH_EVENTS (10000), GOVTRACK_MAX_BODY_BYTES (67108864, after decompression)
  GOVTRACK_LOG_LEVEL        debug|info|warning|error (default info)
  GOVTRACK_LOG_FORMAT       json|console (default json)
  GOVTRACK_WRITER_MAX_ROWS (50000), GOVTRACK_WRITER_MAX_WAIT_MS (2): group-commit batching
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
    """Why binding `host` is refused (no keys and not loopback), or None when it is allowed."""
    if settings.api_keys or settings.allow_unauthenticated_bind or is_loopback(host):
        return None
    return (
        f"refusing to bind {host!r} without API keys: configure GOVTRACK_API_KEYS, bind 127.0.0.1, "
        "or set GOVTRACK_ALLOW_UNAUTHENTICATED_BIND=true"
    )


def _serve(settings: Settings, host: str, port: int) -> int:
    configure_logging(settings.log_level, settings.log_format)
    log = get_logger("govtrack.cli")
    refusal = check_bind(settings, host)
    if refusal:
        log.error("bind_refused", host=host, reason=refusal)
        return 2
    if not settings.api_keys:
        log.warning("no_api_keys", host=host, note="no API keys configured: serving on loopback only")
    import uvicorn  # imported here so that `--help` and a refused bind stay fast

    from api.app import create_app

    app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=30,
    )
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
