"""The witness's state file and signer key file: their formats, writing and reading.

``state.json`` lists the followed logs, each with its verifier key and the latest checkpoint
cosigned for it, as signed; reading it checks every checkpoint again, and any damage is an error,
never an empty state. ``witness.key`` holds the signer key wrapped by the root key, bound to its
verifier key. Both documents carry a format name and version.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from auditlog import note
from auditlog.errors import (
    AuditLogError,
    ConfigurationError,
    IntegrityError,
    KeyMaterialError,
)
from auditlog.witness.protocol import _quote, _require_origin

__all__ = ["KEY_FORMAT", "STATE_FORMAT", "STATE_VERSION"]

STATE_FORMAT: Final = "auditlog-witness-state"
STATE_VERSION: Final = 1
KEY_FORMAT: Final = "auditlog-witness-key"
_KEY_VERSION: Final = 1
# The wrapped signer key is bound to its verifier key, so that swapping the public key recorded
# in witness.key for another one makes the file fail to unwrap instead of lying.
_WRAP_CONTEXT: Final = b"auditlog/v1 witness signer key\0"


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


def _wrap_context(verifier_key: str) -> bytes:
    return _WRAP_CONTEXT + verifier_key.encode("utf-8")


def _dump_json(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _dump_state(witness_key: str, logs: dict[str, _FollowedLog]) -> bytes:
    doc = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "witness": witness_key,
        "logs": {
            origin: {
                "verifier_key": log.verifier_key,
                "checkpoint": None if log.latest is None else log.latest.signed,
            }
            for origin, log in sorted(logs.items())
        },
    }
    return _dump_json(doc)


def _parse_state(raw: bytes, path: Path, witness_key: str) -> dict[str, _FollowedLog]:
    """Read and check the state file; any damage is an error, never an empty state."""

    def damaged(why: str) -> IntegrityError:
        return IntegrityError(
            f"the witness state file is damaged ({why}): restore it from a backup; starting "
            "afresh would let the logs it follows roll back",
            location={"file": str(path)},
        )

    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise damaged("not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        raise damaged(f"not an {STATE_FORMAT} document")
    if doc.get("version") != STATE_VERSION:
        raise ConfigurationError(
            f"{path} has witness state version {doc.get('version')!r}; this auditlog reads "
            f"version {STATE_VERSION}: upgrade auditlog"
        )
    if set(doc) != {"format", "version", "witness", "logs"} or not isinstance(doc["logs"], dict):
        raise damaged("unexpected fields")
    if doc["witness"] != witness_key:
        raise damaged("it belongs to another witness key")
    logs: dict[str, _FollowedLog] = {}
    for origin, entry in doc["logs"].items():
        if not isinstance(entry, dict) or set(entry) != {"verifier_key", "checkpoint"}:
            raise damaged(f"the entry of {_quote(origin)} has unexpected fields")
        verifier_key, signed = entry["verifier_key"], entry["checkpoint"]
        if not isinstance(verifier_key, str) or not isinstance(signed, str | None):
            raise damaged(f"the entry of {_quote(origin)} has fields of the wrong type")
        latest = None
        try:
            _require_origin(origin)
            if signed is not None:
                checkpoint = note.Checkpoint.from_text(note.open_note(signed, [verifier_key]))
                latest = _Cosigned(signed, checkpoint)
        except AuditLogError as exc:
            raise damaged(f"the checkpoint of {_quote(origin)} does not verify: {exc}") from None
        if latest is not None and latest.checkpoint.origin != origin:
            raise damaged(f"the checkpoint filed under {_quote(origin)} is of another log")
        logs[origin] = _FollowedLog(verifier_key, latest)
    return logs


@dataclass(frozen=True)
class _KeyDoc:
    root_key_id: str
    verifier_key: str
    wrapped: bytes


def _load_key_doc(path: Path) -> _KeyDoc:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{path} is missing: the witness has no key") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeyMaterialError(f"{path} is not a readable witness key file") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise KeyMaterialError(f"{path} is not an {KEY_FORMAT} file")
    if doc.get("version") != _KEY_VERSION:
        raise KeyMaterialError(
            f"{path} has witness key format version {doc.get('version')!r}; this auditlog reads "
            f"version {_KEY_VERSION}: upgrade auditlog"
        )
    try:
        root_key_id, verifier_key = doc["root_key_id"], doc["verifier_key"]
        wrapped = base64.b64decode(doc["wrapped_signer_key"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise KeyMaterialError(f"{path} is a damaged witness key file") from None
    if not isinstance(root_key_id, str) or not isinstance(verifier_key, str):
        raise KeyMaterialError(f"{path} is a damaged witness key file")
    return _KeyDoc(root_key_id, verifier_key, wrapped)
