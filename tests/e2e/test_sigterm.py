"""SIGTERM during sustained ingest: a graceful stop that exits 0 and keeps every acknowledged event.

An orchestrator stops the service with SIGTERM (docker stop, Kubernetes). The promise: requests
already answered 200/207/202 are durable, requests in flight either finish or are refused in the
error shape (503 while shutting down), nothing is half-stored, and the process exits with status 0,
so a supervisor does not count a routine stop as a crash.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.e2e.server import ACKED, Load, Server, ServerDirs, assert_exactly_once


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_sigterm_during_ingest_exits_0_and_keeps_every_ack(kind: str, tmp_path: Path) -> None:
    dirs = ServerDirs(tmp_path)
    server = Server(dirs, dirs.url_for(kind))
    load = Load(server.base, tag="term", threads=3, batch_size=100)
    try:
        server.wait_ready()
        load.start()
        assert load.first_ack.wait(60), f"no batch acknowledged: {load.statuses}\n{server.log_tail()}"
        time.sleep(random.uniform(0.1, 0.6))
        code = server.terminate()
        load.stop()
    finally:
        load.stop()
        server.stop()
    log = server.log_tail(200_000)
    assert set(load.statuses) <= {*ACKED, 503, None}, load.statuses  # 202: spooled, a durable ack too
    assert '"event": "stopped"' in log  # the lifespan drained the writer and closed the store

    restarted = Server(dirs, dirs.url_for(kind))
    try:
        restarted.wait_ready()
        restarted.wait_spool_drained()
        assert_exactly_once(restarted.base, load.acked_ids(), load.sent_ids())
    finally:
        restarted.stop()
    assert code == 0, f"exit status {code} after SIGTERM; log ends:\n{log[-600:]}"
