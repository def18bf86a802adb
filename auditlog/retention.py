"""Retention: policies with a floor and a ceiling, legal holds, and the plan of a sweep.

- A ``RetentionPolicy`` per chain: records must be kept ``keep_at_least`` (the floor: deleting
  sooner is refused, even when asked for by hand) and are deleted once ``delete_after`` has
  passed (the ceiling: the sweep deletes). Both count from the end of the record's period,
  so a whole period — and its data key — expires at once.
- A ``LegalHold`` suspends the ceiling for the chains, time range and (optionally) subjects
  it covers, until it is released or expires. Subjects are kept only as keyed tokens.
- ``SweepPlan`` is what a sweep would do; ``AuditLog.sweep(dry_run=True)`` returns it.

Policies live in the manifest, holds in ``holds.json``; every change is also appended to the
log as a ``log`` record, so the history of retention decisions is itself tamper-evident.
"""

from __future__ import annotations

import hmac
import json
import secrets
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Self

import msgpack
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from auditlog._fs import atomic_replace, create_exclusive, exclusive_lock, make_private_dir
from auditlog.crypto.providers import KeyProvider
from auditlog.errors import IntegrityError, KeyMaterialError

__all__ = [
    "ChainSweepPlan",
    "LegalHold",
    "RetentionPolicy",
    "SweepPlan",
    "subject_token",
]

_HOLDS_FORMAT: Final = "auditlog-holds"
_HOLDS_VERSION: Final = 1
_HOLD_KEY_FORMAT: Final = "auditlog-hold-key"


def period_bounds(period: int, period_seconds: int) -> tuple[datetime, datetime]:
    """[start, end) of a period, as aware UTC datetimes."""
    return (
        datetime.fromtimestamp(period * period_seconds, UTC),
        datetime.fromtimestamp((period + 1) * period_seconds, UTC),
    )


class RetentionPolicy(BaseModel):
    """How long a chain's records are kept: at least ``keep_at_least``, at most ``delete_after``.

    Both are measured from the end of the period a record's ``occurred_at`` falls in.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    keep_at_least: timedelta = Field(description="The floor: deletion before it is refused.")
    delete_after: timedelta = Field(description="The ceiling: the sweep deletes after it.")

    @model_validator(mode="after")
    def _ceiling_above_floor(self) -> Self:
        if self.keep_at_least < timedelta(0):
            raise ValueError("keep_at_least cannot be negative")
        if self.delete_after <= timedelta(0):
            raise ValueError("delete_after must be positive")
        if self.delete_after < self.keep_at_least:
            raise ValueError(
                "delete_after (the ceiling) must not be shorter than keep_at_least (the floor)"
            )
        return self

    def floor_ends(self, period: int, period_seconds: int) -> datetime:
        """When a period's records may first be deleted (by hand, or by a redaction)."""
        return period_bounds(period, period_seconds)[1] + self.keep_at_least

    def ceiling_passes(self, period: int, period_seconds: int) -> datetime:
        """When a sweep must delete a period's records (unless a hold keeps them)."""
        return period_bounds(period, period_seconds)[1] + self.delete_after


class LegalHold(BaseModel):
    """A court's or regulator's order to keep what it covers, whatever the ceiling says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hold_id: str = Field(min_length=1, max_length=64)
    case_id: str = Field(min_length=1, max_length=256)
    chains: tuple[str, ...] = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime
    subject_tokens: tuple[str, ...] = ()
    """Keyed tokens of the subjects covered (``subject_token``); empty: every subject."""
    expires_at: AwareDatetime | None = None
    created_at: AwareDatetime
    released_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.end <= self.start:
            raise ValueError("a hold's end must be after its start")
        return self

    def active(self, now: datetime) -> bool:
        """Whether the hold binds at ``now`` (not released, not expired)."""
        if self.released_at is not None and self.released_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at

    def covers(self, chain: str, start: datetime, end: datetime) -> bool:
        """Whether the hold covers records of ``chain`` in [start, end) (all subjects or some)."""
        return chain in self.chains and self.start < end and start < self.end


def subject_token(key: bytes, subject: str) -> str:
    """The keyed token that stands for a subject in a hold: HMAC-SHA256, 128 bits, hex."""
    return hmac.new(
        key, b"auditlog/v1 hold-subject\0" + subject.encode("utf-8"), "sha256"
    ).hexdigest()[:32]


def create_hold_key(path: Path, provider: KeyProvider, origin: str) -> None:
    """Make the log's hold-token key and store it wrapped by the root key."""
    make_private_dir(path.parent)
    create_exclusive(path, _hold_key_file(secrets.token_bytes(32), provider, origin))


def _hold_context(origin: str) -> bytes:
    return b"auditlog/v1 hold-key\0" + origin.encode("utf-8")


def _hold_key_file(key: bytes, provider: KeyProvider, origin: str) -> bytes:
    """The bytes of ``keys/hold.key``: ``key`` wrapped by ``provider``'s current root key."""
    doc = {
        "format": _HOLD_KEY_FORMAT,
        "version": 1,
        "root_key_id": provider.key_id,
        "wrapped": provider.wrap(key, _hold_context(origin)),
    }
    packed: bytes = msgpack.packb(doc)
    return packed


def load_hold_key(path: Path, provider: KeyProvider, origin: str) -> bytes:
    try:
        doc = msgpack.unpackb(path.read_bytes())
    except FileNotFoundError:
        raise KeyMaterialError(f"no hold key at {path}; restore it from a backup") from None
    if not isinstance(doc, dict) or doc.get("format") != _HOLD_KEY_FORMAT:
        raise KeyMaterialError(f"{path} is not an auditlog hold key file")
    if doc.get("version") != 1:
        raise KeyMaterialError(f"{path} has hold key version {doc.get('version')!r}; upgrade")
    key: bytes = provider.unwrap(bytes(doc["wrapped"]), _hold_context(origin))
    return key


def rewrap_hold_key(path: Path, old: KeyProvider, new: KeyProvider, origin: str) -> None:
    atomic_replace(path, _hold_key_file(load_hold_key(path, old, origin), new, origin))


def log_lock(root: Path) -> AbstractContextManager[None]:
    """The log-wide lock for changes to shared files (manifest, holds); waits for it."""
    return exclusive_lock(root / "LOCK")


class HoldStore:
    """``holds.json``: every hold ever placed, released ones included (they are history)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[LegalHold]:
        try:
            doc = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        except ValueError:
            raise IntegrityError(f"{self.path} is not readable JSON; restore it") from None
        if doc.get("format") != _HOLDS_FORMAT or doc.get("version") != _HOLDS_VERSION:
            raise IntegrityError(f"{self.path} is not a holds file of a known version")
        try:
            return [LegalHold.model_validate(item) for item in doc["holds"]]
        except ValidationError as exc:
            raise IntegrityError(f"{self.path} holds an invalid legal hold: {exc}") from None

    def save(self, holds: list[LegalHold]) -> None:
        doc = {
            "format": _HOLDS_FORMAT,
            "version": _HOLDS_VERSION,
            "holds": [h.model_dump(mode="json") for h in holds],
        }
        atomic_replace(self.path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


def new_hold_id() -> str:
    return "hold-" + secrets.token_hex(6)


@dataclass
class ChainSweepPlan:
    """What a sweep does to one chain."""

    chain: str
    policy: RetentionPolicy | None
    shred_periods: list[int] = field(default_factory=list)
    delete_segments: list[int] = field(default_factory=list)
    seal_open_segment: bool = False
    held_periods: dict[int, list[str]] = field(default_factory=dict)  # period -> case ids
    floor_periods: list[int] = field(default_factory=list)  # still inside the floor
    kept_periods: list[int] = field(default_factory=list)  # past the floor, before the ceiling
    already_shredded: list[int] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.shred_periods or self.delete_segments)


@dataclass
class SweepPlan:
    """What a sweep at ``now`` deletes, shreds and keeps, per chain."""

    now: datetime
    chains: dict[str, ChainSweepPlan]
    applied: bool = False

    @property
    def empty(self) -> bool:
        return all(plan.empty for plan in self.chains.values())
