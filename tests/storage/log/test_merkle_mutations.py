"""Thousands of mutated proofs, zero accepted.

Mutations: bit flips, a wrong index or size, a hash added or removed, roots swapped; each one is
checked to differ from the genuine proof first.

A wrong size is paired with the genuine root of that size, as a checkpoint of that size would
carry it: RFC 9162 verification proves membership in the tree with the given root, and a size
that did not come with that root (never the case for a signed checkpoint) can verify: leaf 0's
proof in 4 leaves also checks as "size 3" against the 4-leaf root. Hypothesis found exactly that
when this test first kept the original root.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.log.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(300)]


def _subtree(start: int, end: int) -> bytes:
    return root_from_leaves(LEAVES[start:end])


ROOTS = [root_from_leaves(LEAVES[:n]) for n in range(len(LEAVES) + 1)]


def _flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def inclusion_case(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, len(LEAVES)))
    return draw(st.integers(0, size - 1)), size


MUTATIONS = ["flip_path", "flip_leaf", "flip_root", "index", "size", "extra", "missing", "swap", "duplicate"]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=inclusion_case(),
    kind=st.sampled_from(MUTATIONS),
    where=st.integers(0, 1 << 16),
    delta=st.integers(1, 300),
)
def test_mutated_inclusion_proofs_are_rejected(
    case: tuple[int, int], kind: str, where: int, delta: int
) -> None:
    index, size = case
    proof = inclusion_proof(index, size, _subtree)
    leaf, root = LEAVES[index], ROOTS[size]
    assert verify_inclusion(index, size, leaf, proof, root)
    args = [index, size, leaf, list(proof), root]
    path: list[bytes] = args[3]  # type: ignore[assignment]
    if kind == "flip_path" and path:
        path[where % len(path)] = _flip(path[where % len(path)], where)
    elif kind == "flip_leaf":
        args[2] = _flip(leaf, where)
    elif kind == "flip_root":
        args[4] = _flip(root, where)
    elif kind == "index":
        args[0] = (index + delta) % (size + 2) if (index + delta) % (size + 2) != index else index + 1
    elif kind == "size":
        new_size = size + delta if where % 2 and size + delta <= len(LEAVES) else max(size - delta, 0)
        args[1] = new_size if new_size != size else size + 1
        args[4] = ROOTS[min(int(args[1]), len(LEAVES))]  # type: ignore[call-overload]
    elif kind == "extra":
        path.insert(where % (len(path) + 1), LEAVES[where % len(LEAVES)])
    elif kind == "missing" and path:
        del path[where % len(path)]
    elif kind == "swap" and len(path) > 1 and path[0] != path[-1]:
        path[0], path[-1] = path[-1], path[0]
    elif kind == "duplicate" and path:
        path.insert(where % len(path), path[where % len(path)])
    else:
        args[2] = _flip(leaf, where)  # nothing to mutate in an empty path: mutate the leaf instead
    assert (args[0], args[1], args[2], args[3], args[4]) != (index, size, leaf, proof, root)
    assert not verify_inclusion(*args)  # type: ignore[arg-type]


@st.composite
def consistency_case(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(2, len(LEAVES)))
    return draw(st.integers(1, new - 1)), new


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=consistency_case(),
    kind=st.sampled_from([*MUTATIONS, "roots"]),
    where=st.integers(0, 1 << 16),
    delta=st.integers(1, 300),
)
def test_mutated_consistency_proofs_are_rejected(
    case: tuple[int, int], kind: str, where: int, delta: int
) -> None:
    old, new = case
    proof = consistency_proof(old, new, _subtree)
    assert verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)
    args = [old, new, ROOTS[old], ROOTS[new], list(proof)]
    path: list[bytes] = args[4]  # type: ignore[assignment]
    if kind == "flip_path":
        path[where % len(path)] = _flip(path[where % len(path)], where)
    elif kind == "flip_leaf":
        args[2] = _flip(ROOTS[old], where)
    elif kind == "flip_root":
        args[3] = _flip(ROOTS[new], where)
    elif kind == "index":
        moved = old + delta if where % 2 else old - delta
        args[0] = moved if moved != old else old + 1
        args[2] = ROOTS[int(args[0])] if 0 <= int(args[0]) <= len(LEAVES) else args[2]  # type: ignore[call-overload]
    elif kind == "size":
        moved = new + delta if where % 2 and new + delta <= len(LEAVES) else new - delta
        args[1] = moved if moved != new else new + 1
        args[3] = ROOTS[int(args[1])] if 0 <= int(args[1]) <= len(LEAVES) else args[3]  # type: ignore[call-overload]
    elif kind == "extra":
        path.insert(where % (len(path) + 1), LEAVES[where % len(LEAVES)])
    elif kind == "missing":
        del path[where % len(path)]
    elif kind == "swap" and len(path) > 1 and path[0] != path[-1]:
        path[0], path[-1] = path[-1], path[0]
    elif kind == "duplicate":
        path.insert(where % len(path), path[where % len(path)])
    elif kind == "roots":
        args[2], args[3] = ROOTS[new], ROOTS[old]
    else:
        args[3] = _flip(ROOTS[new], where)
    assert not verify_consistency(*args)  # type: ignore[arg-type]
