"""`govtrack stats`: the dashboard's figures as a table a person reads, or as the API's JSON.

From the store of GOVTRACK_STORE_URL by default, or from a running server with `--url` (a server
holds its store: the Parquet root is locked and the embedded engine has one process per path).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from api.commands.common import (
    EXIT_OK,
    JobError,
    api_key_from_env,
    exit_codes,
    open_store,
    paragraph,
    timestamp,
)
from api.settings import Settings

if TYPE_CHECKING:
    from storage.base import Stats

__all__ = ["add_parser", "render", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `govtrack stats`."""
    stats = commands.add_parser(
        "stats",
        help="totals, distinct counts and top lists (a table, or --json)",
        description=paragraph(
            "Exact figures over the events in [--from, --to): totals, distinct users, "
            "workbooks and sessions, first and last event, counts by event type, top users and "
            "workbooks. From GOVTRACK_STORE_URL, or from a running server with --url."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exit_codes("failure: the store or server could not be reached, or refused the query")
        + "\n\nexamples:\n  govtrack stats --from 2025-06-01 --to 2025-07-01\n"
        "  govtrack stats --url http://127.0.0.1:8000 --json",
        allow_abbrev=False,
    )
    stats.add_argument(
        "--from", dest="start", type=timestamp, metavar="T", help="first instant included (ISO-8601)"
    )
    stats.add_argument(
        "--to", dest="end", type=timestamp, metavar="T", help="first instant excluded (ISO-8601)"
    )
    stats.add_argument(
        "--top",
        type=int,
        default=10,
        choices=range(1, 1001),
        metavar="N",
        help="top list length (default 10)",
    )
    stats.add_argument("--json", action="store_true", help="print the API's JSON (GET /api/stats) instead")
    stats.add_argument("--url", help="read from a running server (key: GOVTRACK_API_KEY)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the figures."""
    figures = _from_server(args) if args.url else _from_store(args, settings)
    print(json.dumps(figures, indent=2, ensure_ascii=False) if args.json else render(figures))
    return EXIT_OK


def _from_store(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from storage.base import EventFilter
    from storage.errors import StoreError

    store = open_store(settings)  # both tiers, as GET /api/stats counts
    try:
        result = store.stats(EventFilter(start=args.start, end=args.end), args.top)
    except StoreError as exc:
        raise JobError(f"the store could not answer: {exc}") from exc
    finally:
        store.close()
    return as_json(result)


def as_json(result: Stats) -> dict[str, Any]:
    """The store's Stats in GET /api/stats's shape."""
    return {
        "total_events": result.total_events,
        "unique_users": result.unique_users,
        "unique_workbooks": result.unique_workbooks,
        "unique_sessions": result.unique_sessions,
        "first_event_at": iso(result.first_event_at),
        "last_event_at": iso(result.last_event_at),
        "by_event_type": result.by_event_type.to_pylist(),
        "top_users": result.top_users.to_pylist(),
        "top_workbooks": result.top_workbooks.to_pylist(),
    }


def _from_server(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from analytics.client import GovtrackClient, GovtrackError

    try:
        with GovtrackClient(args.url, api_key_from_env(), timeout=120) as client:
            result = client.stats(top=args.top, **_window(args))
    except GovtrackError as exc:
        raise JobError(f"the server refused: {exc}") from exc
    except httpx.HTTPError as exc:
        raise JobError(f"cannot reach {args.url}: {exc}") from exc
    return {
        "total_events": result.total_events,
        "unique_users": result.unique_users,
        "unique_workbooks": result.unique_workbooks,
        "unique_sessions": result.unique_sessions,
        "first_event_at": iso(result.first_event_at),
        "last_event_at": iso(result.last_event_at),
        "by_event_type": result.by_event_type.to_dicts(),
        "top_users": result.top_users.to_dicts(),
        "top_workbooks": result.top_workbooks.to_dicts(),
    }


def iso(value: dt.datetime | None) -> str | None:
    """A datetime as the API writes it: UTC, microseconds, `Z`."""
    return None if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _window(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in (("from_", args.start), ("to", args.end)) if v is not None}


def render(figures: dict[str, Any]) -> str:
    """The figures as aligned text: totals first, then the three count tables."""
    lines = [
        f"events      {figures['total_events']:>12,}",
        f"users       {figures['unique_users']:>12,}",
        f"workbooks   {figures['unique_workbooks']:>12,}",
        f"sessions    {figures['unique_sessions']:>12,}",
        f"first event {figures['first_event_at'] or '-':>28}",
        f"last event  {figures['last_event_at'] or '-':>28}",
    ]
    for title, key, rows in (
        ("event type", "event_type", figures["by_event_type"]),
        ("top users", "user_name", figures["top_users"]),
        ("top workbooks", "workbook_name", figures["top_workbooks"]),
    ):
        lines += ["", *_table(title, key, rows)]
    return "\n".join(lines)


def _table(title: str, key: str, rows: list[dict[str, Any]]) -> list[str]:
    names = [str(r[key]) if r[key] is not None else "(none)" for r in rows]
    width = max([len(title), *(len(n) for n in names)])
    out = [f"{title:<{width}}  {'events':>12}", f"{'-' * width}  {'-' * 12}"]
    out += [f"{name:<{width}}  {int(r['count']):>12,}" for name, r in zip(names, rows, strict=True)]
    return out if rows else [*out, "(no events)"]
