"""The witness's files: the state file, the signer key file and the evidence files.

Each is a ``StateFile`` model, read and written by ``auditlog._statefile`` (JSON, two-space
indent, sorted keys, non-ASCII kept as UTF-8), so a truncated, unreadable or foreign file is a
``StateFileError`` naming the file. ``state.json`` lists the followed logs, each with its
verifier key and the latest checkpoint cosigned for it, as signed; reading it also checks every
checkpoint again, and any damage is an error, never an empty state. ``witness.key`` holds the
signer key wrapped by the root key (a ``WrappedKeyFile``), bound to its verifier key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditlog import note
from auditlog._statefile import Base64Bytes, StateFile, read_state
from auditlog.crypto.wrapped import WrappedKey, WrappedKeyFile
from auditlog.errors import AuditLogError, StateFileError
from auditlog.witness.protocol import _quote, _require_origin

__all__ = ["EVIDENCE_FORMAT", "KEY_FORMAT", "STATE_FORMAT", "STATE_VERSION"]

STATE_FORMAT: Final = "auditlog-witness-state"
STATE_VERSION: Final = 1
KEY_FORMAT: Final = "auditlog-witness-key"
EVIDENCE_FORMAT: Final = "auditlog-witness-evidence"
# The wrapped signer key is bound to its verifier key, so that swapping the public key recorded
# in witness.key for another one makes the file fail to unwrap instead of lying.
_WRAP_CONTEXT: Final = b"auditlog/v1 witness signer key\0"


class WitnessKeyFile(WrappedKey):
    """``witness.key``: the witness's Ed25519 signer key, wrapped by the root key."""

    FORMAT: ClassVar[str] = KEY_FORMAT
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    JSON_ASCII: ClassVar[bool] = False
    WHAT: ClassVar[str] = "the witness's key file"
    REMEDY: ClassVar[str] = (
        "restore it and root.key from one backup: without it the witness cannot cosign"
    )

    verifier_key: str
    wrapped: Base64Bytes = Field(alias="wrapped_signer_key")


def _signer_key_file(path: Path, verifier_key: str) -> WrappedKeyFile[WitnessKeyFile]:
    """The key file at ``path`` of the witness whose public key is ``verifier_key``."""
    return WrappedKeyFile(path, WitnessKeyFile, _WRAP_CONTEXT + verifier_key.encode("utf-8"))


class FollowedLogEntry(BaseModel):
    """A log in ``state.json``: its verifier key and the signed checkpoint last cosigned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verifier_key: str
    checkpoint: str | None
    """As received, signature lines included; None (``null``) before the first one."""


class WitnessStateFile(StateFile):
    """``state.json``: the followed logs, by origin, and the witness key they belong to."""

    FORMAT: ClassVar[str] = STATE_FORMAT
    VERSION: ClassVar[int] = STATE_VERSION
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    JSON_ASCII: ClassVar[bool] = False
    WHAT: ClassVar[str] = "the witness state file"
    REMEDY: ClassVar[str] = (
        "restore it from a backup; starting afresh would let the logs it follows roll back"
    )
    # Strict, as it always was: a field the witness does not know may be a newer witness's
    # state, which this one must not rewrite without it.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    witness: str
    logs: dict[str, FollowedLogEntry]


class WitnessEvidence(StateFile):
    """``evidence/<reason>-<hash>.json``: two checkpoints of one log that contradict each other.

    Written once for whoever investigates; the witness never reads it back.
    """

    FORMAT: ClassVar[str] = EVIDENCE_FORMAT
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    JSON_ASCII: ClassVar[bool] = False
    WHAT: ClassVar[str] = "a witness evidence file"

    reason: Literal["same-size-fork", "inconsistent"]
    detected_at: int
    known_checkpoint: str
    offered_checkpoint: str
    old_size: int
    proof: list[str]
    """The consistency proof offered, as base64 hashes."""


@dataclass(frozen=True)
class _Cosigned:
    """The latest checkpoint cosigned for a log: the signed note as received, and its body."""

    signed: str
    checkpoint: note.Checkpoint


@dataclass(frozen=True)
class _FollowedLog:
    """A log the witness follows: its key and the latest checkpoint cosigned for it, if any."""

    verifier_key: str
    latest: _Cosigned | None = None


def _state_file(witness_key: str, logs: dict[str, _FollowedLog]) -> WitnessStateFile:
    return WitnessStateFile(
        witness=witness_key,
        logs={
            origin: FollowedLogEntry(
                verifier_key=log.verifier_key,
                checkpoint=None if log.latest is None else log.latest.signed,
            )
            for origin, log in logs.items()
        },
    )


def _read_followed_logs(path: Path, witness_key: str) -> dict[str, _FollowedLog]:
    """Read and check the state file; any damage is an error, never an empty state.

    The loader checks the file's shape; what is checked here needs this witness's key or the
    logs' keys: that the state is this witness's and that every checkpoint verifies.
    """

    def damaged(why: str) -> StateFileError:
        return StateFileError(
            f"{WitnessStateFile.WHAT} ({path}) is damaged ({why}): {WitnessStateFile.REMEDY}",
            path=path,
        )

    state = read_state(path, WitnessStateFile)
    if state.witness != witness_key:
        raise damaged("it belongs to another witness key")
    logs: dict[str, _FollowedLog] = {}
    for origin, entry in state.logs.items():
        latest = None
        try:
            _require_origin(origin)
            if entry.checkpoint is not None:
                opened = note.open_note(entry.checkpoint, [entry.verifier_key])
                latest = _Cosigned(entry.checkpoint, note.Checkpoint.from_text(opened))
        except AuditLogError as exc:
            raise damaged(f"the checkpoint of {_quote(origin)} does not verify: {exc}") from None
        if latest is not None and latest.checkpoint.origin != origin:
            raise damaged(f"the checkpoint filed under {_quote(origin)} is of another log")
        logs[origin] = _FollowedLog(entry.verifier_key, latest)
    return logs
