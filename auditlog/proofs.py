"""What an outsider checks a log with: signed checkpoints, proofs, and a trusted state.

- A checkpoint is a C2SP tlog-checkpoint (origin ``<log origin>/<chain>``, tree size, root hash)
  signed as a C2SP signed note with the log's Ed25519 key (``sign_checkpoint``,
  ``open_checkpoint``).
- Inclusion and consistency proofs are portable JSON documents (``format`` and ``version``
  first) holding the proof hashes and the signed checkpoints they lead to; ``verify_*`` needs
  only the log's verifier key.
- ``TrustedState`` is what a client or auditor last trusted, so that a log cut back or forked
  since is refused.

docs/proofs.md specifies the documents and the state file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from auditlog import merkle, note
from auditlog._fs import atomic_replace, make_private_dir
from auditlog._statefile import StateFile, read_state, state_bytes
from auditlog.errors import NoteError, ProofError, RollbackError
from auditlog.note import Checkpoint

__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "TrustedState",
    "open_checkpoint",
    "require_not_rolled_back",
    "sign_checkpoint",
    "verify_consistency_proof",
    "verify_inclusion_proof",
]

_INCLUSION: Final = "auditlog-inclusion-proof"
_CONSISTENCY: Final = "auditlog-consistency-proof"
_VERSION: Final = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ProofError(f"{what} must be a base64 string" + _ASK_AGAIN)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProofError(f"{what} is not valid base64" + _ASK_AGAIN) from None


def _dump(kind: str, **fields: object) -> str:
    """A proof document of ``kind``: ``format`` and ``version`` first, then ``fields`` in order."""
    return json.dumps({"format": kind, "version": _VERSION, **fields}, indent=2)


_ASK_AGAIN: Final = (
    ": the proof document was changed or damaged; ask the log's operator for it again"
)


def _load(text: str | bytes, expected: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProofError(
            f"a proof document must be JSON ({expected}): ask the log's operator for the "
            "document again, as `auditlog prove` wrote it"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != expected:
        raise ProofError(
            f"not an {expected} document: check that the right file was given (an inclusion "
            "and a consistency proof are different documents)"
        )
    if doc.get("version") != _VERSION:
        raise ProofError(
            f"{expected} version {doc.get('version')!r} is not one this reads: verify it "
            "with the auditlog version that wrote it, or a newer one"
        )
    return doc


def _int(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofError(f"{key} must be a non-negative integer" + _ASK_AGAIN)
    return value


def _hashes(doc: dict[str, Any]) -> tuple[bytes, ...]:
    items = doc.get("proof")
    if not isinstance(items, list):
        raise ProofError("proof must be a list of base64 hashes" + _ASK_AGAIN)
    return tuple(_unb64(item, "a proof hash") for item in items)


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise ProofError(f"{key} must be a string" + _ASK_AGAIN)
    return value


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Leaf ``index`` (hash ``leaf_hash``) is in the tree of the signed ``checkpoint``."""

    origin: str
    index: int
    size: int
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    checkpoint: str

    def to_json(self) -> str:
        return _dump(
            _INCLUSION,
            origin=self.origin,
            index=self.index,
            size=self.size,
            leaf_hash=_b64(self.leaf_hash),
            proof=[_b64(h) for h in self.proof],
            checkpoint=self.checkpoint,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> InclusionProof:
        doc = _load(text, _INCLUSION)
        return cls(
            origin=_text(doc, "origin"),
            index=_int(doc, "index"),
            size=_int(doc, "size"),
            leaf_hash=_unb64(doc.get("leaf_hash"), "leaf_hash"),
            proof=_hashes(doc),
            checkpoint=_text(doc, "checkpoint"),
        )


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The tree of ``checkpoint2`` extends the tree of ``checkpoint1``."""

    origin: str
    size1: int
    size2: int
    proof: tuple[bytes, ...]
    checkpoint1: str
    checkpoint2: str

    def to_json(self) -> str:
        return _dump(
            _CONSISTENCY,
            origin=self.origin,
            size1=self.size1,
            size2=self.size2,
            proof=[_b64(h) for h in self.proof],
            checkpoint1=self.checkpoint1,
            checkpoint2=self.checkpoint2,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ConsistencyProof:
        doc = _load(text, _CONSISTENCY)
        return cls(
            origin=_text(doc, "origin"),
            size1=_int(doc, "size1"),
            size2=_int(doc, "size2"),
            proof=_hashes(doc),
            checkpoint1=_text(doc, "checkpoint1"),
            checkpoint2=_text(doc, "checkpoint2"),
        )


def _checkpoint(signed: str, verifier_key: str, origin: str, size: int) -> Checkpoint:
    # NoteError (bad signature, unknown key, malformed) propagates as it is: it is not a proof
    # problem but a trust problem, and callers may want to tell the two apart.
    checkpoint = open_checkpoint(signed, verifier_key, origin)
    if checkpoint.size != size:
        raise ProofError(
            f"the proof is for tree size {size} but its checkpoint is of size {checkpoint.size}"
            + _ASK_AGAIN
        )
    return checkpoint


def verify_inclusion_proof(proof: InclusionProof, verifier_key: str) -> Checkpoint:
    """Check ``proof`` offline against the log's public key; returns the checkpoint it proves to.

    Raises ``NoteError`` when the checkpoint is not signed by ``verifier_key`` and ``ProofError``
    when the hashes do not lead from the leaf to the checkpoint's root.
    """
    checkpoint = _checkpoint(proof.checkpoint, verifier_key, proof.origin, proof.size)
    with _proof_failure():
        merkle.verify_inclusion(
            proof.leaf_hash, proof.index, proof.size, proof.proof, checkpoint.root_hash
        )
    return checkpoint


def verify_consistency_proof(
    proof: ConsistencyProof, verifier_key: str
) -> tuple[Checkpoint, Checkpoint]:
    """Check that checkpoint 2's tree extends checkpoint 1's, offline; raises as above."""
    first = _checkpoint(proof.checkpoint1, verifier_key, proof.origin, proof.size1)
    second = _checkpoint(proof.checkpoint2, verifier_key, proof.origin, proof.size2)
    with _proof_failure():
        merkle.verify_consistency(
            proof.size1, proof.size2, proof.proof, first.root_hash, second.root_hash
        )
    return first, second


@contextmanager
def _proof_failure() -> Iterator[None]:
    """A proof document whose hashes do not hold says what to do."""
    try:
        yield
    except ProofError as exc:
        if "again" in str(exc):
            raise
        raise ProofError(
            f"{exc}: the proof does not hold for this record and checkpoint; it was changed, "
            "or made for another record or tree: ask the log's operator for it again"
        ) from None


def sign_checkpoint(signer_key: str, origin: str, size: int, root: bytes) -> str:
    """The signed note of the checkpoint (origin, size, root)."""
    return note.sign(note.Checkpoint(origin, size, root).to_text(), signer_key)


def open_checkpoint(signed: str, verifier_key: str, origin: str | None = None) -> note.Checkpoint:
    """Check a signed checkpoint's signature (and origin); raises ``NoteError``."""
    checkpoint = note.Checkpoint.from_text(note.open_note(signed, [verifier_key]))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(
            f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}: check that "
            "it is the checkpoint of this log (and chain), or get it again from its signer"
        )
    return checkpoint


class TrustedStateFile(StateFile):
    """The file of a ``TrustedState``: the newest verified checkpoint per origin."""

    FORMAT: ClassVar[str] = "auditlog-trusted-checkpoints"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    WHAT: ClassVar[str] = "the trusted-checkpoint state"
    REMEDY: ClassVar[str] = (
        "restore it from a backup; it is your only protection against a log that was cut back"
    )

    checkpoints: dict[str, str]


class TrustedState:
    """What a client or auditor last trusted: the newest verified checkpoint per origin.

    A JSON file, replaced atomically. ``check`` refuses a log shorter than, or inconsistent
    with, what was trusted; forks are kept as evidence next to the file.
    """

    def __init__(self, path: Path) -> None:
        """The state kept at ``path``; a missing file is a state that trusts nothing yet."""
        self.path = Path(path)
        self.checkpoints: dict[str, str] = {}
        if self.path.exists():
            self.checkpoints = dict(read_state(self.path, TrustedStateFile).checkpoints)

    def trusted(self, origin: str, verifier_key: str) -> note.Checkpoint | None:
        """The trusted checkpoint of ``origin``, its signature checked, or None."""
        signed = self.checkpoints.get(origin)
        return None if signed is None else open_checkpoint(signed, verifier_key, origin)

    def record_fork(self, origin: str, theirs: str) -> Path:
        """Keep the trusted checkpoint and a contradicting one side by side, as evidence."""
        digest = hashlib.sha256(origin.encode()).hexdigest()[:12]
        evidence = self.path.with_name(f"{self.path.name}.fork-{digest}.txt")
        body = (
            f"origin {origin}\n\n-- trusted --\n{self.checkpoints[origin]}\n-- presented --\n"
            f"{theirs}"
        )
        make_private_dir(evidence.parent)
        atomic_replace(evidence, body.encode("utf-8"))
        return evidence

    def update(self, origin: str, signed: str) -> None:
        """Trust ``signed`` (already verified) as the newest checkpoint of ``origin``."""
        self.checkpoints[origin] = signed
        make_private_dir(self.path.parent)
        atomic_replace(self.path, state_bytes(TrustedStateFile(checkpoints=self.checkpoints)))


def require_not_rolled_back(origin: str, trusted: note.Checkpoint, size: int) -> None:
    """``RollbackError`` if a chain of ``size`` records is shorter than it was trusted to be."""
    if size < trusted.size:
        raise RollbackError(
            f"chain {origin} has {size} records but a signed checkpoint (stored in the log or "
            f"trusted) says it had {trusted.size}: records were cut off the log (sizes {size} "
            f"< {trusted.size}). Do not trust this copy; restore the missing segments from a "
            "backup",
            location={"origin": origin, "size": size, "trusted_size": trusted.size},
        )
