"""storage/log/merkle.py reproduces transparency-dev/merkle's published RFC 6962 vectors."""

from __future__ import annotations

import base64

import pytest

from storage.log.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from tests.storage.log import vectors as v

LEAVES = [leaf_hash(d) for d in v.LEAF_INPUTS]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _h(hexes: list[str]) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


def _subtree(start: int, end: int) -> bytes:
    return root_from_leaves(LEAVES[start:end])


def test_hasher_vectors() -> None:
    assert EMPTY_ROOT.hex() == v.HASHER["empty_root"]
    assert leaf_hash(b"").hex() == v.HASHER["empty_leaf"]
    assert leaf_hash(b"L123456").hex() == v.HASHER["leaf_L123456"]
    assert node_hash(b"N123", b"N456").hex() == v.HASHER["node_N123_N456"]


def test_every_published_root_and_node() -> None:
    assert [root_from_leaves(LEAVES[:n]).hex() for n in range(9)] == v.ROOTS
    for level, nodes in enumerate(v.NODE_HASHES):
        width = 1 << level
        assert [_subtree(i * width, (i + 1) * width).hex() for i in range(len(nodes))] == nodes


@pytest.mark.parametrize(("index", "size", "proof"), v.INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    assert inclusion_proof(index, size, _subtree) == _h(proof)
    assert verify_inclusion(index, size, LEAVES[index], _h(proof), bytes.fromhex(v.ROOTS[size]))


@pytest.mark.parametrize(("size1", "size2", "proof"), v.CONSISTENCY)
def test_consistency_vectors(size1: int, size2: int, proof: list[str]) -> None:
    assert consistency_proof(size1, size2, _subtree) == _h(proof)
    root1, root2 = bytes.fromhex(v.ROOTS[size1]), bytes.fromhex(v.ROOTS[size2])
    assert verify_consistency(size1, size2, root1, root2, _h(proof))


def test_testdata_json_happy_paths() -> None:
    inc = v.INCLUSION_JSON
    hashes = inc["proof"]
    assert isinstance(hashes, list)
    proof = [base64.b64decode(p) for p in hashes]
    root, leaf = base64.b64decode(str(inc["root"])), base64.b64decode(str(inc["leafHash"]))
    assert verify_inclusion(int(str(inc["leafIdx"])), int(str(inc["treeSize"])), leaf, proof, root)
    con = v.CONSISTENCY_JSON
    chashes = con["proof"]
    assert isinstance(chashes, list)
    cproof = [base64.b64decode(p) for p in chashes]
    r1, r2 = base64.b64decode(str(con["root1"])), base64.b64decode(str(con["root2"]))
    assert verify_consistency(int(str(con["size1"])), int(str(con["size2"])), r1, r2, cproof)


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, tuple[int, int, bytes, list[bytes], bytes]]]:
    """transparency-dev's corruptInclusionProof, as (description, arguments) that must fail."""
    probes = [
        ("index - 1", (index - 1, size, leaf, proof, root)),
        ("index + 1", (index + 1, size, leaf, proof, root)),
        ("index ^ 2", (index ^ 2, size, leaf, proof, root)),
        ("size * 2", (index, size * 2, leaf, proof, root)),
        ("size / 2", (index, size // 2, leaf, proof, root)),
        ("wrong leaf", (index, size, b"WrongLeaf", proof, root)),
        ("empty root", (index, size, leaf, proof, EMPTY_ROOT)),
        ("random root", (index, size, leaf, proof, SOME_HASH)),
        ("trailing garbage", (index, size, leaf, [*proof, b""], root)),
        ("trailing root", (index, size, leaf, [*proof, root], root)),
        ("preceding garbage", (index, size, leaf, [b"", *proof], root)),
        ("preceding root", (index, size, leaf, [root, *proof], root)),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((f"modified proof[{i}] bit 3", (index, size, leaf, flipped, root)))
    if proof:
        probes.append(("removed component", (index, size, leaf, proof[:-1], root)))
    if len(proof) > 1:
        probes.append(("inserted component", (index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root)))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), v.INCLUSION)
def test_inclusion_corruption_probes_all_fail(index: int, size: int, proof: list[str]) -> None:
    root, leaf = bytes.fromhex(v.ROOTS[size]), LEAVES[index]
    accepted = [
        d for d, args in _inclusion_probes(index, size, _h(proof), root, leaf) if verify_inclusion(*args)
    ]
    assert accepted == []


@pytest.mark.parametrize(("size1", "size2", "proof"), [c for c in v.CONSISTENCY if c[2]])
def test_consistency_corruption_probes_all_fail(size1: int, size2: int, proof: list[str]) -> None:
    p = _h(proof)
    r1, r2 = bytes.fromhex(v.ROOTS[size1]), bytes.fromhex(v.ROOTS[size2])
    probes = {
        "size1 - 1": (size1 - 1, size2, r1, r2, p),
        "size1 + 1": (size1 + 1, size2, r1, r2, p),
        "size1 ^ 2": (size1 ^ 2, size2, r1, r2, p),
        "size2 * 2": (size1, size2 * 2, r1, r2, p),
        "size2 / 2": (size1, size2 // 2, r1, r2, p),
        "wrong root1": (size1, size2, b"WrongRoot", r2, p),
        "wrong root2": (size1, size2, r1, b"WrongRoot", p),
        "swapped roots": (size1, size2, r2, r1, p),
        "empty proof": (size1, size2, r1, r2, []),
        "trailing garbage": (size1, size2, r1, r2, [*p, b""]),
        "trailing root1": (size1, size2, r1, r2, [*p, r1]),
        "trailing root2": (size1, size2, r1, r2, [*p, r2]),
        "preceding garbage": (size1, size2, r1, r2, [b"", *p]),
        "preceding root1": (size1, size2, r1, r2, [r1, *p]),
        "preceding root2": (size1, size2, r1, r2, [r2, *p]),
        "preceding proof[0]": (size1, size2, r1, r2, [p[0], *p]),
        "truncated proof": (size1, size2, r1, r2, p[:-1]),
    }
    for i in range(len(p)):
        flipped = list(p)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes[f"modified proof[{i}] bit 4"] = (size1, size2, r1, r2, flipped)
    assert [d for d, args in probes.items() if verify_consistency(*args)] == []


def test_degenerate_consistency_cases() -> None:
    """verify_test.go's table, except that govtrack is stricter about size 0 (see below)."""
    r1, r2 = b"don't care 1".ljust(32, b"."), b"don't care 2".ljust(32, b".")
    assert not verify_consistency(0, 0, r1, r2, [])
    assert not verify_consistency(1, 1, r1, r2, [])
    assert verify_consistency(1, 1, r2, r2, [])
    assert not verify_consistency(1, 0, r1, r2, [])
    assert not verify_consistency(2, 1, r1, r2, [])
    assert not verify_consistency(1, 2, r1, r2, [])
    assert not verify_consistency(1, 1, EMPTY_ROOT, r2, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    # transparency-dev accepts (0, 1) with any roots; an empty tree has exactly one root, so here
    # the old root must be SHA-256("") (a size-0 checkpoint with another root is not one of ours).
    assert not verify_consistency(0, 1, r1, r2, [])
    assert verify_consistency(0, 1, EMPTY_ROOT, r2, [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, r2, [EMPTY_ROOT])


def test_single_entry_inclusion() -> None:
    """verify_test.go TestVerifyInclusionSingleEntry: leaf == root, empty proof; wrong sizes fail."""
    h = leaf_hash(b"data")
    assert verify_inclusion(0, 1, h, [], h)
    assert not verify_inclusion(0, 1, b"", [], h)
    assert not verify_inclusion(0, 1, h, [], b"")
    assert not verify_inclusion(0, 1, b"", [], b"")
    for index, size in [(0, 0), (1, 0), (2, 1)]:
        assert not verify_inclusion(index, size, SOME_HASH, [], EMPTY_ROOT)
