"""The compact range: the O(log n) state a writer keeps to extend the tree one leaf at a time.

A tombstone keeps one too, to stand in for a deleted range of leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final, NoReturn

from auditlog.merkle.tree import (
    EMPTY_ROOT,
    HASH_SIZE,
    _fold,
    _subtree_root,
    decompose,
    node_hash,
    range_nodes,
)

__all__ = ["CompactRange"]


def _reject_hash(name: str, value: object) -> NoReturn:
    """Raise the error that says why ``value``, named ``name``, is not a 32-byte hash."""
    if type(value) is not bytes:
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    raise ValueError(f"{name} has {len(value)} bytes, not {HASH_SIZE}")


# Widths 2**8, 2**16, ... 2**56: the node sizes that tiles of 256 hashes are made of.
_STRIDE_WIDTHS: Final = sum(1 << (8 * k) for k in range(1, 8))


class CompactRange:
    """The compact range of leaves ``[begin, end)``: the fewest perfect subtrees that cover it.

    ``hashes`` are the roots of those subtrees, left to right, as in transparency-dev/merkle's
    ``compact.Range``; :func:`range_nodes` names them. A range that starts at 0 is everything a
    writer needs to keep to extend the tree and compute its root.
    """

    __slots__ = ("_begin", "_end", "_hashes")

    def __init__(self, begin: int = 0, end: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Build ``[begin, end)`` from its subtree hashes; raise ValueError if they do not fit."""
        left, right = decompose(begin, end)
        own = list(hashes)
        want = left.bit_count() + right.bit_count()
        if len(own) != want:
            raise ValueError(
                f"the compact range [{begin}, {end}) has {want} subtree hashes, got {len(own)}"
            )
        for position, item in enumerate(own):
            if type(item) is not bytes or len(item) != HASH_SIZE:
                _reject_hash(f"hashes[{position}]", item)
        self._begin = begin
        self._end = end
        self._hashes = own

    @property
    def begin(self) -> int:
        """The first leaf index in the range."""
        return self._begin

    @property
    def end(self) -> int:
        """One past the last leaf index in the range."""
        return self._end

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree hashes, left to right."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash at the end of the range.

        Raises TypeError or ValueError, and leaves the range as it was, if it is not 32 bytes.
        """
        if type(leaf_hash) is not bytes or len(leaf_hash) != HASH_SIZE:
            _reject_hash(f"leaf hash {self._end}", leaf_hash)
        self._push_node(0, leaf_hash)

    def extend(
        self,
        leaf_hashes: Iterable[bytes],
        stride_nodes: list[tuple[int, int, bytes]] | None = None,
    ) -> None:
        """Add leaf hashes at the end of the range, in order; all of them or, on error, none.

        With ``stride_nodes``, every completed node whose level is a positive multiple of 8 is
        appended to it as ``(level, index, hash)``: what tiles of 256 hashes store, found on
        the way instead of hashed again. Raises TypeError or ValueError for an item that is not
        a 32-byte ``bytes``.
        """
        # Callers that hold the leaves laid end to end (blocks, the writer) skip this copy and
        # these checks with extend_joined.
        leaves = leaf_hashes if type(leaf_hashes) is list else list(leaf_hashes)
        if not leaves:
            return
        # A wrong item would be folded in silently and break every later root, so all of them
        # are checked, in C, before any touches the range.
        if set(map(type, leaves)) != {bytes} or set(map(len, leaves)) != {HASH_SIZE}:
            for offset, node in enumerate(leaves):
                if type(node) is not bytes or len(node) != HASH_SIZE:
                    _reject_hash(f"leaf hash {self._end + offset}", node)
        self._extend_joined(b"".join(leaves), stride_nodes)

    def extend_joined(
        self, joined: bytes, stride_nodes: list[tuple[int, int, bytes]] | None = None
    ) -> None:
        """``extend`` with the leaf hashes laid end to end in ``joined``, as blocks store them.

        Raises ValueError, and leaves the range as it was, if ``joined`` is not a whole number
        of 32-byte hashes.
        """
        if type(joined) is not bytes:
            raise TypeError(f"joined leaf hashes must be bytes, not {type(joined).__name__}")
        if len(joined) % HASH_SIZE:
            raise ValueError(
                f"{len(joined)} bytes are not a whole number of {HASH_SIZE}-byte leaf hashes"
            )
        self._extend_joined(joined, stride_nodes)

    def _extend_joined(
        self, joined: bytes, stride_nodes: list[tuple[int, int, bytes]] | None
    ) -> None:
        # The new leaves are cut into the aligned perfect subtrees they complete, each hashed a
        # level at a time (in C where it is built), then pushed onto the range like one node.
        collect = stride_nodes.append if stride_nodes is not None else None
        saved = (self._end, self._hashes.copy())
        position = self._end
        done = 0
        count = len(joined) // HASH_SIZE
        try:
            while done < count:
                # The widest subtree that starts at `position` (aligned) and fits what is left.
                width = 1 << ((count - done).bit_length() - 1)
                if position:
                    width = min(width, position & -position)
                nodes = joined[done * HASH_SIZE : (done + width) * HASH_SIZE]
                node = _subtree_root(nodes, position, collect)
                self._push_node(width.bit_length() - 1, node, collect)
                position += width
                done += width
        except BaseException:  # e.g. MemoryError half-way: the range stays as it was
            self._end, self._hashes = saved
            raise

    def merge(
        self, other: CompactRange, stride_nodes: list[tuple[int, int, bytes]] | None = None
    ) -> None:
        """Add the leaves of ``other``, which must start where this range ends, at its end.

        With ``stride_nodes``, every node at a level that is a positive multiple of 8 that the
        merge knows is appended to it as ``(level, index, hash)``, as ``extend`` does: the
        subtrees of ``other`` at such levels and the parents they complete. Nodes inside one of
        ``other``'s subtrees are not known and not appended.
        """
        if other._begin != self._end:
            raise ValueError(
                f"cannot merge [{other._begin}, {other._end}) into [{self._begin}, {self._end}):"
                " the ranges are not adjacent"
            )
        collect = stride_nodes.append if stride_nodes is not None else None
        for (level, index), node in zip(
            range_nodes(other._begin, other._end), other._hashes, strict=True
        ):
            if collect and level and not level % 8:
                collect((level, index, node))
            self._push_node(level, node, collect)

    def _push_node(
        self,
        level: int,
        node: bytes,
        collect: Callable[[tuple[int, int, bytes]], None] | None = None,
    ) -> None:
        """Add the root of a perfect subtree of ``2**level`` leaves, aligned at ``end``."""
        hashes = self._hashes
        start = self._end
        width = 1 << level
        # While the node is a right child (bit `width` of `start` set) whose left sibling lies
        # inside the range, that sibling is the last hash held: fold them into a parent.
        while start & width and start - width >= self._begin:
            node = node_hash(hashes.pop(), node)
            start -= width
            width <<= 1
            if collect and width & _STRIDE_WIDTHS:
                parent_level = width.bit_length() - 1
                collect((parent_level, start >> parent_level, node))
        hashes.append(node)
        self._end += 1 << level

    def root(self) -> bytes:
        """Return the root of the tree of the first ``end`` leaves; the range must start at 0."""
        if self._begin != 0:
            raise ValueError(
                f"only a range that starts at leaf 0 has a tree root, not [{self._begin}, ...)"
            )
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT

    def copy(self) -> CompactRange:
        """Return an independent copy of this range."""
        return CompactRange(self._begin, self._end, self._hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return (self._begin, self._end, self._hashes) == (other._begin, other._end, other._hashes)

    # A compact range changes as leaves are added, so it must not be used as a dict key.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CompactRange(begin={self._begin}, end={self._end}, hashes=<{len(self._hashes)}>)"
