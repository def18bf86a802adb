"""``holds.json``: every legal hold ever placed, released and expired ones too (they are
history), signed with the log's key; subjects appear only as keyed tokens. Format v1 files
(unsigned) are read only to migrate a log."""

from __future__ import annotations

from typing import ClassVar, Literal

from auditlog._statefile import StateFile
from auditlog.crypto.signed import SignedState
from auditlog.retention import LegalHold

__all__ = ["HOLDS_PATH", "HoldsFile", "HoldsFileV1"]

HOLDS_PATH = "holds.json"
"""The holds file's place in the log, as its signature names it."""


class HoldsFileV1(StateFile):
    """``holds.json`` of format v1 (unsigned), read only to migrate a log."""

    FORMAT: ClassVar[str] = "auditlog-holds"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    WHAT: ClassVar[str] = "the legal holds file"
    REMEDY: ClassVar[str] = (
        "restore holds.json from a backup; until then no sweep can tell what is held"
    )

    holds: tuple[LegalHold, ...]


class HoldsFile(SignedState):
    """``holds.json``: every legal hold ever placed, signed with the log's key."""

    FORMAT: ClassVar[str] = "auditlog-holds"
    VERSION: ClassVar[int] = 2
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "json"
    WHAT: ClassVar[str] = "the legal holds file"
    REMEDY: ClassVar[str] = (
        "restore holds.json from a backup; until then no sweep can tell what is held"
    )

    holds: tuple[LegalHold, ...]
