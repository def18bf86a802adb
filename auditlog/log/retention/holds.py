"""``holds.json`` and the subject tokens in holds: every legal hold ever placed is kept there,
released and expired ones too (they are history); subjects appear only as keyed tokens."""

from __future__ import annotations

import hmac
import secrets
from typing import ClassVar, Literal

from auditlog._statefile import StateFile, read_state, write_state
from auditlog.retention import LegalHold
from auditlog.storage.layout import LogLayout

__all__ = ["HoldsFile", "load_holds", "new_hold_id", "save_hold", "subject_token"]


class HoldsFile(StateFile):
    """``holds.json``: every legal hold ever placed."""

    FORMAT: ClassVar[str] = "auditlog-holds"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    WHAT: ClassVar[str] = "the legal holds file"
    REMEDY: ClassVar[str] = (
        "restore holds.json from a backup; until then no sweep can tell what is held"
    )

    holds: tuple[LegalHold, ...]


def subject_token(key: bytes, subject: str) -> str:
    """The keyed token that stands for a subject in a hold: HMAC-SHA256, 128 bits, hex."""
    return hmac.new(
        key, b"auditlog/v1 hold-subject\0" + subject.encode("utf-8"), "sha256"
    ).hexdigest()[:32]


def new_hold_id() -> str:
    return "hold-" + secrets.token_hex(6)


def load_holds(layout: LogLayout) -> list[LegalHold]:
    """Every hold ever placed (none if no hold was ever placed)."""
    if not layout.holds.exists():
        return []
    return list(read_state(layout.holds, HoldsFile).holds)


def save_hold(layout: LogLayout, hold: LegalHold, *, replace: bool) -> None:
    """Add ``hold`` (or, with ``replace``, put it in the place of the hold of its id)."""
    with layout.log_lock():
        holds = [h for h in load_holds(layout) if not (replace and h.hold_id == hold.hold_id)]
        write_state(layout.holds, HoldsFile(holds=(*holds, hold)))
