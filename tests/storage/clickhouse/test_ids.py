"""The single writer's id-hash filter: no false negatives, hashes independent of array layout."""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa

from storage.clickhouse.ids import IdFilter, hash_ids, writer_state


def ids(n: int, seed: int) -> pa.Array:
    rng = np.random.default_rng(seed)
    return pa.array([str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, n)], pa.string())


def test_hash_depends_on_the_text_only() -> None:
    arr = pa.array(["", "a", "ab", "ab", "00000000-0000-0000-0000-000000000001", "ü", "a" * 300])
    whole = hash_ids(arr)
    assert whole[2] == whole[3]
    assert len(set(whole.tolist())) == 6
    assert hash_ids(arr.slice(2)).tolist() == whole[2:].tolist()
    chunked = pa.chunked_array([arr.slice(0, 3), arr.slice(3)])
    assert hash_ids(chunked).tolist() == whole.tolist()
    assert hash_ids(arr.cast(pa.large_string())).tolist() == whole.tolist()
    assert hash_ids(pa.array([], pa.string())).size == 0


def test_uniform_and_mixed_lengths_hash_alike() -> None:
    uniform = ids(50, 1)
    mixed = pa.concat_arrays([uniform, pa.array(["short"])])
    assert hash_ids(mixed)[:50].tolist() == hash_ids(uniform).tolist()


def test_filter_has_no_false_negatives_across_merges() -> None:
    flt = IdFilter()
    batches = [hash_ids(ids(1000 + 37 * i, i)) for i in range(40)]
    for batch in batches:
        flt.add(batch)
        flt.add(batch[:10])  # repeats are harmless
    assert len(flt.runs) < 10
    for batch in batches:
        assert flt.maybe_contains(batch).all()
    fresh = hash_ids(ids(5000, 999))
    assert not flt.maybe_contains(fresh).any()
    assert not IdFilter().maybe_contains(fresh).any()


def test_writer_state_is_shared_per_database() -> None:
    a = writer_state("/data/x", "db1")
    assert writer_state("/data/x", "db1") is a
    assert writer_state("/data/x", "db2") is not a
