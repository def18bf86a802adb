"""Time as an argument, and time as stored.

A ``Clock`` protocol lets policy be tested without sleeping. Stored times (block headers, seals,
tombstones, journals, keyrings) are integer UTC microseconds since the Unix epoch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "datetime_to_micros", "micros_to_datetime"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@runtime_checkable
class Clock(Protocol):
    """Something that tells the current time as a timezone-aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def datetime_to_micros(moment: datetime) -> int:
    """An aware datetime as integer UTC microseconds since the Unix epoch."""
    return utc_micros(moment.astimezone(UTC))


def utc_micros(moment: datetime) -> int:
    """``datetime_to_micros`` of a datetime already in UTC, exactly (no float on the way)."""
    return (
        (moment.toordinal() - 719_163) * 86_400_000_000
        + (moment.hour * 3600 + moment.minute * 60 + moment.second) * 1_000_000
        + moment.microsecond
    )


def micros_to_datetime(micros: int) -> datetime:
    """The aware UTC datetime of integer UTC microseconds since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)
