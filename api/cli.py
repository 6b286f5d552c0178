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
import textwrap
from collections.abc import Sequence
from typing import Final

from pydantic import ValidationError
from pydantic_core import PydanticUndefined

from api.auth import HASH_PREFIX, SCOPES, hash_key, keyring_from_settings
from api.cli_verify import add_verify_parser, run_verify
from api.commands import archive, demo, export, migrate, stats
from api.commands.common import EXIT_USAGE, JobError, exit_codes, fail, quiet_logging
from api.logging import configure_logging, get_logger
from api.settings import Settings

__all__ = ["is_loopback", "main", "settings_help"]


def settings_help() -> str:
    """Every setting as `GOVTRACK_<NAME> (default ...)` and its description, from the Settings model.

    Generated rather than written out, so `--help` cannot drift from what the service reads: a
    new field appears here with its description (every field has one, a test checks).
    """
    lines = ["environment (read once at start; every GOVTRACK_* setting):"]
    for name, field in Settings.model_fields.items():
        default = _default_text(field.default) if field.default_factory is None else None
        lines.append(f"  GOVTRACK_{name.upper()}" + (f" (default {default})" if default else ""))
        lines += textwrap.wrap(
            field.description or "", width=_HELP_WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6
        )
    return "\n".join(lines) + "\n"


def _default_text(value: object) -> str | None:
    """A default as a person types it; None for "unset", which the description explains."""
    if value is None or value == () or value is PydanticUndefined:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: Width of the settings' descriptions in --help (argparse keeps an epilog as written).
_HELP_WIDTH: Final = 92

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
        epilog=settings_help(),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the HTTP API (uvicorn)",
        description="Run the HTTP API with uvicorn, settings from GOVTRACK_* variables.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=settings_help()
        + "\n"
        + exit_codes("the server could not start")
        + " (or the bind was refused)",
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
