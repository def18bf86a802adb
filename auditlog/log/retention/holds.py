"""``holds.json`` and the subject tokens in holds: every legal hold ever placed is kept there,
released and expired ones too (they are history); subjects appear only as keyed tokens."""

from __future__ import annotations

import hmac
import secrets

from auditlog._statefile import read_state, write_state
from auditlog.crypto.signed import StateSigner
from auditlog.log.holds_file import HOLDS_PATH, HoldsFile
from auditlog.retention import LegalHold
from auditlog.storage.layout import LogLayout

__all__ = [
    "load_holds",
    "load_holds_file",
    "new_hold_id",
    "save_hold",
    "subject_token",
]


def subject_token(key: bytes, subject: str) -> str:
    """The keyed token that stands for a subject in a hold: HMAC-SHA256, 128 bits, hex."""
    return hmac.new(
        key, b"auditlog/v1 hold-subject\0" + subject.encode("utf-8"), "sha256"
    ).hexdigest()[:32]


def new_hold_id() -> str:
    return "hold-" + secrets.token_hex(6)


def load_holds_file(layout: LogLayout, signer: StateSigner) -> HoldsFile | None:
    """The holds file, its signature checked; None if no hold was ever placed."""
    if not layout.holds.exists():
        return None
    return signer.check(read_state(layout.holds, HoldsFile), HOLDS_PATH)


def load_holds(layout: LogLayout, signer: StateSigner) -> list[LegalHold]:
    """Every hold ever placed (none if no hold was ever placed), from the signed file."""
    loaded = load_holds_file(layout, signer)
    return [] if loaded is None else list(loaded.holds)


def save_hold(
    layout: LogLayout, signer: StateSigner, hold: LegalHold, *, replace: bool
) -> HoldsFile:
    """Add ``hold`` (or, with ``replace``, put it in the place of the hold of its id); the new
    file is signed. The caller holds the log lock (the head and an event follow)."""
    with layout.log_lock():
        current = load_holds_file(layout, signer)
        generation = 0 if current is None else current.generation
        kept = [] if current is None else list(current.holds)
        holds = [h for h in kept if not (replace and h.hold_id == hold.hold_id)]
        signed = signer.sign(HoldsFile(holds=(*holds, hold)), HOLDS_PATH, generation=generation + 1)
        write_state(layout.holds, signed)
        return signed
