"""The analyst notebooks run, cell by cell, against a real server on every store.

No Jupyter is needed: code cells are compiled and executed in one namespace, in order, which is
what "Run all" does. The notebooks are committed with outputs stripped, and this test keeps it so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from analytics.demo import generate_events
from tests.e2e.server import Server, ServerDirs

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
FIXTURES = Path(__file__).parent / "fixtures"
ARROW = "application/vnd.apache.arrow.stream"


def code_cells(path: Path) -> list[str]:
    """The code of each code cell; fails if a cell carries outputs (they must be stripped)."""
    cells: list[dict[str, Any]] = json.loads(path.read_text())["cells"]
    code = []
    for cell in cells:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name}: outputs are not stripped"
            assert cell.get("execution_count") is None, f"{path.name}: execution counts are not stripped"
            code.append("".join(cell["source"]))
    return code


def seed(base: str) -> None:
    """The add-in's sample batch plus demo events, posted as the producers would."""
    pascal = (FIXTURES / "addin_batch_pascal.json").read_bytes()
    answer = httpx.post(f"{base}/api/events", content=pascal, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    sink = pa.BufferOutputStream()
    demo = generate_events(3000, seed=11).drop_columns(["received_at", "batch_id"])
    with pa.ipc.new_stream(sink, demo.schema) as writer:
        writer.write_table(demo)
    answer = httpx.post(
        f"{base}/api/events",
        content=sink.getvalue().to_pybytes(),
        headers={"Content-Type": ARROW},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_notebooks_run_top_to_bottom(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert NOTEBOOKS, "no notebooks found"
    dirs = ServerDirs(tmp_path)
    server = Server(dirs, dirs.url_for(kind))
    try:
        server.wait_ready()
        seed(server.base)
        monkeypatch.setenv("GOVTRACK_URL", server.base)
        monkeypatch.delenv("GOVTRACK_API_KEY", raising=False)
        for notebook in NOTEBOOKS:
            namespace: dict[str, Any] = {"__name__": "__notebook__"}
            for number, source in enumerate(code_cells(notebook)):
                exec(compile(source, f"{notebook.name}[cell {number}]", "exec"), namespace)  # noqa: S102
    finally:
        server.stop()
