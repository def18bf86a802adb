"""The rules of retention, as values: policies, legal holds and the plan of a sweep.

Applying them to a log is ``auditlog.log.retention`` (``log.retention``); this module holds only
the values, so that the manifest, the command line and users' code can share them.

- A ``RetentionPolicy`` per chain: records must be kept ``keep_at_least`` (the floor: deleting
  sooner is refused, even when asked for by hand) and are deleted once ``delete_after`` has
  passed (the ceiling: the sweep deletes). Both count from the end of the record's period,
  so a whole period — and its data key — expires at once.
- A ``LegalHold`` suspends the ceiling for the chains, time range and (optionally) subjects
  it covers, until it is released or expires. Subjects are kept only as keyed tokens.
- ``SweepPlan`` is what a sweep does (or, as a dry run, would do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ChainSweepPlan",
    "LegalHold",
    "RetentionPolicy",
    "SweepPlan",
    "period_bounds",
]


def period_bounds(period: int, period_seconds: int) -> tuple[datetime, datetime]:
    """[start, end) of a period, as aware UTC datetimes."""
    return (
        datetime.fromtimestamp(period * period_seconds, UTC),
        datetime.fromtimestamp((period + 1) * period_seconds, UTC),
    )


MAX_RETENTION: Final = timedelta(days=365_250)
"""The longest floor or ceiling a policy may set (so dates computed from it never overflow)."""


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
        if self.delete_after > MAX_RETENTION:
            raise ValueError(
                f"delete_after may be at most {MAX_RETENTION.days} days (about 1000 years); "
                "to keep records for good, use a legal hold"
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
