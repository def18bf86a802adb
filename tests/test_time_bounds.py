"""Time bounds on appended records: nothing dated more than ``max_future_seconds`` ahead of the
log's clock, nothing before 1970, no year arithmetic that overflows, and a refused batch leaves
its chains as they were."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlog import AuditLog, LogConfig, RecordValidationError
from auditlog.records import Record
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock, workload

START = datetime(2026, 3, 1, tzinfo=UTC)
MakeLog = Callable[..., AuditLog]


def _records(n: int, start: datetime, seed: int = 0) -> list[Record]:
    return list(workload(n, seed=seed, start=start, span=timedelta(minutes=1)))


def _dated(record: Record, moment: datetime) -> Record:
    return record.model_copy(update={"occurred_at": moment})


def _sizes(log: AuditLog) -> dict[str, int]:
    return {name: chain.records for name, chain in log.stats().chains.items()}


def test_a_record_from_2099_is_refused_and_the_chain_goes_on(create_log: MakeLog) -> None:
    """A record dated 2099 is refused with RecordValidationError naming occurred_at and the
    bound, and records of the present are appended after it as before (it used to block the
    chain for good: every later record was refused as late)."""
    clock = FixedClock(START)
    log = create_log(clock=clock)
    record = _records(1, START)[0]
    with pytest.raises(RecordValidationError, match="max_future_seconds") as refused:
        log.append(_dated(record, datetime(2099, 1, 1, tzinfo=UTC)))
    assert refused.value.fields == ("occurred_at",)
    assert "300 s" in str(refused.value)
    assert isinstance(refused.value, ValueError)
    clock.advance(timedelta(hours=1))
    later = _records(20, START + timedelta(minutes=30), seed=1)
    result = log.append_many(later)
    assert result.count == 20
    assert log.verify().records == 20


def test_a_record_within_the_skew_is_taken(create_log: MakeLog) -> None:
    """A record dated up to max_future_seconds after the clock's now is appended; one a second
    beyond it is refused."""
    log = create_log(clock=FixedClock(START))
    record = _records(1, START)[0]
    log.append(_dated(record, START + timedelta(seconds=300)))
    with pytest.raises(RecordValidationError, match="max_future_seconds"):
        log.append(_dated(record, START + timedelta(seconds=301)))
    log.flush()
    assert log.verify().records == 1


def test_the_skew_is_the_logs_own_setting(create_log: MakeLog, open_log: MakeLog) -> None:
    """LogConfig.max_future_seconds, stored in the manifest, sets the bound for every handle."""
    clock = FixedClock(START)
    create_log(LogConfig(max_future_seconds=86_400), clock=clock).close()
    log = open_log(clock=clock)
    assert log.config.max_future_seconds == 86_400
    record = _records(1, START)[0]
    log.append(_dated(record, START + timedelta(hours=23)))
    with pytest.raises(RecordValidationError, match="86400 s"):
        log.append(_dated(record, START + timedelta(hours=25)))


def test_a_config_written_before_the_bound_existed_gets_the_default() -> None:
    """A log configuration stored without max_future_seconds (format v1 wrote none) reads with
    the default of 300 seconds."""
    manifest = Path(__file__).parent / "fixtures" / "logs" / "v1" / "log" / "manifest.json"
    stored = json.loads(manifest.read_text(encoding="utf-8"))["config"]
    assert "max_future_seconds" not in stored
    assert LogConfig.model_validate(stored).max_future_seconds == 300


def test_the_clock_moving_on_lets_later_records_in(create_log: MakeLog) -> None:
    """A record refused as too far ahead is taken once the clock has caught up with it."""
    clock = FixedClock(START)
    log = create_log(clock=clock)
    record = _dated(_records(1, START)[0], START + timedelta(hours=2))
    with pytest.raises(RecordValidationError):
        log.append(record)
    clock.set(START + timedelta(hours=2))
    log.append(record)
    log.flush()
    assert log.verify().records == 1


def test_records_at_the_end_of_time_append_without_overflow(create_log: MakeLog) -> None:
    """With the clock in the last minute of year 9999, records of that minute, up to the last
    microsecond a datetime holds, are appended and verify: no bound or period overflows."""
    end = datetime.max.replace(tzinfo=UTC)
    clock = FixedClock(end - timedelta(minutes=1))
    log = create_log(clock=clock)
    records = _records(10, end - timedelta(minutes=2))
    log.append_many([*records, _dated(records[0], end)])
    assert log.verify().records == 11


OFFSETS = st.lists(st.integers(min_value=-3600, max_value=3 * 86_400), min_size=1, max_size=12)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offsets=OFFSETS)
def test_a_batch_is_appended_whole_or_not_at_all(
    offsets: list[int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever the times in a batch spread over several chains, append_many either appends
    every record, or refuses the batch (a record beyond the skew) and every chain keeps its
    size."""
    path = tmp_path_factory.mktemp("log") / "log"
    clock = FixedClock(START + timedelta(hours=1))
    base = _records(len(offsets), START, seed=len(offsets))
    batch = [
        _dated(record, START + timedelta(hours=1, seconds=offset))
        for record, offset in zip(base, sorted(offsets), strict=True)
    ]
    with AuditLog.create(
        path, passphrase=TEST_PASSPHRASE, clock=clock, scrypt_n=TEST_SCRYPT_N
    ) as log:
        log.append_many(_records(6, START))
        before = _sizes(log)
        if max(offsets) > 300:
            with pytest.raises(RecordValidationError, match="occurred_at"):
                log.append_many(batch)
            assert _sizes(log) == before
        else:
            assert log.append_many(batch).count == len(batch)
            after = _sizes(log)
            assert sum(after.values()) == sum(before.values()) + len(batch)
        assert log.verify().records == sum(_sizes(log).values())
