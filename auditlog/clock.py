"""Time as an argument, and time as stored.

A ``Clock`` protocol lets policy be tested without sleeping. Stored times (block headers, seals,
tombstones, journals, keyrings) are integer UTC microseconds since the Unix epoch. Every time
taken from a caller is checked to be timezone-aware (``aware_utc``), and no record may be dated
further ahead of the log's clock than its configuration allows (``future_limit``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from auditlog.errors import ConfigurationError, RecordValidationError

__all__ = [
    "Clock",
    "SystemClock",
    "aware_utc",
    "datetime_to_micros",
    "future_limit",
    "micros_to_datetime",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@runtime_checkable
class Clock(Protocol):
    """Something that tells the current time as a timezone-aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def aware_utc(moment: object, what: str = "the time") -> datetime:
    """``moment`` in UTC; ``ConfigurationError`` if it is not a timezone-aware datetime.

    A naive datetime would be read as the machine's local time, silently; a time an offset
    carries past year 1 or 9999 cannot be held in UTC at all. ``what`` names the argument in
    the message (``"now"``, ``"the hold's start"``).
    """
    if not isinstance(moment, datetime):
        raise ConfigurationError(
            f"{what} must be a datetime, not {type(moment).__name__}: pass e.g. datetime.now(UTC)"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigurationError(
            f"{what} is a naive datetime: give a timezone-aware one, e.g. "
            "datetime(2026, 1, 1, tzinfo=UTC)"
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ConfigurationError(
            f"{what} is out of range once converted to UTC: give a time between years 1 "
            "and 9999 in UTC"
        ) from None


def datetime_to_micros(moment: datetime) -> int:
    """An aware datetime as integer UTC microseconds since the Unix epoch.

    ``ConfigurationError`` for a naive datetime (see ``aware_utc``).
    """
    return utc_micros(aware_utc(moment))


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


def future_limit(clock: Clock, skew_seconds: int, newest: int, limit: int = -1) -> int:
    """The newest record time (UTC microseconds) a log takes now: ``limit``, or the clock's now
    plus ``skew_seconds`` if later; ``RecordValidationError`` if ``newest`` lies beyond it.

    A record dated ahead would raise its chain's newest time, and every record of the present
    after it would be refused as late: one wrong clock would block the chain for good. Callers
    keep the returned limit and ask again only for a record newer than it, so appending records
    of the present costs no clock read.
    """
    told = aware_utc(clock.now(), "the log clock's now")
    limit = max(limit, utc_micros(told) + skew_seconds * 1_000_000)
    if newest > limit:
        raise RecordValidationError(
            f"occurred_at: a record is dated more than {skew_seconds} s after the log clock's "
            f"now ({told.isoformat(timespec='seconds')}); records from the future are refused "
            "so that they cannot make the present look late, and nothing of their batch was "
            "written. Fix the record's time (or the clock); LogConfig.max_future_seconds sets "
            "the bound",
            fields=("occurred_at",),
        )
    return limit
