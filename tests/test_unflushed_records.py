"""Nothing acknowledged is lost: records appended but never flushed are written when the
interpreter exits normally, and a log dropped unclosed with records buffered warns and writes
them."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditlog import AuditLog
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock, workload

START = datetime(2026, 3, 1, tzinfo=UTC)
MakeLog = Callable[..., AuditLog]

_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from auditlog import AuditLog, GroupCommit
    from auditlog.testing import FixedClock, workload

    start = datetime(2026, 3, 1, tzinfo=UTC)
    # A group commit that would wait an hour: only the exit can write the records.
    waiting = GroupCommit(max_records=10**6, max_delay=3600)
    group_commit = waiting if sys.argv[4] == "group" else None
    log = AuditLog.open(
        sys.argv[1], passphrase=sys.argv[2], clock=FixedClock(start), group_commit=group_commit
    )
    for record in workload(int(sys.argv[3]), start=start, span=timedelta(minutes=1)):
        log.append(record)  # buffered: never flushed, the log never closed
    print(sum(chain.records for chain in log.stats().chains.values()))
    """
)


@pytest.mark.parametrize("flushing", ["by-hand", "group"])
def test_records_not_flushed_are_written_when_the_interpreter_exits(
    create_log: MakeLog, log_path: Path, flushing: str
) -> None:
    """A process that appends records, never flushes nor closes, and exits with status 0 leaves
    every record on disk, with or without a group commit waiting to write them: the log opened
    afterwards reads them all and verifies."""
    create_log().close()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(log_path), TEST_PASSPHRASE, "57", flushing],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"  # nothing was on disk while the process ran
    assert done.stderr == ""
    expected = list(workload(57, start=START, span=timedelta(minutes=1)))
    with AuditLog.open(log_path, mode="read", passphrase=TEST_PASSPHRASE) as log:
        assert log.verify().records == 57
        kept = [record for chain in log.chains() for record in log.read(chain)]
    assert sorted(kept, key=repr) == sorted(expected, key=repr)


def _new_log(path: Path) -> AuditLog:
    # Not the create_log fixture: it keeps every log it made until the test ends.
    return AuditLog.create(
        path, passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N, clock=FixedClock(START)
    )


def _drop(held: list[AuditLog]) -> None:
    """Let go of the only reference to a log, and collect it."""
    held.clear()
    gc.collect()


def test_a_log_dropped_with_records_buffered_warns_and_writes_them(log_path: Path) -> None:
    """A log garbage-collected unclosed with records buffered raises a ResourceWarning naming
    each chain and how many records it held, and the records are written all the same."""
    log = _new_log(log_path)
    records = list(workload(30, start=START, span=timedelta(minutes=1)))
    for record in records:
        log.append(record)
    held = [log]
    del log
    with pytest.warns(ResourceWarning, match="30 records not yet flushed") as warned:
        _drop(held)
    message = str(warned[0].message)
    for chain, count in Counter(record.kind for record in records).items():
        assert f"{count} in chain {chain!r}" in message
    with AuditLog.open(log_path, mode="read", passphrase=TEST_PASSPHRASE) as reopened:
        assert reopened.verify().records == 30


def test_a_log_dropped_with_nothing_buffered_warns_of_nothing(log_path: Path) -> None:
    """A log dropped unclosed after a flush has nothing to warn about (warnings are errors in
    this suite, so a ResourceWarning would fail the test)."""
    log = _new_log(log_path)
    log.append_many(workload(5, start=START, span=timedelta(minutes=1)))
    held = [log]
    del log
    _drop(held)
    with AuditLog.open(log_path, mode="read") as reopened:
        assert reopened.verify(keyless=True).records == 5
