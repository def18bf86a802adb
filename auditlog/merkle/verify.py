"""Proof verification, following RFC 9162 §2.1.3.2 and §2.1.4.2 step by step.

It behaves like transparency-dev/merkle ``proof/verify.go`` and raises
:class:`~auditlog.errors.ProofError` on every failure, malformed input included: verifiers trust
nothing, as their inputs may come from anyone.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from auditlog.errors import ProofError
from auditlog.merkle.tree import HASH_SIZE, node_hash

__all__ = [
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

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
            f" ({len(path)} hashes): it was cut, or made for another tree; ask for it again"
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
            f" ({len(proof)} hashes): it was cut, or made for another tree; ask for it again"
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
