"""api.tiers.configured_store: the one way the server and every CLI job build the store of settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings
from api.tiers import configured_store
from api.transparency import log_options
from storage.archive.tiers import TieredStore


@pytest.mark.parametrize("scheme", ["parquet", "chdb"])
def test_the_store_gets_every_setting_that_shapes_it(tmp_path: Path, scheme: str) -> None:
    settings = Settings(
        store_url=f"{scheme}://{tmp_path / 'data'}",
        archive_url=str(tmp_path / "archive"),
        engine_memory_mb=320,
        log_dir=tmp_path / "log",
        log_key_file=tmp_path / "log.key",
        log_origin="example.org/audit",
    )
    store = configured_store(settings)  # not opened: nothing here needs the engine
    assert isinstance(store, TieredStore)
    assert store.location.base == str(tmp_path / "archive")
    hot = store.hot
    assert getattr(hot, "_memory_mb") == 320  # noqa: B009 - the engine's budget has no public name
    assert getattr(hot, "_log_options") == log_options(settings)  # noqa: B009
