"""pytest fixtures over tests.objectstores.servers (imported by the conftests that need them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.objectstores.servers import ObjectStore, azurite, moto_s3

__all__ = ["azure", "s3"]


@pytest.fixture(scope="session")
def s3() -> Iterator[ObjectStore]:
    """Moto's S3 API on 127.0.0.1, one per test session."""
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="session")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    """Azurite's Blob API on 127.0.0.1, one per test session."""
    with azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server
