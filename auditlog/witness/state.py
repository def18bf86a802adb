"""The witness's files: the state file, the signer key file and the evidence files.

Each is a ``StateFile`` model, read and written by ``auditlog._statefile`` (JSON, two-space
indent, sorted keys, non-ASCII kept as UTF-8), so a truncated, unreadable or foreign file is a
``StateFileError`` naming the file. ``state.json`` lists the followed logs, each with its
verifier key and the latest checkpoint cosigned for it, as signed; reading it also checks every
checkpoint again, and any damage is an error, never an empty state. ``witness.key`` holds the
signer key wrapped by the root key (a ``WrappedKeyFile``), bound to its verifier key.

Since version 2, ``state.json`` is authenticated: it carries a ``generation`` (one more on every
write) and a ``mac``, HMAC-SHA256 under a key derived with HKDF-SHA256 from the witness's
signing key, so that someone who can write the directory but holds no passphrase can neither
add a log, change a log's key nor plant a checkpoint. Version 1 files are refused until
``Witness.migrate`` (``auditlog witness migrate``) authenticates them once.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field

from auditlog import note
from auditlog._statefile import Base64Bytes, StateFile, read_state, state_bytes
from auditlog.crypto.wrapped import WrappedKey, WrappedKeyFile
from auditlog.errors import AuditLogError, MigrationRequiredError, RollbackError, StateFileError
from auditlog.witness.protocol import _quote, _require_origin

__all__ = ["EVIDENCE_FORMAT", "KEY_FORMAT", "STATE_FORMAT", "STATE_VERSION", "state_mac_key"]

STATE_FORMAT: Final = "auditlog-witness-state"
STATE_VERSION: Final = 2
KEY_FORMAT: Final = "auditlog-witness-key"
EVIDENCE_FORMAT: Final = "auditlog-witness-evidence"
# The wrapped signer key is bound to its verifier key, so that swapping the public key recorded
# in witness.key for another one makes the file fail to unwrap instead of lying.
_WRAP_CONTEXT: Final = b"auditlog/v1 witness signer key\0"
# HKDF info of the state file's MAC key, and the MAC's domain-separation prefix.
_MAC_KEY_INFO: Final = b"auditlog/v2 witness state mac\0"
_MAC_PREFIX: Final = b"auditlog-witness-state/v2\n"


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


class WitnessStateFileV1(StateFile):
    """``state.json`` of format version 1: not authenticated; read only to migrate it."""

    FORMAT: ClassVar[str] = STATE_FORMAT
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    JSON_ASCII: ClassVar[bool] = False
    WHAT: ClassVar[str] = "the witness state file"
    REMEDY: ClassVar[str] = (
        "restore it from a backup; starting afresh would let the logs it follows roll back"
    )
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    witness: str
    logs: dict[str, FollowedLogEntry]


class WitnessStateFile(StateFile):
    """``state.json``: the followed logs, by origin, and the witness key they belong to,
    authenticated by a MAC only the witness's key holder can make."""

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
    generation: int = 0
    """1 for the first version of the file, one more on every write."""
    mac: str = ""
    """Hex HMAC-SHA256, under the state MAC key, of the file as written with ``mac`` empty."""


def state_mac_key(signer_key: str, verifier_key: str) -> bytes:
    """The key of ``state.json``'s MAC: HKDF-SHA256 of the witness's Ed25519 seed, bound to
    its verifier key; only whoever can unwrap ``witness.key`` can derive it."""
    seed = note.parse_signer_key(signer_key).seed
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=_MAC_KEY_INFO + verifier_key.encode("utf-8"),
    ).derive(seed)


def _state_mac(state: WitnessStateFile, mac_key: bytes) -> str:
    body = state_bytes(state.model_copy(update={"mac": ""}))
    return hmac.new(mac_key, _MAC_PREFIX + body, hashlib.sha256).hexdigest()


def _sealed(state: WitnessStateFile, mac_key: bytes, generation: int) -> WitnessStateFile:
    """``state`` at ``generation`` with its MAC."""
    unsealed = state.model_copy(update={"generation": generation, "mac": ""})
    return unsealed.model_copy(update={"mac": _state_mac(unsealed, mac_key)})


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


def _state_file(
    witness_key: str, logs: dict[str, _FollowedLog], mac_key: bytes, generation: int
) -> WitnessStateFile:
    """The state file at ``generation``, authenticated with ``mac_key``."""
    state = WitnessStateFile(
        witness=witness_key,
        logs={
            origin: FollowedLogEntry(
                verifier_key=log.verifier_key,
                checkpoint=None if log.latest is None else log.latest.signed,
            )
            for origin, log in logs.items()
        },
    )
    return _sealed(state, mac_key, generation)


def _damaged(path: Path, why: str) -> StateFileError:
    return StateFileError(
        f"{WitnessStateFile.WHAT} ({path}) is damaged ({why}): {WitnessStateFile.REMEDY}",
        path=path,
    )


def _read_state_file(path: Path) -> WitnessStateFile:
    """The state file's model; a version 1 file is a ``MigrationRequiredError``."""
    try:
        return read_state(path, WitnessStateFile)
    except StateFileError:
        try:
            read_state(path, WitnessStateFileV1)
        except StateFileError:
            pass
        else:
            raise MigrationRequiredError(
                f"{path} is a witness state file of format version 1, which is not "
                "authenticated: migrate the witness once with `auditlog witness migrate "
                f"{path.parent}` (Witness.migrate), after checking that the directory was not "
                "written by anyone else"
            ) from None
        raise


def _followed_logs(
    path: Path, witness_key: str, logs_in_file: dict[str, FollowedLogEntry]
) -> dict[str, _FollowedLog]:
    logs: dict[str, _FollowedLog] = {}
    for origin, entry in logs_in_file.items():
        latest = None
        try:
            _require_origin(origin)
            if entry.checkpoint is not None:
                opened = note.open_note(entry.checkpoint, [entry.verifier_key])
                latest = _Cosigned(entry.checkpoint, note.Checkpoint.from_text(opened))
        except AuditLogError as exc:
            raise _damaged(
                path, f"the checkpoint of {_quote(origin)} does not verify: {exc}"
            ) from None
        if latest is not None and latest.checkpoint.origin != origin:
            raise _damaged(path, f"the checkpoint filed under {_quote(origin)} is of another log")
        logs[origin] = _FollowedLog(entry.verifier_key, latest)
    return logs


def _read_followed_logs(
    path: Path, witness_key: str, mac_key: bytes, *, seen_generation: int = 0
) -> tuple[dict[str, _FollowedLog], int]:
    """Read and check the state file: the followed logs and the file's generation. Any damage
    is an error, never an empty state.

    The loader checks the file's shape; checked here is what needs this witness's keys or the
    logs' keys: that the file's MAC is this witness's, that it is no older than the newest
    generation this process has read (``seen_generation``), and that every checkpoint verifies.
    """
    state = _read_state_file(path)
    if (
        not hmac.compare_digest(
            state.mac.encode("ascii", "replace"), _state_mac(state, mac_key).encode("ascii")
        )
        or state.generation < 1
    ):
        raise StateFileError(
            f"{WitnessStateFile.WHAT} ({path}) is not authenticated by this witness's key: it "
            "was changed or replaced by someone without the key; nothing of it was used; "
            "restore it from a backup",
            path=path,
        )
    if state.witness != witness_key:
        raise _damaged(path, "it belongs to another witness key")
    if state.generation < seen_generation:
        raise RollbackError(
            f"{WitnessStateFile.WHAT} ({path}) went back from generation {seen_generation} to "
            f"{state.generation} while this witness ran: an older copy was put back; restore the "
            "newest one from a backup before cosigning again"
        )
    return _followed_logs(path, witness_key, state.logs), state.generation


def _read_v1_followed_logs(path: Path, witness_key: str) -> dict[str, _FollowedLog]:
    """The followed logs of a version 1 state file (to migrate it), checked as far as a file
    without a MAC can be: its witness key and every checkpoint's signature."""
    state = read_state(path, WitnessStateFileV1)
    if state.witness != witness_key:
        raise _damaged(path, "it belongs to another witness key")
    return _followed_logs(path, witness_key, state.logs)
