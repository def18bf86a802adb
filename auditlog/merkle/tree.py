"""The tree hash itself, computed from the leaves, and the names of the tree's nodes.

A leaf is hashed as ``SHA-256(0x00 || data)``, an interior node as ``SHA-256(0x01 || left ||
right)`` and the empty tree as ``SHA-256("")``. Nodes are named ``(level, index)``: level 0 holds
the leaves, and the node ``(level, index)`` is the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``. :func:`decompose` and :func:`range_nodes` name the
perfect subtrees that cover a range of leaves, which compact ranges and proofs are made of.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

from auditlog._fast import chunks, parents

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "NodeID",
    "decompose",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "root",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

NodeID: TypeAlias = tuple[int, int]
"""A node of the tree as ``(level, index)``; see the module docstring."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 hash of a leaf: ``SHA-256(0x00 || data)``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash (RFC 9162 ``MTH``) of a list of leaf hashes.

    The leaf hashes are not checked: they are expected to come from :func:`leaf_hash`.
    """
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    sha256 = _sha256
    while len(level) > 1:
        # Hashing neighbours in pairs, level by level, and lifting an odd last node unchanged to
        # the next level builds exactly the RFC's tree, whose left subtree is always the largest
        # power of two below the size; it needs no recursion and no per-node bookkeeping.
        odd_last = level[-1] if len(level) & 1 else None
        pairs = iter(level)
        level = [
            sha256(b"\x01" + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)
        ]
        if odd_last is not None:
            level.append(odd_last)
    return level[0]


def decompose(begin: int, end: int) -> tuple[int, int]:
    """Return the sizes of the perfect subtrees that exactly cover the leaves ``[begin, end)``.

    The result is two bit masks, as in transparency-dev/merkle ``compact.Decompose``: bit ``k``
    of ``left`` is a subtree of ``2**k`` leaves on the left part, read from the lowest bit up,
    and bit ``k`` of ``right`` one on the right part, read from the highest bit down. For
    example ``decompose(0b110, 0b11101)`` gives subtree sizes 2, 8 and then 8, 4, 1.
    """
    if not 0 <= begin <= end:
        raise ValueError(f"invalid leaf range [{begin}, {end})")
    if begin == 0:
        return 0, end
    last_before = begin - 1
    # The paths to leaves begin - 1 and end part at bit `split`: the range's subtrees all lie
    # strictly below that point. Those right of the path to begin - 1 are the zero bits of
    # begin - 1 below it; those left of the path to end are the one bits of end below it.
    split = (last_before ^ end).bit_length() - 1
    mask = (1 << split) - 1
    return ~last_before & mask, end & mask


def range_nodes(begin: int, end: int) -> list[NodeID]:
    """Return the ``(level, index)`` nodes of the compact range of ``[begin, end)``, in order."""
    left, right = decompose(begin, end)
    nodes: list[NodeID] = []
    position = begin
    while left:
        level = (left & -left).bit_length() - 1
        nodes.append((level, position >> level))
        position += 1 << level
        left &= left - 1
    while right:
        level = right.bit_length() - 1
        nodes.append((level, position >> level))
        position += 1 << level
        right ^= 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Return the hash of the tree made of the perfect subtrees ``hashes``, left to right."""
    folded = hashes[-1]
    for left in reversed(hashes[:-1]):
        folded = node_hash(left, folded)
    return folded


def _subtree_root(
    nodes: bytes, position: int, collect: Callable[[tuple[int, int, bytes]], None] | None
) -> bytes:
    """The root of the perfect subtree whose leaf hashes are laid end to end in ``nodes`` (a
    power of two of them) and whose first leaf is leaf ``position`` of the tree; stride nodes
    inside it go to ``collect``.

    The subtree is hashed a level at a time, each level one call over the nodes laid end to
    end (in C where ``auditlog._speedups`` is built).
    """
    level = 0
    while len(nodes) > HASH_SIZE:
        nodes = parents(nodes)
        level += 1
        if collect and not level % 8:
            base = position >> level
            for offset, node in enumerate(chunks(nodes, HASH_SIZE)):
                collect((level, base + offset, node))
    return nodes
