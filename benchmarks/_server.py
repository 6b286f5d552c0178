"""Start a govtrack server as a subprocess for a benchmark, and read its resident memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

__all__ = ["free_port", "rss_mb", "serve"]

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serve(
    store_url: str | None, work: Path, *, noop: bool = False, module: list[str] | None = None
) -> Iterator[tuple[str, int]]:
    """Run the service on a free port; yields (base_url, pid).

    `noop` runs it over a store that discards everything; `module` runs another server instead
    (`python -m <module...> --port N`, e.g. a reference server of benchmarks.bench_ingest).
    """
    port = free_port()
    env = dict(os.environ)
    env.update(
        GOVTRACK_SPOOL_DIR=str(work / "spool"),
        GOVTRACK_ARCHIVE_URL=str(work / "archive"),
        GOVTRACK_LOG_LEVEL="warning",
    )
    if store_url:
        env["GOVTRACK_STORE_URL"] = store_url
    if module:
        cmd = [sys.executable, "-m", *module, "--port", str(port)]
    elif noop:
        cmd = [sys.executable, "-m", "benchmarks.noop_server", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready (exit code {proc.poll()})")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
