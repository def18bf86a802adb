"""Proof generation: inclusion and consistency proofs (RFC 9162 ``PATH`` and ``PROOF``).

:func:`inclusion_proof` and :func:`consistency_proof` compute a proof from all the leaves;
:func:`inclusion_proof_nodes` and :func:`consistency_proof_nodes` name the stored nodes a proof
is made of, and :func:`rehash` turns their hashes into the proof, so that a proof can be served
from stored node hashes in O(log n). These functions trust their inputs to be what the type
hints say and raise ``ValueError`` for impossible sizes or ranges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from auditlog.merkle.tree import NodeID, _fold, range_nodes, root

__all__ = [
    "NodeSpec",
    "consistency_proof",
    "consistency_proof_nodes",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "rehash",
]


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
