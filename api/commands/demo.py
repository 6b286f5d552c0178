"""`govtrack demo`: realistic add-in traffic (analytics.demo) through the HTTP API or into a store.

Through the API the events go as the add-in sends them, in batches (1000 by default) of Arrow IPC,
each retried on 429/503 after the server's Retry-After; straight into a store they are appended
in large slices, as a bulk load would. Events are generated in chunks, so memory stays bounded
whatever `--events` is; chunk k uses seed `--seed + k`, so a run is reproducible.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

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
    import pyarrow as pa

    from api.commands.progress import Progress

__all__ = ["add_parser", "run"]

GENERATE_CHUNK: Final = 200_000
STORE_SLICE: Final = 50_000
_SERVER_SET: Final = ["received_at", "batch_id"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `govtrack demo`."""
    demo = commands.add_parser(
        "demo",
        help="load realistic demo events (through the HTTP API or into a store)",
        description=paragraph(
            "Generate realistic add-in traffic (users in sessions editing workbooks, office "
            "hours, deep cell histories) and send it through the HTTP API in batches, or append it "
            "straight into a store. Without --url or --store: the store of GOVTRACK_STORE_URL. "
            "Progress: a bar on a terminal, a line per 10% otherwise."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exit_codes("failure: the server or store refused events, or could not be reached")
        + "\n\nexamples:\n  govtrack demo --events 100000 --url http://127.0.0.1:8000\n"
        "  govtrack demo --events 1000000 --days 60 --store parquet:///tmp/demo",
        allow_abbrev=False,
    )
    demo.add_argument("--events", type=_positive, required=True, metavar="N", help="how many events")
    demo.add_argument("--days", type=_positive, default=14, metavar="D", help="days they span (default 14)")
    demo.add_argument(
        "--end",
        type=timestamp,
        metavar="T",
        help="the events fall in the D days before this date (default: today, so the data is recent)",
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="random seed (default 0): equal seeds, equal events"
    )
    demo.add_argument(
        "--batch-size",
        type=_positive,
        default=1000,
        metavar="N",
        help="events per HTTP request (default 1000)",
    )
    target = demo.add_mutually_exclusive_group()
    target.add_argument("--url", help="a govtrack server, e.g. http://127.0.0.1:8000 (key: GOVTRACK_API_KEY)")
    target.add_argument(
        "--store",
        metavar="URL",
        help="a store URL (parquet:///dir, chdb:///dir, http(s)://...); one other than "
        "GOVTRACK_STORE_URL is opened alone: no archive tier, its own log beside its data",
    )


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def chunks(total: int, days: int, seed: int, end: dt.datetime | None) -> Iterator[pa.Table]:
    """`total` demo events in chunks of at most GENERATE_CHUNK, spanning the `days` before `end`."""
    from analytics.demo import generate_events

    last = (end or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    start = last.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=days)
    made, k = 0, 0
    while made < total:
        n = min(GENERATE_CHUNK, total - made)
        yield generate_events(n, seed=seed + k, start=start, days=days)
        made, k = made + n, k + 1


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Generate and send; prints progress and a summary line. JobError on any refusal."""
    from api.commands.progress import Progress

    target = args.url or args.store or settings.store_url
    progress = Progress(args.events, "demo")
    try:
        counts = _through_http(args, progress) if args.url else _into_store(args, settings, progress)
    finally:
        progress.close()
    summary = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    print(
        f"demo: {args.events:,} events in {progress.elapsed_s():.1f} s "
        f"({progress.rate():,.0f} events/s) to {_shown(target)}: {summary}"
    )
    return EXIT_OK


def _shown(target: str) -> str:
    """The target without a password."""
    head, sep, tail = target.rpartition("@")
    return f"{head.split('//')[0]}//***@{tail}" if sep and "//" in head else target


def _through_http(args: argparse.Namespace, progress: Progress) -> dict[str, int]:
    import httpx

    from analytics.client import GovtrackClient, GovtrackError

    # What the server answered. "accepted" counts events already stored too (a resend is
    # acknowledged, never stored twice); the contract's answer does not split them per request.
    counts = {"accepted": 0, "queued": 0}
    with GovtrackClient(args.url, api_key_from_env(), timeout=120) as client:
        for chunk in chunks(args.events, args.days, args.seed, args.end):
            events = chunk.drop_columns(_SERVER_SET)
            for offset in range(0, events.num_rows, args.batch_size):
                batch = events.slice(offset, args.batch_size)
                try:
                    answer = client.ingest(batch)
                except GovtrackError as exc:
                    raise JobError(f"the server refused a batch: {exc}") from exc
                except httpx.HTTPError as exc:
                    raise JobError(f"cannot reach {args.url}: {exc}") from exc
                if answer.get("rejected"):
                    raise JobError(f"the server rejected {answer['rejected']} events: {answer.get('errors')}")
                accepted = int(answer.get("accepted", 0))
                counts["accepted"] += accepted
                if answer.get("status") == "queued":  # in the spool: stored once it replays
                    counts["queued"] += accepted
                progress.update(batch.num_rows)
    return counts


def _into_store(args: argparse.Namespace, settings: Settings, progress: Progress) -> dict[str, int]:
    from storage.errors import StoreError

    counts = {"stored": 0, "duplicates": 0}
    store = open_store(settings, args.store)  # as the server opens it: archive tier, GOVTRACK_LOG_*
    try:
        for chunk in chunks(args.events, args.days, args.seed, args.end):
            for offset in range(0, chunk.num_rows, STORE_SLICE):
                part = chunk.slice(offset, STORE_SLICE)
                try:
                    result = store.append(part)
                except StoreError as exc:
                    raise JobError(f"the store refused events: {exc}") from exc
                counts["stored"] += result.stored
                counts["duplicates"] += result.duplicates
                progress.update(part.num_rows)
    finally:
        store.close()
    return counts
