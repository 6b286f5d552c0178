"""The `govtrack` command: `serve`, `keys`, and the jobs `demo`, `export`, `stats`, `migrate`.

Settings come from `GOVTRACK_*` environment variables, read once here and passed to
`create_app`; `--host`/`--port` override `GOVTRACK_HOST`/`GOVTRACK_PORT` (and the host served is
one the app answers in its Host check, see api.hostguard).
Shutdown on SIGTERM/SIGINT is described in `api.server`; a graceful stop exits 0.

`govtrack keys new --scopes ingest,read` makes an API key: the key for the client, printed once,
and its SHA-256 entry for GOVTRACK_API_KEYS or a keys file, so the server's configuration never
holds the plaintext. `govtrack keys secret` prints a random secret (cursor secret, ClickHouse
password). Neither reads settings or touches the network. Exit codes: 0 done, 2 usage error.

The jobs live in api/commands/ (one module each, with its parser); like `serve` they read the
`GOVTRACK_*` settings once. Every command exits 0 when done, 1 when the job failed (one line on
stderr says why), 2 on a usage error; each one's `--help` ends with its codes.
"""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import sys
from collections.abc import Sequence
from typing import Final

from pydantic import ValidationError

from api.auth import HASH_PREFIX, SCOPES, hash_key, keyring_from_settings
from api.cli_verify import add_verify_parser, run_verify
from api.commands import archive, demo, export, migrate, stats
from api.commands.common import EXIT_USAGE, JobError, exit_codes, fail, quiet_logging
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
                            (govtrack keys new --scopes ingest prints a fresh key and its line)
  GOVTRACK_ALLOW_UNAUTHENTICATED_BIND  true: allow a non-loopback bind without API keys
  GOVTRACK_ALLOWED_HOSTS    comma-separated host names answered besides 127.0.0.1, localhost,
                            [::1] and --host (ports ignored; * for any). Without keys any other
                            Host is 421, and POST/PUT/PATCH/DELETE need a JSON, NDJSON or Arrow
                            Content-Type (415) and no foreign Origin (403); with keys the host
                            list is enforced only when set
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


#: Bytes of randomness in a new key or secret (256 bits).
SECRET_BYTES: Final = 32


def _scopes(text: str) -> list[str]:
    """`ingest,read` or `ingest+read` -> ["ingest", "read"]; argparse reports a bad one (exit 2)."""
    scopes = [s.strip() for s in text.replace("+", ",").split(",") if s.strip()]
    unknown = sorted(set(scopes) - SCOPES)
    if not scopes or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scope(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(sorted(SCOPES))}"
        )
    return sorted(set(scopes), key=["ingest", "read", "admin"].index)


def _keys_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser(
        "keys",
        help="make API keys and secrets (prints them; stores nothing)",
        description="Make API keys and secrets for GOVTRACK_API_KEYS, GOVTRACK_CURSOR_SECRET and the "
        "ClickHouse password. Output goes to stdout only; exit 0, or 2 on a usage error.",
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = actions.add_parser(
        "new",
        help="a new API key and its hashed configuration entry",
        description="Print a new random API key (give it to the client; it is shown once) and the "
        "entry that admits it: `sha256:<digest>:scope+scope` for GOVTRACK_API_KEYS (several entries "
        "are joined with commas), or a keys-file line. The server never needs the plaintext.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  govtrack keys new --scopes ingest,read",
    )
    new.add_argument(
        "--scopes",
        type=_scopes,
        required=True,
        help=f"comma-separated scopes: {', '.join(sorted(SCOPES))} (admin implies read)",
    )
    actions.add_parser(
        "secret",
        help="a random secret (cursor secret, ClickHouse password)",
        description="Print 64 random hex digits, safe in URLs and env files: use it for "
        "GOVTRACK_CURSOR_SECRET or CLICKHOUSE_PASSWORD.",
    )


def _keys(args: argparse.Namespace) -> int:
    """`govtrack keys new|secret`: print, store nothing."""
    if args.keys_command == "secret":
        print(secrets.token_hex(SECRET_BYTES))
        return 0
    key = secrets.token_urlsafe(SECRET_BYTES)
    digest = HASH_PREFIX + hash_key(key).hex()
    scopes = "+".join(args.scopes)
    print(f"key: {key}")
    print(f"GOVTRACK_API_KEYS entry: {digest}:{scopes}")
    print(f"keys-file line: {digest} {scopes}")
    return 0


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
        epilog=_ENV_HELP + "\n" + exit_codes("the server could not start") + " (or the bind was refused)",
    )
    serve.add_argument("--host", help="address to bind (default: GOVTRACK_HOST or 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help="TCP port (default: GOVTRACK_PORT or 8000; 0 picks a free one)"
    )
    _keys_parser(commands)
    add_verify_parser(commands)
    for job in _JOBS.values():
        job.add_parser(commands)
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


_JOBS: Final = {"demo": demo, "export": export, "stats": stats, "migrate": migrate, "archive": archive}


def _job(name: str, args: argparse.Namespace, settings: Settings) -> int:
    """Run one job: 0 done, 1 with a one-line reason on stderr."""
    quiet_logging(settings)
    try:
        code: int = _JOBS[name].run(args, settings)
    except JobError as exc:
        return fail(str(exc))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `govtrack` console script."""
    args = _parser().parse_args(argv)
    if args.command == "keys":
        return _keys(args)
    if args.command == "verify":  # offline, for auditors: reads no settings
        return run_verify(args)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"govtrack: invalid settings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command in _JOBS:
        return _job(args.command, args, settings)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if args.command == "serve":
        # The host served is one the app answers (Host check of api.hostguard).
        return _serve(settings.model_copy(update={"host": host, "port": port}), host, port)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
