"""Agreement with an independent implementation: pymerkle (GPL-3.0, a test-only dependency).

pymerkle is never imported by the package (tests/storage/log/test_layout.py checks that). Its
proof format differs from RFC 6962's (its paths start with the base hash, and its consistency
paths decompose the tree differently), so the agreement checked is: equal roots for every size
up to 1024, equal inclusion paths (pymerkle's path minus its base) for several leaves of every
size up to 1024, and for every consistency pair up to 128 each side's proof verified against
the other side's roots, with the prior root pymerkle's proof yields equal to ours.
"""

from __future__ import annotations

import random

import pytest
from pymerkle import InmemoryTree
from pymerkle import verify_consistency as pm_verify_consistency

from storage.log.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from storage.log.treefile import TreeFiles

MAX_SIZE = 1024
MAX_PAIR = 128


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[InmemoryTree, TreeFiles]:
    data = [i.to_bytes(4, "big") + b"govtrack" for i in range(MAX_SIZE)]
    reference = InmemoryTree(algorithm="sha256")
    for entry in data:
        reference.append_entry(entry)
    ours = TreeFiles(tmp_path_factory.mktemp("tree"), durable=False)
    ours.append([leaf_hash(d) for d in data])
    return reference, ours


def test_roots_agree_for_every_size_up_to_1024(trees: tuple[InmemoryTree, TreeFiles]) -> None:
    reference, ours = trees
    disagree = [n for n in range(1, MAX_SIZE + 1) if reference.get_root(n) != ours.root(n)]
    assert disagree == []


def test_inclusion_paths_agree_for_every_size_up_to_1024(trees: tuple[InmemoryTree, TreeFiles]) -> None:
    reference, ours = trees
    rng = random.Random(11)
    disagree = []
    for size in range(1, MAX_SIZE + 1):
        for index in {0, size - 1, size // 2, rng.randrange(size), rng.randrange(size)}:
            theirs = reference.prove_inclusion(index + 1, size)  # pymerkle counts leaves from one
            mine = inclusion_proof(index, size, ours.subtree)
            if theirs.path[1:] != mine or not verify_inclusion(
                index, size, theirs.path[0], mine, reference.get_root(size)
            ):
                disagree.append((index, size))
    assert disagree == []


def test_consistency_agrees_for_every_pair_up_to_128(trees: tuple[InmemoryTree, TreeFiles]) -> None:
    reference, ours = trees
    disagree = []
    for new in range(1, MAX_PAIR + 1):
        new_root = reference.get_root(new)
        for old in range(1, new + 1):
            old_root = reference.get_root(old)
            theirs = reference.prove_consistency(old, new)
            mine = consistency_proof(old, new, ours.subtree)
            ok_mine = verify_consistency(old, new, old_root, new_root, mine)
            try:
                pm_verify_consistency(ours.root(old), ours.root(new), theirs, prior_size=old, later_size=new)
                ok_theirs = True
            except Exception:  # pymerkle's InvalidProof
                ok_theirs = False
            if not (ok_mine and ok_theirs and theirs.retrieve_prior_state() == ours.root(old)):
                disagree.append((old, new))
    assert disagree == []
