"""Tree files and the compact range against pymerkle, and repair at open.

Roots and proofs equal pymerkle's at every size while appending in uneven batches; a torn or
stale set of files is repaired when opened.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from pymerkle import InmemoryTree

from storage.log.frontier import Frontier
from storage.log.merkle import EMPTY_ROOT, leaf_hash, verify_consistency, verify_inclusion
from storage.log.treefile import TreeFiles

N = 700
DATA = [i.to_bytes(4, "big") for i in range(N)]
LEAVES = [leaf_hash(d) for d in DATA]


def _reference() -> InmemoryTree:
    tree = InmemoryTree(algorithm="sha256")
    for d in DATA:
        tree.append_entry(d)
    return tree


REFERENCE = _reference()


def _root(n: int) -> bytes:
    return EMPTY_ROOT if n == 0 else REFERENCE.get_root(n)


def test_frontier_root_after_every_uneven_batch() -> None:
    rng, frontier, done = random.Random(3), Frontier(), 0
    assert frontier.root() == EMPTY_ROOT
    while done < N:
        batch = LEAVES[done : done + rng.randint(0, 37)]
        frontier.append(batch)
        done += len(batch)
        assert frontier.root() == _root(done)
        assert len(frontier.hashes()) == bin(done).count("1")
        assert Frontier.from_nodes(done, frontier.hashes()).root() == _root(done)


def test_tree_files_roots_and_proofs(tmp_path: Path) -> None:
    tree, rng, done = TreeFiles(tmp_path, durable=False), random.Random(5), 0
    while done < N:
        batch = LEAVES[done : done + rng.randint(1, 60)]
        assert tree.append(batch) == _root(done + len(batch))
        done += len(batch)
    for size in range(1, N + 1, 13):
        assert tree.root(size) == _root(size)
        for index in {0, size - 1, rng.randrange(size)}:
            assert verify_inclusion(
                index, size, LEAVES[index], tree.inclusion_proof(index, size), _root(size)
            )
        old = rng.randint(0, size)
        assert verify_consistency(old, size, _root(old), _root(size), tree.consistency_proof(old, size))
    assert sorted(p.name for p in tmp_path.iterdir())[:2] == ["level-00.bin", "level-04.bin"]
    assert not (tmp_path / "level-01.bin").exists()  # levels 1-3 are recomputed, not stored
    tree.close()


def test_torn_files_are_repaired_at_open(tmp_path: Path) -> None:
    tree = TreeFiles(tmp_path, durable=False)
    tree.append(LEAVES[:500])
    tree.close()
    with (tmp_path / "level-00.bin").open("ab") as fh:
        fh.write(b"\x01" * 17)  # a torn leaf write
    os.truncate(tmp_path / "level-05.bin", 32 * 3)  # an upper level behind the leaves
    with (tmp_path / "level-06.bin").open("ab") as fh:
        fh.write(b"\x02" * 64)  # an upper level ahead of them
    reopened = TreeFiles(tmp_path, durable=False)
    assert reopened.size == 500
    assert reopened.root() == _root(500)
    assert (tmp_path / "level-05.bin").stat().st_size == 32 * (500 >> 5)
    assert verify_inclusion(321, 500, LEAVES[321], reopened.inclusion_proof(321), _root(500))


def test_truncate_then_extend_to_the_store(tmp_path: Path) -> None:
    tree = TreeFiles(tmp_path, durable=False)
    tree.append(LEAVES[:600])
    tree.truncate(333)
    assert tree.size == 333
    assert tree.root() == _root(333)
    tree.append(LEAVES[333:N])
    tree.close()
    assert TreeFiles(tmp_path).root() == _root(N)
