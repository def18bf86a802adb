"""A fixed clock and a throwaway log, for tests of code that uses auditlog."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from auditlog.log import AuditLog, GroupCommit, LogConfig

__all__ = ["TEST_PASSPHRASE", "TEST_SCRYPT_N", "FixedClock", "temporary_log"]

TEST_PASSPHRASE = "auditlog test passphrase"  # noqa: S105 - for throwaway test logs only
"""The passphrase of ``temporary_log``."""
# scrypt at N=2^10 takes about a millisecond: fine for throwaway test logs, never for real ones.
TEST_SCRYPT_N = 2**10
"""The scrypt cost of ``temporary_log``: fast, and far too low for a log that matters."""


class FixedClock:
    """A clock that stands still until told to move: ``advance`` or ``set``."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _as_utc(start or datetime(2026, 1, 1, tzinfo=UTC))
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        moment = _as_utc(moment)
        with self._lock:
            self._now = moment

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("FixedClock needs a timezone-aware datetime")
    return moment.astimezone(UTC)


@contextmanager
def temporary_log(
    *,
    config: LogConfig | None = None,
    clock: FixedClock | None = None,
    group_commit: GroupCommit | None = None,
    fsync: bool = True,
    directory: Path | None = None,
) -> Iterator[AuditLog]:
    """A new log in a temporary directory with a test passphrase; removed afterwards.

    The passphrase is ``TEST_PASSPHRASE`` and its scrypt cost is deliberately low: never use
    this for records that matter.
    """
    parent = Path(tempfile.mkdtemp(prefix="auditlog-", dir=directory))
    try:
        with AuditLog.create(
            parent / "log",
            passphrase=TEST_PASSPHRASE,
            config=config,
            clock=clock,
            group_commit=group_commit,
            fsync=fsync,
            scrypt_n=TEST_SCRYPT_N,
        ) as log:
            yield log
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def settle(log: AuditLog) -> None:
    """Wait for the log's background work to finish: the training of a period's dictionary,
    which writers start once a period has its samples and blocks do not wait for.

    For tests that look at what a log stored (its dictionary files, which blocks use them):
    without it, that depends on how fast the training thread ran.
    """
    for writer in log._chains.open_writers():
        writer.settle()
