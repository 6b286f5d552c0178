"""kill -9 soak: the server killed during concurrent ingest, again and again, on both stores.

Each round: start `govtrack serve` on the same directories, resend every batch the previous
round's crash left unanswered (shuffled, split and merged with new events, so never grouped as
first sent), check, then post from four clients and kill -9 at a random moment. The check after
each restart: every acknowledged id is read exactly once and nothing else is (including ids whose
answer the crash lost), and every figure the API reports (stats over three windows, hour series by
every group, every session) equals the plain-Python oracle over the events read back
(tests.contract.agreement over HTTP). KILLS rounds per store: 20 kills over both.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import pytest

from tests.contract.agreement import assert_agrees
from tests.e2e.http_reader import HttpReader
from tests.e2e.server import (
    ACKED,
    Batch,
    Load,
    Server,
    ServerDirs,
    assert_exactly_once,
    make_varied_batch,
    oracle_rows,
)

KILLS = 10


def resend(base: str, lost: list[Batch], rng: random.Random, tag: str) -> list[Batch]:
    """Post the unanswered batches' events again, regrouped with new events; all must be stored."""
    events = [e for b in lost for e in b.body["events"]]
    fresh, _ = make_varied_batch(rng.randint(1, 50), tag)
    events += fresh.body["events"]
    rng.shuffle(events)
    sent: list[Batch] = []
    with httpx.Client(base_url=base, timeout=120) as client:
        while events:
            size = rng.randint(1, max(1, len(events) // 2))
            chunk, events = events[:size], events[size:]
            batch = Batch([e["EventId"] for e in chunk], body={"events": chunk})
            batch.status = client.post("/api/events", json=batch.body).status_code
            assert batch.status in ACKED, batch.status
            sent.append(batch)
    return sent


@pytest.mark.slow
@pytest.mark.timeout(1200)  # ~3.5 min per store on a quiet machine; over 300 s at load average 25
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_kill9_soak_every_event_once_and_every_figure_exact(kind: str, tmp_path: Path) -> None:
    dirs = ServerDirs(tmp_path)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    done: list[Batch] = []  # answered (or resent and answered): must all be stored, once
    lost: list[Batch] = []  # sent, unanswered: may be stored, once
    for round_no in range(KILLS + 1):
        server = Server(dirs, dirs.url_for(kind))
        load: Load | None = None
        try:
            server.wait_ready()
            server.wait_spool_drained()
            known = {i for b in [*done, *lost] for i in b.ids}
            assert_exactly_once(server.base, {i for b in done for i in b.ids}, known)
            done += resend(server.base, lost, rng, f"r{round_no}")
            lost = []
            reader = HttpReader(server.base)
            try:
                assert_agrees(reader, oracle_rows(done))
            finally:
                reader.close()
            if round_no == KILLS:
                break
            load = Load(
                server.base,
                tag=f"k{round_no}",
                threads=4,
                batch_size=rng.choice((100, 250, 1000)),
                factory=make_varied_batch,
            )
            load.start()
            assert load.first_ack.wait(60), f"no batch acknowledged: {load.statuses}\n{server.log_tail()}"
            time.sleep(rng.uniform(0.05, 0.8))  # the random moment (seed in the failure message)
            server.kill9()
            load.stop()
            done += [b for b in load.batches if b.acked]
            lost = [b for b in load.batches if not b.acked]
            assert set(load.statuses) <= {200, None}, (seed, load.statuses)
        except AssertionError as exc:
            raise AssertionError(f"{kind} round {round_no}, seed {seed}: {exc}\n{server.log_tail()}") from exc
        finally:
            if load is not None:
                load.stop()
            server.stop()
