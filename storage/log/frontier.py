"""The compact range of a growing log: O(log n) hashes from which the root is extended.

For a tree of size n the frontier holds the roots of the perfect subtrees that n's binary
decomposition cuts the leaves into, largest (leftmost) first: 6 leaves -> [MTH(0:4), MTH(4:6)].
Appending merges equal-sized neighbours; every merge creates exactly one new perfect node, which
`append` reports so that `treefile.TreeFiles` can persist it. A batch is appended level by level
(one list comprehension of hashes per level) rather than leaf by leaf.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from storage.log.merkle import EMPTY_ROOT, node_hash

__all__ = ["Frontier", "NewNodes"]

#: level -> (index of the first new node at that level, the new node hashes in order)
NewNodes = dict[int, tuple[int, list[bytes]]]


@dataclass(slots=True)
class Frontier:
    """Roots of the perfect subtrees of a tree of `size` leaves, one per set bit of `size`."""

    size: int = 0
    #: level -> root of the perfect subtree of 2**level leaves at that level (set bits of size).
    nodes: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def from_nodes(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        """Rebuild from `hashes` given largest subtree first (the order `hashes()` returns)."""
        levels = [lvl for lvl in range(size.bit_length() - 1, -1, -1) if size >> lvl & 1]
        if len(levels) != len(hashes):
            raise ValueError(f"a tree of size {size} has {len(levels)} frontier hashes, got {len(hashes)}")
        return cls(size, dict(zip(levels, hashes, strict=True)))

    def hashes(self) -> list[bytes]:
        """The frontier, largest subtree first."""
        return [self.nodes[lvl] for lvl in sorted(self.nodes, reverse=True)]

    def root(self) -> bytes:
        """MTH of the whole tree: the frontier folded from the right."""
        hashes = self.hashes()
        if not hashes:
            return EMPTY_ROOT
        acc = hashes[-1]
        for h in reversed(hashes[:-1]):
            acc = node_hash(h, acc)
        return acc

    def copy(self) -> Frontier:
        """An independent copy (appending to it leaves this one unchanged)."""
        return Frontier(self.size, dict(self.nodes))

    def append(self, leaves: Iterable[bytes]) -> NewNodes:
        """Append leaf hashes; return every perfect node created, per level (level 0: the leaves)."""
        batch = list(leaves)
        created: NewNodes = {}
        old, level = self.size, 0
        self.size = old + len(batch)
        while batch:
            # The first new node of each level follows the old tree's complete nodes of that level.
            first = old >> level
            created[level] = (first, batch)
            carried = self.nodes.pop(level, None)
            seq = [carried, *batch] if carried is not None else batch
            if len(seq) % 2:
                self.nodes[level] = seq[-1]
            # Nodes of the next level: pairs of this level's sequence, left to right.
            batch = [node_hash(seq[i], seq[i + 1]) for i in range(0, len(seq) - 1, 2)]
            level += 1
        return created
