"""The analyst notebooks run in a real Jupyter kernel, on every store, with and without a server.

Each notebook is executed top to bottom by nbclient in an ipykernel (what "Run all" does), against
a `govtrack serve` subprocess seeded with the add-in's sample batch and demo events. The export
notebook then runs again with the server gone, on an export that `govtrack export` wrote. Cells
tagged `picture` must each leave a PNG of real size (drawn headless by matplotlib's Agg, via the
inline backend). Committed notebooks carry no outputs and no execution counts.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import httpx
import nbformat
import pyarrow as pa
import pytest
from nbclient import NotebookClient

from analytics.demo import generate_events
from tests.e2e.server import Server, ServerDirs, free_port

ROOT: Final = Path(__file__).parents[1]
NOTEBOOKS: Final = sorted((ROOT / "notebooks").glob("*.ipynb"))
FIXTURES: Final = Path(__file__).parent / "fixtures"
ARROW: Final = "application/vnd.apache.arrow.stream"
#: A blank 10 x 4 inch figure is ~2 KB of PNG; a drawn chart is tens of KB.
MIN_PICTURE_BYTES: Final = 10_000
#: The pictures each notebook must draw (tagged cells), by notebook file name.
PICTURES: Final = {"01_audit_questions.ipynb": 3, "02_parquet_archive.ipynb": 2}


def test_committed_notebooks_have_no_outputs() -> None:
    assert {p.name for p in NOTEBOOKS} == set(PICTURES)
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text())
        for number, cell in enumerate(notebook["cells"]):
            if cell["cell_type"] != "code":
                continue
            assert cell.get("outputs") == [], f"{path.name} cell {number}: outputs are not stripped"
            assert cell.get("execution_count") is None, f"{path.name} cell {number}: execution count kept"


def test_every_question_is_introduced_in_words() -> None:
    """A reader sees what each picture answers: the cell before a picture cell is markdown."""
    for path in NOTEBOOKS:
        cells = read(path).cells
        assert cells[0].cell_type == "markdown"
        pictures = [i for i, c in enumerate(cells) if "picture" in c.metadata.get("tags", [])]
        assert len(pictures) == PICTURES[path.name], path.name
        assert all(cells[i - 1].cell_type == "markdown" for i in pictures), path.name


def read(path: Path) -> nbformat.NotebookNode:
    """A notebook in format 4 (nbformat is untyped)."""
    notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return notebook


def seed(base: str) -> int:
    """The add-in's sample batch plus demo events, posted as the producers would; the event count."""
    pascal = (FIXTURES / "addin_batch_pascal.json").read_bytes()
    answer = httpx.post(f"{base}/api/events", content=pascal, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    stored = int(answer.json()["accepted"])
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
    return stored + 3000


def execute(path: Path) -> nbformat.NotebookNode:
    """Run every cell in a fresh python3 kernel (environment inherited); raises on a failing cell."""
    notebook = read(path)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    return notebook


def assert_pictures(notebook: nbformat.NotebookNode, name: str) -> None:
    """Each `picture` cell displayed one PNG of real size, and nothing ran with an error."""
    drawn = 0
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert not [o for o in cell.outputs if o.output_type == "error"], f"{name} cell {number}"
        if "picture" not in cell.metadata.get("tags", []):
            continue
        pngs = [
            base64.b64decode(o.data["image/png"]) for o in cell.outputs if "image/png" in o.get("data", {})
        ]
        assert len(pngs) == 1, f"{name} cell {number}: {len(pngs)} images, outputs {cell.outputs}"
        assert pngs[0].startswith(b"\x89PNG\r\n\x1a\n")
        assert len(pngs[0]) >= MIN_PICTURE_BYTES, f"{name} cell {number}: a {len(pngs[0])}-byte picture"
        drawn += 1
    assert drawn == PICTURES[name]


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook's cells printed."""
    return "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


@pytest.fixture
def kernel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The kernel inherits this process's environment: no stray govtrack settings, no display."""
    for name in ("GOVTRACK_URL", "GOVTRACK_API_KEY", "GOVTRACK_EXPORT_DIR", "MPLBACKEND", "DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return monkeypatch


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
def test_notebooks_run_in_a_kernel(kind: str, tmp_path: Path, kernel_env: pytest.MonkeyPatch) -> None:
    dirs = ServerDirs(tmp_path)
    server = Server(dirs, dirs.url_for(kind))
    try:
        server.wait_ready()
        total = seed(server.base)
        kernel_env.setenv("GOVTRACK_URL", server.base)
        for path in NOTEBOOKS:
            assert_pictures(execute(path), path.name)
    finally:
        server.stop()

    export_dir = tmp_path / "offline-export"
    environ: dict[str, Any] = {
        "GOVTRACK_STORE_URL": dirs.url_for(kind),
        "GOVTRACK_ARCHIVE_URL": str(dirs.archive),
        "GOVTRACK_SPOOL_DIR": str(dirs.spool),
    }
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "export", "--to-url", str(export_dir)],
        env={k: v for k, v in os.environ.items() if not k.startswith("GOVTRACK_")} | environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    kernel_env.setenv("GOVTRACK_EXPORT_DIR", str(export_dir))
    kernel_env.setenv("GOVTRACK_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    offline = execute(ROOT / "notebooks" / "02_parquet_archive.ipynb")
    assert_pictures(offline, "02_parquet_archive.ipynb")
    assert f"{total:,} events in " in printed(offline)
    assert f"under {export_dir}" in printed(offline)
