"""Object stores for the archive tests (moto S3, Azurite, session-wide) and tiered stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from storage.archive.location import ObjectStoreOptions
from storage.archive.tiers import TieredStore
from storage.base import EventStore
from tests.objectstores.fixtures import azure, s3
from tests.storage.archive.data import tiered

__all__ = ["TiersOf", "azure", "s3", "tiers_of"]

TiersOf = Callable[..., TieredStore]


@pytest.fixture
def tiers_of(store: EventStore) -> Iterator[TiersOf]:
    """Tiered stores over the parametrised hot store; their archive readers closed at the end."""
    made: list[TieredStore] = []

    def make(url: str, options: ObjectStoreOptions | None = None) -> TieredStore:
        made.append(tiered(store, url, options))
        return made[-1]

    yield make
    for t in made:
        t.reader.close()
