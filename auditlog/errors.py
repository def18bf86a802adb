"""Every error auditlog raises, under one base class.

Each message says what happened and what to do about it. Messages never contain a user's
identifier or content: they name chains, segments, blocks, indexes and periods only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "AuditLogError",
    "ConfigurationError",
    "ForkError",
    "IntegrityError",
    "KeyMaterialError",
    "KeyShreddedError",
    "LateRecordError",
    "LogLockedError",
    "MigrationRequiredError",
    "NoteError",
    "OldSizeMismatchError",
    "PassphraseError",
    "ProofError",
    "RecordRedactedError",
    "RecordValidationError",
    "RetentionError",
    "RollbackError",
    "StateFileError",
]


class AuditLogError(Exception):
    """Base class of every error raised by auditlog."""

    def diagnostics(self) -> str:
        """Text for a human: what happened and what to do. The CLI prints this, not a traceback."""
        return str(self)


class ConfigurationError(AuditLogError):
    """The log or a call was set up wrongly (bad path, bad option, missing passphrase)."""


class MigrationRequiredError(ConfigurationError):
    """The log is of an earlier format version: migrate it once, explicitly, to open it."""


class RecordValidationError(AuditLogError, ValueError):
    """A record failed validation; nothing of the batch it belongs to was written.

    Also a ``ValueError``, as a bad argument is in Python. ``fields`` holds the path of each
    field at fault (``occurred_at``, ``parties.1.account``, ``records[3]``), never its value:
    values may be a user's identifiers or content.
    """

    def __init__(self, message: str, *, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.fields: tuple[str, ...] = tuple(fields)


class RetentionError(AuditLogError):
    """A deletion the retention policy forbids: inside the floor, or under a legal hold."""


class LateRecordError(AuditLogError):
    """A record's ``occurred_at`` is older than the chain accepts (its period may be swept)."""


class LogLockedError(AuditLogError):
    """Another writer holds a chain's lock; one writer per chain keeps the file well-formed."""


class IntegrityError(AuditLogError):
    """Stored data does not verify: corruption, tampering, or a crash that cut sealed data.

    ``location`` names the place (chain, segment, block, record index) without any user data.
    """

    def __init__(self, message: str, *, location: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.location: dict[str, object] = dict(location or {})

    def diagnostics(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.location.items())
        return f"{self}" + (f" [{where}]" if where else "")


class StateFileError(IntegrityError):
    """A state file (manifest, holds, keyring, key file, journal, ...) is missing or unreadable.

    The message names the file and says what to do; ``path`` is the file. Nothing in the file
    was acted on.
    """

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message, location={"file": path.name})
        self.path = path


class RollbackError(IntegrityError):
    """A log (or a checkpoint offered to a witness) is smaller than one already trusted."""


class ForkError(IntegrityError):
    """Two different signed checkpoints exist for one tree size, or a checkpoint is not
    consistent with one already trusted: the log showed two histories. Keep both as evidence."""


class OldSizeMismatchError(AuditLogError):
    """The request's old size is not the size of the checkpoint the witness last cosigned.

    c2sp.org/tlog-witness answers this with ``409 Conflict`` and the known size in the body:
    the client should fetch a consistency proof from ``known_size`` and try again.
    """

    def __init__(self, message: str, *, origin: str, old_size: int, known_size: int) -> None:
        super().__init__(message)
        self.origin = origin
        self.old_size = old_size
        self.known_size = known_size


class ProofError(AuditLogError):
    """A Merkle inclusion or consistency proof is malformed or does not verify."""


class NoteError(AuditLogError):
    """A signed note or checkpoint is malformed, or not signed by a known key."""


class RecordRedactedError(AuditLogError):
    """The record was erased by a redaction; its leaf remains so the log still verifies."""


class KeyMaterialError(AuditLogError):
    """Key material is missing, cannot be unwrapped, or the keyring is damaged."""


class PassphraseError(KeyMaterialError):
    """The passphrase does not open the keyring."""


class KeyShreddedError(KeyMaterialError):
    """The data key of a period was destroyed by a retention sweep; its records are unreadable."""
