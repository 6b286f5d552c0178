"""kill -9 of the server during sustained concurrent ingest, then a restart on the same directories.

Proves the contract's first guarantee end to end, on both engines: an event acknowledged with
200/207/202 survives a crash of the process the moment after the response, and a crash never
makes an event appear twice (not even one whose answer was lost). Three crash rounds per store,
each at a random moment, each restart checking everything acknowledged in all earlier rounds.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.e2e.server import Load, Server, ServerDirs, assert_exactly_once

ROUNDS = 3


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_kill9_during_ingest_keeps_every_acknowledged_event_once(kind: str, tmp_path: Path) -> None:
    dirs = ServerDirs(tmp_path)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    acked: set[str] = set()
    sent: set[str] = set()
    for round_no in range(ROUNDS + 1):
        server = Server(dirs, dirs.url_for(kind))
        load: Load | None = None
        try:
            server.wait_ready()
            server.wait_spool_drained()
            count = assert_exactly_once(server.base, acked, sent)
            assert count >= len(acked)
            if round_no == ROUNDS:
                break
            load = Load(server.base, tag=f"k{round_no}", threads=3, batch_size=rng.choice((50, 100, 200)))
            load.start()
            assert load.first_ack.wait(60), f"no batch acknowledged: {load.statuses}\n{server.log_tail()}"
            time.sleep(rng.uniform(0.05, 0.8))  # the random moment (seed in the failure message)
            server.kill9()
            load.stop()
            acked |= load.acked_ids()
            sent |= load.sent_ids()
            assert set(load.statuses) <= {200, None}, (seed, load.statuses)
        except AssertionError as exc:
            raise AssertionError(f"round {round_no}, seed {seed}: {exc}") from exc
        finally:
            if load is not None:
                load.stop()
            server.stop()
    assert len(acked) >= ROUNDS  # every round acknowledged something before its crash
