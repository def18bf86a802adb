"""Layer 1: the RFC 6962 / RFC 9162 §2.1 Merkle tree of a chain, as pure functions.

Hashes are 32-byte SHA-256 digests: a leaf is ``SHA-256(0x00 || data)``, an interior node
``SHA-256(0x01 || left || right)`` and the empty tree ``SHA-256("")``. The module has four parts:

- the tree hash itself (:func:`root`), computed from all the leaves;
- :class:`CompactRange`, the O(log n) state a writer keeps to extend the tree one leaf at a time,
  and that a tombstone keeps to stand in for a deleted range of leaves;
- proof generation, both from all the leaves (:func:`inclusion_proof`, :func:`consistency_proof`)
  and as the names of the stored nodes a proof is made of (:func:`inclusion_proof_nodes`,
  :func:`consistency_proof_nodes`, then :func:`rehash`), so a proof can be served from stored
  node hashes in O(log n);
- verification (:func:`verify_inclusion`, :func:`verify_consistency`), which follows RFC 9162
  §2.1.3.2 and §2.1.4.2 step by step, behaves like transparency-dev/merkle ``proof/verify.go``,
  and raises :class:`~auditlog.errors.ProofError` on every failure, malformed input included.

Nodes are named ``(level, index)``: level 0 holds the leaves, and the node ``(level, index)`` is
the perfect subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``.

Functions that build trees or proofs trust their inputs to be what the type hints say (they are
fed by this library) and raise ``ValueError`` for impossible sizes or ranges. Verifiers trust
nothing: their inputs may come from anyone.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NoReturn, TypeAlias

from auditlog._fast import chunks, parents
from auditlog.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "NodeID",
    "NodeSpec",
    "consistency_proof",
    "consistency_proof_nodes",
    "decompose",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "rehash",
    "root",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
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


def _reject_hash(name: str, value: object) -> NoReturn:
    """Raise the error that says why ``value``, named ``name``, is not a 32-byte hash."""
    if type(value) is not bytes:
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    raise ValueError(f"{name} has {len(value)} bytes, not {HASH_SIZE}")


# Widths 2**8, 2**16, ... 2**56: the node sizes that tiles of 256 hashes are made of.
_STRIDE_WIDTHS: Final = sum(1 << (8 * k) for k in range(1, 8))


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

    def merge(self, other: CompactRange) -> None:
        """Add the leaves of ``other``, which must start where this range ends, at its end."""
        if other._begin != self._end:
            raise ValueError(
                f"cannot merge [{other._begin}, {other._end}) into [{self._begin}, {self._end}):"
                " the ranges are not adjacent"
            )
        for (level, _), node in zip(
            range_nodes(other._begin, other._end), other._hashes, strict=True
        ):
            self._push_node(level, node)

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


def _largest_power_of_two_below(size: int) -> int:
    """Return the RFC's split point ``k`` for a tree of ``size`` >= 2 leaves: ``k < size <= 2k``."""
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_proof(index: int, size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the inclusion proof (RFC 9162 ``PATH``) of leaf ``index`` in the tree of ``size``.

    ``leaf_hashes`` holds at least the first ``size`` leaves; the proof is computed from them in
    O(size) hashes. :func:`inclusion_proof_nodes` is the O(log size) route from stored nodes.
    """
    if not 0 <= index < size <= len(leaf_hashes):
        raise ValueError(
            f"no inclusion proof for index {index} in a tree of size {size}"
            f" built from {len(leaf_hashes)} leaves"
        )
    # Walk down from the root towards the leaf, collecting the sibling subtree at each split;
    # the proof lists them bottom-up, so the walk's order is reversed at the end.
    siblings: list[bytes] = []
    low, high = 0, size
    while high - low > 1:
        split = low + _largest_power_of_two_below(high - low)
        if index < split:
            siblings.append(root(leaf_hashes[split:high]))
            high = split
        else:
            siblings.append(root(leaf_hashes[low:split]))
            low = split
    siblings.reverse()
    return siblings


def consistency_proof(size1: int, size2: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the consistency proof (RFC 9162 ``PROOF``) from the tree of ``size1`` to ``size2``.

    ``leaf_hashes`` holds at least the first ``size2`` leaves. Equal sizes give an empty proof;
    ``size1`` = 0 is refused, as a proof from the empty tree proves nothing and no verifier
    accepts one. :func:`consistency_proof_nodes` is the O(log size2) route from stored nodes.
    """
    if not 0 < size1 <= size2 <= len(leaf_hashes):
        raise ValueError(
            f"no consistency proof from size {size1} to size {size2}"
            f" built from {len(leaf_hashes)} leaves"
        )
    # RFC 9162 SUBPROOF, unrolled: walk down towards the subtree that ends at size1, collecting
    # the sibling subtree at each split. The subtree reached is part of the proof unless it is
    # a left edge of the tree (then it is the old root, which the verifier already holds).
    siblings: list[bytes] = []
    low, high = 0, size2
    on_left_edge = True
    while size1 != high:
        split = low + _largest_power_of_two_below(high - low)
        if size1 <= split:
            siblings.append(root(leaf_hashes[split:high]))
            high = split
        else:
            siblings.append(root(leaf_hashes[low:split]))
            low = split
            on_left_edge = False
    if not on_left_edge:
        siblings.append(root(leaf_hashes[low:high]))
    siblings.reverse()
    return siblings


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One hash of a proof, named by the stored perfect-subtree nodes it is computed from.

    A single node is used as it is. Several nodes (left to right, the compact range of the
    leaves it covers) make up an ephemeral node on the ragged right edge of the tree, which no
    store holds because it changes as the tree grows; :func:`rehash` folds them into it.
    """

    nodes: tuple[NodeID, ...]

    @property
    def ephemeral(self) -> bool:
        """Whether this hash must be computed from several nodes."""
        return len(self.nodes) > 1


def _path_nodes(level: int, index: int, size: int) -> list[NodeSpec]:
    """Return the node ``(level, index)`` and its inclusion proof in the tree of ``size``.

    This is transparency-dev/merkle's ``proof.nodes``. It requires the node to lie inside the
    tree: ``(index + 1) * 2**level <= size``.
    """
    # Going up from the node, the fork is its last ancestor before its path joins the path to
    # the (absent) leaf `size`. Below the fork the proof holds one sibling per level; the fork's
    # sibling is the ephemeral node over [fork_end, size); left of the fork, perfect subtrees
    # cover [0, fork_begin), listed from the lowest, that is from the right.
    height = (index ^ (size >> level)).bit_length() - 1
    fork_level = level + height
    fork_begin = (index >> height) << fork_level
    fork_end = fork_begin + (1 << fork_level)
    path = [NodeSpec(((level, index),))]
    path.extend(NodeSpec(((level + up, (index >> up) ^ 1),)) for up in range(height))
    if fork_end < size:
        path.append(NodeSpec(tuple(range_nodes(fork_end, size))))
    path.extend(NodeSpec((node,)) for node in reversed(range_nodes(0, fork_begin)))
    return path


def inclusion_proof_nodes(index: int, size: int) -> list[NodeSpec]:
    """Return the nodes that make up the inclusion proof of leaf ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"no inclusion proof for index {index} in a tree of size {size}")
    return _path_nodes(0, index, size)[1:]


def consistency_proof_nodes(size1: int, size2: int) -> list[NodeSpec]:
    """Return the nodes that make up the consistency proof from tree size ``size1`` to ``size2``."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == size2:
        return []
    # The proof is the inclusion proof, in the new tree, of the largest perfect subtree that
    # ends at size1, preceded by that subtree unless it is the whole old tree: the verifier
    # already holds the old root.
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    path = _path_nodes(level, index, size2)
    return path[1:] if index == 0 else path


def rehash(specs: Sequence[NodeSpec], node_hashes: Mapping[NodeID, bytes]) -> list[bytes]:
    """Turn the node specs of a proof into the proof, given the hashes of the nodes they name.

    Raises ``KeyError`` if ``node_hashes`` lacks a node that a spec names.
    """
    return [_fold([node_hashes[node] for node in spec.nodes]) for spec in specs]


# Verification. Everything below may be handed anything by anyone, so every input is checked
# before use and every failure is a ProofError. Messages name sizes and indexes, never hashes.


def _require_size(name: str, value: object) -> int:
    """Return ``value`` if it is a non-negative int (not a bool), else raise ProofError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProofError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ProofError(f"{name} must not be negative, got {value}")
    return value


def _require_bytes(name: str, value: object, *, exact_size: bool = True) -> bytes:
    """Return ``value`` if it is bytes (of HASH_SIZE, unless told otherwise), else raise."""
    if not isinstance(value, bytes):
        raise ProofError(f"{name} must be bytes, not {type(value).__name__}")
    if exact_size and len(value) != HASH_SIZE:
        raise ProofError(f"{name} has {len(value)} bytes, not {HASH_SIZE}")
    return value


def _require_proof(proof: object) -> list[bytes]:
    """Return ``proof`` as a list of hashes if it is a sequence of them, else raise ProofError."""
    if not isinstance(proof, Sequence) or isinstance(proof, str | bytes | bytearray | memoryview):
        raise ProofError(f"proof must be a sequence of hashes, not {type(proof).__name__}")
    return [_require_bytes(f"proof[{position}]", item) for position, item in enumerate(proof)]


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root that ``proof`` gives for the leaf at ``index`` in a tree of ``size``.

    Raises ProofError if an input is malformed or the proof has the wrong length.
    """
    index = _require_size("index", index)
    size = _require_size("size", size)
    if index >= size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    seed = _require_bytes("leaf hash", leaf_hash)
    path = _require_proof(proof)
    # RFC 9162 §2.1.3.2, steps 2 to 5, with fn the position of the node computed so far among
    # its level and sn that of the tree's last node on the same level.
    fn, sn = index, size - 1
    computed = seed
    for sibling in path:
        if sn == 0:
            raise ProofError(
                f"inclusion proof for index {index} in a tree of size {size} is too long"
                f" ({len(path)} hashes)"
            )
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            computed = node_hash(computed, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(
            f"inclusion proof for index {index} in a tree of size {size} is too short"
            f" ({len(path)} hashes)"
        )
    return computed


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows the leaf at ``index`` is in the tree of ``size`` with ``root``.

    Returns None if it does; raises ProofError on any failure, malformed input included.
    """
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    expected = _require_bytes("root", root)
    if not hmac.compare_digest(computed, expected):
        raise ProofError(
            f"inclusion proof for index {index} in a tree of size {size} does not lead to the root"
        )


def root_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> bytes:
    """Return the root of the tree of ``size2`` that ``proof`` shows extends ``root1``.

    Raises ProofError if an input is malformed, the sizes admit no proof, the proof has the
    wrong length, or it does not lead back to ``root1``.
    """
    size1 = _require_size("size1", size1)
    size2 = _require_size("size2", size2)
    path = _require_proof(proof)
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) is smaller than size1 ({size1})")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree (size1 = 0) proves nothing")
    if size1 == size2:
        if path:
            raise ProofError(f"sizes are equal ({size1}) but the proof is not empty")
        # Like transparency-dev/merkle, equal sizes need only equal roots, whatever their
        # length: the reference test vectors pin that, so only the type is checked here.
        return _require_bytes("root1", root1, exact_size=False)
    old_root = _require_bytes("root1", root1)
    # RFC 9162 §2.1.4.2, steps 1 to 7.
    if not path:
        raise ProofError(f"consistency proof from size {size1} to size {size2} is empty")
    if size1 & (size1 - 1) == 0:
        path.insert(0, old_root)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old = new = path[0]
    for sibling in path[1:]:
        if sn == 0:
            raise ProofError(
                f"consistency proof from size {size1} to size {size2} is too long"
                f" ({len(proof)} hashes)"
            )
        if fn & 1 or fn == sn:
            old = node_hash(sibling, old)
            new = node_hash(sibling, new)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            new = node_hash(new, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(
            f"consistency proof from size {size1} to size {size2} is too short"
            f" ({len(proof)} hashes)"
        )
    if not hmac.compare_digest(old, old_root):
        raise ProofError(
            f"consistency proof from size {size1} to size {size2} does not lead to root1"
        )
    return new


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that ``proof`` shows the tree of ``size2`` with ``root2`` extends ``root1``.

    Returns None if it does; raises ProofError on any failure, malformed input included.
    """
    computed = root_from_consistency_proof(size1, size2, proof, root1)
    expected = _require_bytes("root2", root2, exact_size=size1 != size2)
    if not hmac.compare_digest(computed, expected):
        raise ProofError(
            f"consistency proof from size {size1} to size {size2} does not lead to root2"
        )
