"""Signed checkpoints: the log's signing key, each chain's stored checkpoints, trusted state.

A checkpoint is a C2SP tlog-checkpoint (origin ``<log origin>/<chain>``, tree size, root hash)
signed as a C2SP signed note with the log's Ed25519 key. The signing key is stored only wrapped
by the root key; its verifier key is public (in the manifest, and given to outsiders).
Checkpoints are written at every segment seal and on ``AuditLog.checkpoint()``, one file per
tree size: ``chains/<chain>/checkpoints/<size, 20 digits>.note``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Final

import msgpack

from auditlog import note
from auditlog._fs import atomic_replace, create_exclusive, make_private_dir
from auditlog.crypto.providers import KeyProvider
from auditlog.errors import (
    ConfigurationError,
    ForkError,
    IntegrityError,
    KeyMaterialError,
    NoteError,
    RollbackError,
)

__all__ = [
    "CheckpointStore",
    "TrustedState",
    "create_signing_key",
    "load_signing_key",
    "open_checkpoint",
    "sign_checkpoint",
]

_KEY_FORMAT: Final = "auditlog-checkpoint-key"
_KEY_VERSION: Final = 1
_STATE_FORMAT: Final = "auditlog-trusted-checkpoints"
_STATE_VERSION: Final = 1


def _key_context(origin: str) -> bytes:
    return b"auditlog/v1 checkpoint-key\0" + origin.encode("utf-8")


def create_signing_key(path: Path, provider: KeyProvider, origin: str) -> str:
    """Make the log's checkpoint key, store it wrapped at ``path``; return the verifier key."""
    signer, verifier = note.generate_key(origin)
    wrapped = provider.wrap(signer.encode("ascii"), _key_context(origin))
    doc = {
        "format": _KEY_FORMAT,
        "version": _KEY_VERSION,
        "root_key_id": provider.key_id,
        "verifier_key": verifier,
        "wrapped": wrapped,
    }
    make_private_dir(path.parent)
    create_exclusive(path, msgpack.packb(doc))
    return verifier


def _read_key_file(path: Path) -> dict[str, Any]:
    """The checked document of the checkpoint key file, its signer key still wrapped."""
    try:
        doc = msgpack.unpackb(path.read_bytes())
    except FileNotFoundError:
        raise ConfigurationError(
            f"no checkpoint signing key at {path}: this log cannot sign checkpoints"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != _KEY_FORMAT:
        raise KeyMaterialError(f"{path} is not an auditlog checkpoint key file")
    if doc.get("version") != _KEY_VERSION:
        raise KeyMaterialError(f"{path} has an unknown version; upgrade auditlog")
    return doc


def _unwrap_signer(doc: dict[str, Any], provider: KeyProvider, origin: str) -> str:
    return provider.unwrap(bytes(doc["wrapped"]), _key_context(origin)).decode("ascii")


def load_signing_key(path: Path, provider: KeyProvider, origin: str) -> str:
    """The log's checkpoint signer key, unwrapped."""
    return _unwrap_signer(_read_key_file(path), provider, origin)


def rewrap_signing_key(path: Path, old: KeyProvider, new: KeyProvider, origin: str) -> None:
    """Wrap the checkpoint key under a new root key (root-key rotation)."""
    # One read serves both the unwrapping and the rewritten document, which keeps every
    # other field (the verifier key) as it was.
    doc = _read_key_file(path)
    signer = _unwrap_signer(doc, old, origin)
    doc["root_key_id"] = new.key_id
    doc["wrapped"] = new.wrap(signer.encode("ascii"), _key_context(origin))
    atomic_replace(path, msgpack.packb(doc))


def sign_checkpoint(signer_key: str, origin: str, size: int, root: bytes) -> str:
    """The signed note of the checkpoint (origin, size, root)."""
    return note.sign(note.Checkpoint(origin, size, root).to_text(), signer_key)


def open_checkpoint(signed: str, verifier_key: str, origin: str | None = None) -> note.Checkpoint:
    """Check a signed checkpoint's signature (and origin); raises ``NoteError``."""
    checkpoint = note.Checkpoint.from_text(note.open_note(signed, [verifier_key]))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


class CheckpointStore:
    """The signed checkpoints of one chain, one immutable file per tree size."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, size: int) -> Path:
        return self.directory / f"{size:020d}.note"

    def save(self, signed: str, size: int, root: bytes) -> None:
        """Store a checkpoint; an existing one of the same size must say the same root.

        Two checkpoints of one size with different roots are a fork: both are kept and
        ``ForkError`` is raised.
        """
        make_private_dir(self.directory)
        path = self.path(size)
        try:
            create_exclusive(path, signed.encode("utf-8"))
            return
        except FileExistsError:
            existing = path.read_text("utf-8")
        old_root = note.Checkpoint.from_text(existing.split("\n\n", 1)[0] + "\n").root_hash
        if old_root == root:
            return
        evidence = (
            self.directory
            / f"{size:020d}.fork-{hashlib.sha256(signed.encode()).hexdigest()[:16]}.note"
        )
        create_exclusive(evidence, signed.encode("utf-8"))
        raise ForkError(
            f"a checkpoint of size {size} with another root already exists: the chain was "
            f"rewritten; both are kept ({path.name}, {evidence.name})",
            location={"size": size},
        )

    def sizes(self) -> list[int]:
        """Tree sizes of the stored checkpoints, ascending."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(
            int(n[:20])
            for n in names
            if len(n) == 25 and n.endswith(".note") and n[:20].isascii() and n[:20].isdigit()
        )

    def get(self, size: int) -> str:
        try:
            return self.path(size).read_text("utf-8")
        except FileNotFoundError:
            raise ConfigurationError(
                f"no checkpoint of size {size} is stored; make one with `auditlog checkpoint` "
                "(checkpoints exist at every segment seal and when asked for)"
            ) from None

    def latest(self) -> tuple[int, str] | None:
        sizes = self.sizes()
        return (sizes[-1], self.get(sizes[-1])) if sizes else None

    def covering(self, size: int) -> tuple[int, str]:
        """The smallest stored checkpoint whose tree has at least ``size`` leaves."""
        for candidate in self.sizes():
            if candidate >= size:
                return candidate, self.get(candidate)
        raise ConfigurationError(
            f"no stored checkpoint covers {size} records yet; make one with `auditlog checkpoint`"
        )


class TrustedState:
    """What a client or auditor last trusted: the newest verified checkpoint per origin.

    A JSON file, replaced atomically. ``check`` refuses a log shorter than, or inconsistent
    with, what was trusted; forks are kept as evidence next to the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoints: dict[str, str] = {}
        try:
            doc = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return
        except ValueError:
            raise IntegrityError(
                f"{path} is not a readable trusted-checkpoint state; restore it, it is your "
                "only protection against a log that was cut back"
            ) from None
        if doc.get("format") != _STATE_FORMAT or doc.get("version") != _STATE_VERSION:
            raise IntegrityError(f"{path} is not a trusted-checkpoint state of a known version")
        self.checkpoints = dict(doc["checkpoints"])

    def trusted(self, origin: str, verifier_key: str) -> note.Checkpoint | None:
        signed = self.checkpoints.get(origin)
        return None if signed is None else open_checkpoint(signed, verifier_key, origin)

    def record_fork(self, origin: str, theirs: str) -> Path:
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
        self.checkpoints[origin] = signed
        doc = {"format": _STATE_FORMAT, "version": _STATE_VERSION, "checkpoints": self.checkpoints}
        make_private_dir(self.path.parent)
        atomic_replace(self.path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


def require_not_rolled_back(origin: str, trusted: note.Checkpoint, size: int) -> None:
    if size < trusted.size:
        raise RollbackError(
            f"chain {origin} has {size} records but a trusted checkpoint says it had "
            f"{trusted.size}: records were cut off the log (sizes {size} < {trusted.size})",
            location={"origin": origin, "size": size, "trusted_size": trusted.size},
        )
