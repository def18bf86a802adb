"""Layer 1: the RFC 6962 / RFC 9162 §2.1 Merkle tree of a chain, as pure functions.

Hashes are 32-byte SHA-256 digests: a leaf is ``SHA-256(0x00 || data)``, an interior node
``SHA-256(0x01 || left || right)`` and the empty tree ``SHA-256("")``. The package has four parts,
one module each:

- ``tree``: the tree hash itself (:func:`root`), computed from all the leaves;
- ``compact``: :class:`CompactRange`, the O(log n) state a writer keeps to extend the tree one
  leaf at a time, and that a tombstone keeps to stand in for a deleted range of leaves;
- ``proofs``: proof generation, both from all the leaves (:func:`inclusion_proof`,
  :func:`consistency_proof`) and as the names of the stored nodes a proof is made of
  (:func:`inclusion_proof_nodes`, :func:`consistency_proof_nodes`, then :func:`rehash`), so a
  proof can be served from stored node hashes in O(log n);
- ``verify``: verification (:func:`verify_inclusion`, :func:`verify_consistency`), which follows
  RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, behaves like transparency-dev/merkle
  ``proof/verify.go``, and raises :class:`~auditlog.errors.ProofError` on every failure,
  malformed input included.

Every public name is importable from ``auditlog.merkle``.

Nodes are named ``(level, index)``: level 0 holds the leaves, and the node ``(level, index)`` is
the perfect subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``.

Functions that build trees or proofs trust their inputs to be what the type hints say (they are
fed by this library) and raise ``ValueError`` for impossible sizes or ranges. Verifiers trust
nothing: their inputs may come from anyone.
"""

from auditlog.merkle.compact import CompactRange
from auditlog.merkle.proofs import (
    NodeSpec,
    consistency_proof,
    consistency_proof_nodes,
    inclusion_proof,
    inclusion_proof_nodes,
    rehash,
)
from auditlog.merkle.tree import (
    EMPTY_ROOT,
    HASH_SIZE,
    NodeID,
    decompose,
    leaf_hash,
    node_hash,
    range_nodes,
    root,
)
from auditlog.merkle.verify import (
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

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
