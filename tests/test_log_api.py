"""The AuditLog API: receipts, append_many, reads across segments, late records, segment rolls,
group commit, reopening, stats, modes, passphrases and file modes."""

from __future__ import annotations

import random
import stat
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from _integrity_helpers import (
    BASE_TIME,
    SMALL_CONFIG,
    TEST_PASSPHRASE,
    TEST_SCRYPT_N,
    chat_record,
    create_log_with,
    network_record,
    scan_chain,
    segment_file,
)

from auditlog import (
    AuditLog,
    ConfigurationError,
    GroupCommit,
    LateRecordError,
    LogConfig,
    PassphraseError,
    Receipt,
)
from auditlog.merkle import root
from auditlog.testing import tamper

MakeLog = Callable[..., AuditLog]


# -- receipts --------------------------------------------------------------------------------


def test_receipt_becomes_durable_only_after_flush(create_log: MakeLog) -> None:
    """A receipt is not durable after append and becomes durable when a flush returns."""
    log = create_log()
    receipts = [log.append(chat_record(i)) for i in range(5)]
    assert [r.index for r in receipts] == list(range(5))
    assert {r.chain for r in receipts} == {"chat"}
    assert not any(r.durable for r in receipts)
    assert "durable=False" in repr(receipts[0])
    log.flush()
    assert all(r.durable for r in receipts)
    assert all(r.wait_durable(timeout=0) for r in receipts)
    later = log.append(chat_record(5))
    assert not later.durable
    assert all(r.durable for r in receipts)


def test_wait_durable_without_group_commit_flushes_for_every_waiting_thread(
    create_log: MakeLog,
) -> None:
    """Without background group commit, the first ``wait_durable`` flushes the chain: every
    record appended before it becomes durable, whichever thread appended it."""
    log = create_log()
    receipts: list[Receipt] = []

    def produce(start: int) -> None:
        receipts.extend(log.append(chat_record(i)) for i in range(start, start + 50))

    threads = [threading.Thread(target=produce, args=(n * 50,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not any(r.durable for r in receipts)
    assert receipts[-1].wait_durable(timeout=10)
    assert all(r.durable for r in receipts)
    assert sorted(r.index for r in receipts) == list(range(200))
    leaves = [r.leaf for r in sorted(receipts, key=lambda r: r.index)]
    assert log.verify().chains["chat"].root == root(leaves)


def test_wait_durable_wakes_when_another_thread_flushes(create_log: MakeLog) -> None:
    """Under group commit, ``wait_durable`` blocks until a flush in another thread makes the
    record durable (here before the background commit's long delay is up)."""
    log = create_log(group_commit=GroupCommit(max_records=1000, max_delay=60))
    receipt = log.append(chat_record(0))
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(receipt.wait_durable(timeout=30)))
    waiter.start()
    time.sleep(0.05)
    assert waiter.is_alive()
    log.flush()
    waiter.join(timeout=30)
    assert result == [True]


def test_receipt_leaf_is_the_leaf_in_the_tree(create_log: MakeLog) -> None:
    """The receipts' leaves are the leaves of the chain's tree: their root is the verified root."""
    log = create_log(SMALL_CONFIG)
    receipts = [log.append(chat_record(i)) for i in range(40)]
    log.flush()
    assert log.verify().chains["chat"].root == root([r.leaf for r in receipts])


# -- append_many -----------------------------------------------------------------------------


def test_append_many_reports_ranges_per_chain(create_log: MakeLog) -> None:
    """``append_many`` routes records by kind and returns each chain's contiguous index range."""
    log = create_log(SMALL_CONFIG)
    mixed = [chat_record(i) if i % 3 else network_record(i) for i in range(30)]
    result = log.append_many(mixed)
    assert result.count == 30
    assert result.durable
    assert result.ranges == {"chat": [range(0, 20)], "network": [range(0, 10)]}
    again = log.append_many(chat_record(i) for i in range(30, 45))
    assert again.ranges == {"chat": [range(20, 35)]}
    forced = log.append_many(mixed[:4], chain="mixed")
    assert forced.ranges == {"mixed": [range(0, 4)]}
    assert list(log.read("chat")) == [r for r in mixed if r.kind == "chat"] + [
        chat_record(i) for i in range(30, 45)
    ]
    assert list(log.read("network")) == [r for r in mixed if r.kind == "network"]
    assert list(log.read("mixed")) == mixed[:4]


def test_append_many_without_flush_is_not_durable(create_log: MakeLog) -> None:
    """``append_many(flush=False)`` reports not durable and flushed records only count later."""
    log = create_log()
    result = log.append_many((chat_record(i) for i in range(5)), flush=False)
    assert (result.count, result.durable, result.ranges) == (5, False, {"chat": [range(0, 5)]})
    assert log.verify().records == 0
    log.flush()
    assert log.verify().records == 5


def test_append_many_of_nothing(create_log: MakeLog) -> None:
    """``append_many`` of no records appends nothing and creates no chain."""
    log = create_log()
    result = log.append_many([])
    assert (result.count, result.ranges) == (0, {})
    assert log.chains() == []


# -- reading ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def four_segments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """110 chat records: segments of 0-31, 32-63, 64-95 (sealed) and 96-109 (open)."""
    path = tmp_path_factory.mktemp("api") / "log"
    create_log_with(path, {"chat": 110})
    return path


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, 110),
        (28, 70),  # three segments
        (31, 33),  # exactly across one boundary
        (32, 64),  # exactly one segment
        (63, 64),
        (95, 97),  # from a sealed segment into the open one
        (100, None),
        (40, 40),
        (109, 200),
        (110, None),
        (500, None),
    ],
)
def test_read_index_range_across_segments(four_segments: Path, start: int, end: int | None) -> None:
    """``read_indexed(start, end)`` yields exactly indexes [start, end) across segment files."""
    with AuditLog.open(four_segments, mode="read", passphrase=TEST_PASSPHRASE) as log:
        found = list(log.read_indexed("chat", start, end))
    stop = min(110, end if end is not None else 110)
    expected = [(i, chat_record(i)) for i in range(start, max(start, stop))]
    assert found == expected


def test_read_refuses_bad_ranges_and_unknown_chains(four_segments: Path) -> None:
    """Negative or inverted ranges and unknown chains raise ConfigurationError."""
    with AuditLog.open(four_segments, mode="read", passphrase=TEST_PASSPHRASE) as log:
        with pytest.raises(ConfigurationError):
            list(log.read("chat", -1))
        with pytest.raises(ConfigurationError):
            list(log.read("chat", 10, 5))
        with pytest.raises(ConfigurationError):
            list(log.read("nosuchchain"))
        with pytest.raises(ConfigurationError):
            list(log.read("../chat"))


# -- periods, late records and segment rolls -------------------------------------------------


HOUR = 3600
PERIODS = LogConfig(
    period_seconds=HOUR, late_bound_seconds=2 * HOUR, block_max_records=8, dictionary_samples=16
)


def test_late_record_goes_into_current_segment(create_log: MakeLog) -> None:
    """A record of an earlier period within the late bound lands in the current segment."""
    log = create_log(PERIODS)
    on_time = chat_record(0, at=BASE_TIME)
    newer = chat_record(1, at=BASE_TIME + timedelta(hours=2))
    late = chat_record(2, at=BASE_TIME + timedelta(hours=1, minutes=30))
    for record in (on_time, newer):
        log.append(record)
        log.flush()
    receipt = log.append(late)
    log.flush()
    assert receipt.index == 2
    scans = scan_chain(log.path, "chat")
    assert len(scans) == 2  # the period roll made segment 1; the late record did not
    first_period = int(BASE_TIME.timestamp()) // HOUR
    assert [b.header.period for b in scans[1].blocks] == [first_period + 2, first_period + 1]
    assert list(log.read("chat")) == [on_time, newer, late]
    report = log.verify()
    assert report.records == 3
    assert log.stats().chains["chat"].periods == 3


def test_record_beyond_late_bound_is_refused(create_log: MakeLog, open_log: MakeLog) -> None:
    """A record older than the newest by more than the late bound raises LateRecordError."""
    log = create_log(PERIODS)
    newest = BASE_TIME + timedelta(hours=5)
    log.append(chat_record(0, at=newest))
    edge = chat_record(1, at=newest - timedelta(hours=2))
    assert log.append(edge).index == 1  # exactly at the bound is accepted
    too_late = chat_record(2, at=newest - timedelta(hours=2, microseconds=1))
    with pytest.raises(LateRecordError) as caught:
        log.append(too_late)
    assert "user-" not in str(caught.value)
    with pytest.raises(LateRecordError):
        log.append_many([chat_record(3, at=newest), too_late])
    assert log.append(chat_record(4, at=newest)).index == 2
    log.close()
    # The bound holds across reopening: the newest time on disk is remembered.
    log = open_log()
    with pytest.raises(LateRecordError):
        log.append(too_late)
    assert list(log.read("chat")) == [chat_record(0, at=newest), edge, chat_record(4, at=newest)]


def test_segments_roll_at_period_boundaries(create_log: MakeLog) -> None:
    """Each period starts a new segment, and the previous one is sealed."""
    log = create_log(LogConfig(period_seconds=60, block_max_records=8, dictionary_samples=16))
    start = BASE_TIME.replace(second=0)
    for i in range(150):
        log.append(chat_record(i, at=start + timedelta(seconds=i)))
        if i % 7 == 6:
            log.flush()
    log.flush()
    scans = scan_chain(log.path, "chat")
    assert [s.first_index for s in scans] == [0, 60, 120]
    assert [s.seal is not None for s in scans] == [True, True, False]
    assert [len({b.header.period for b in s.blocks}) for s in scans] == [1, 1, 1]
    assert log.verify().records == 150


def test_segments_roll_by_record_count(create_log: MakeLog) -> None:
    """A segment holds at most ``max_segment_records`` records."""
    log = create_log(SMALL_CONFIG)
    log.append_many(chat_record(i) for i in range(100))
    scans = scan_chain(log.path, "chat")
    assert [s.first_index for s in scans] == [0, 32, 64, 96]
    assert [s.record_count for s in scans] == [32, 32, 32, 4]
    assert [s.seal is not None for s in scans] == [True, True, True, False]


def test_segments_roll_by_size(create_log: MakeLog) -> None:
    """A segment grows past ``max_segment_bytes`` only when a single block is that large."""
    config = LogConfig(max_segment_bytes=64 << 10, block_max_records=4, dictionary_samples=16)
    log = create_log(config)
    for i in range(60):
        # Random hex: about 4 KB a record even after compression.
        noise = random.Random(i).randbytes(4000).hex()
        record = chat_record(i).model_copy(update={"content": noise})
        log.append(record)
        if i % 2:
            log.flush()
    log.flush()
    scans = scan_chain(log.path, "chat")
    assert len(scans) > 2
    assert all(s.size <= config.max_segment_bytes for s in scans)
    assert log.verify().records == 60


# -- group commit ----------------------------------------------------------------------------


def test_group_commit_makes_receipts_durable_without_flush(create_log: MakeLog) -> None:
    """With GroupCommit, a background flush makes receipts durable without calling flush."""
    log = create_log(group_commit=GroupCommit(max_records=1000, max_delay=0.01))
    receipts = [log.append(chat_record(i)) for i in range(20)]
    assert all(r.wait_durable(timeout=30) for r in receipts)
    assert log.verify().records == 20


def test_group_commit_flushes_at_max_records(create_log: MakeLog) -> None:
    """A group reaching ``max_records`` is written at once, long before ``max_delay``."""
    log = create_log(group_commit=GroupCommit(max_records=4, max_delay=60))
    receipts = [log.append(chat_record(i)) for i in range(4)]
    assert all(r.durable for r in receipts)
    extra = log.append(chat_record(4))
    assert not extra.durable
    started = time.monotonic()
    log.close()  # flushes the rest without waiting for max_delay
    assert time.monotonic() - started < 10
    assert extra.durable


# -- reopening -------------------------------------------------------------------------------


ORIGIN_CONFIG = SMALL_CONFIG.model_copy(update={"origin": "example.org/reopen-test"})


def test_reopen_continues_indexes_and_tree(create_log: MakeLog, open_log: MakeLog) -> None:
    """After reopening, indexes and the tree continue: the root is the tree of all leaves."""
    log = create_log(ORIGIN_CONFIG)
    first = [log.append(chat_record(i)) for i in range(45)]
    log.close()
    log = open_log()
    second = [log.append(chat_record(i)) for i in range(45, 100)]
    log.close()
    assert [r.index for r in first + second] == list(range(100))
    log = open_log(mode="read")
    in_two_goes = log.verify()
    assert in_two_goes.chains["chat"].records == 100

    # The tree continued where it stopped: its root is that of all 100 leaves in one tree.
    assert in_two_goes.chains["chat"].root == root([r.leaf for r in first + second])


# -- stats -----------------------------------------------------------------------------------


def test_stats_counts_records_segments_bytes_and_periods(four_segments: Path) -> None:
    """``stats`` gives records, segments, sealed segments, bytes and periods, without keys."""
    with AuditLog.open(four_segments, mode="read") as log:
        stats = log.stats()
        assert stats.origin == log.origin
    chat = stats.chains["chat"]
    files = sorted((four_segments / "chains" / "chat" / "segments").glob("*.seg"))
    assert (chat.records, chat.segments, chat.sealed_segments, chat.periods) == (110, 4, 3, 1)
    assert chat.bytes == sum(p.stat().st_size for p in files)
    assert (stats.records, stats.bytes) == (110, chat.bytes)


def test_stats_of_several_chains(create_log: MakeLog) -> None:
    """``stats`` covers every chain and counts only flushed records."""
    log = create_log(SMALL_CONFIG)
    log.append_many(chat_record(i) for i in range(40))
    log.append_many(network_record(i) for i in range(7))
    log.append(network_record(7))  # not flushed
    stats = log.stats()
    assert {c: s.records for c, s in stats.chains.items()} == {"chat": 40, "network": 7}
    assert (stats.chains["chat"].segments, stats.chains["chat"].sealed_segments) == (2, 1)
    assert (stats.chains["network"].segments, stats.chains["network"].sealed_segments) == (1, 0)
    assert stats.records == 47


# -- modes and passphrases -------------------------------------------------------------------


def test_read_mode_refuses_appends(four_segments: Path) -> None:
    """A log opened with mode='read' refuses append and append_many."""
    with AuditLog.open(four_segments, mode="read", passphrase=TEST_PASSPHRASE) as log:
        with pytest.raises(ConfigurationError):
            log.append(chat_record(110))
        with pytest.raises(ConfigurationError):
            log.append_many([chat_record(110)])
        assert log.verify().records == 110


def test_closed_log_refuses_appends(create_log: MakeLog) -> None:
    """A closed log refuses appends."""
    log = create_log()
    log.close()
    with pytest.raises(ConfigurationError):
        log.append(chat_record(0))


def test_wrong_passphrase(four_segments: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong passphrase raises PassphraseError for writing and keyed reading; keyless works."""
    monkeypatch.delenv("AUDITLOG_PASSPHRASE", raising=False)
    with pytest.raises(PassphraseError):
        AuditLog.open(four_segments, passphrase="not the passphrase")
    with AuditLog.open(four_segments, mode="read", passphrase="not the passphrase") as log:
        with pytest.raises(PassphraseError):
            log.verify()
        with pytest.raises(PassphraseError):
            list(log.read("chat"))
        assert log.verify(keyless=True).records == 110
    with pytest.raises(ConfigurationError):
        AuditLog.open(four_segments)  # writing needs a passphrase
    # A failed open must not keep the chain locked.
    with AuditLog.open(four_segments, passphrase=TEST_PASSPHRASE) as log:
        assert log.verify().records == 110


def test_passphrase_from_environment(four_segments: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``passphrase=``, AUDITLOG_PASSPHRASE unlocks the log."""
    monkeypatch.setenv("AUDITLOG_PASSPHRASE", TEST_PASSPHRASE)
    with AuditLog.open(four_segments, mode="read") as log:
        assert log.verify().records == 110


def test_files_are_private(create_log: MakeLog, open_log: MakeLog) -> None:
    """Every file of a log is 0600 (sealed segments 0400) and every directory 0700."""
    log = create_log(SMALL_CONFIG)
    log.append_many(chat_record(i) for i in range(40))
    log.close()
    with open_log() as reopened:
        reopened.append_many(chat_record(i) for i in range(40, 70))
    path = log.path
    sealed = {segment_file(path, "chat", 0), segment_file(path, "chat", 1)}
    for item in [path, *path.rglob("*")]:
        mode = stat.S_IMODE(item.stat().st_mode)
        expected = 0o700 if item.is_dir() else 0o400 if item in sealed else 0o600
        assert mode == expected, f"{item}: {mode:o}"


# -- concurrency -----------------------------------------------------------------------------


def test_appends_from_many_threads(create_log: MakeLog) -> None:
    """Records appended from several threads at once get distinct indexes and all read back."""
    log = create_log(SMALL_CONFIG, group_commit=GroupCommit(max_records=16, max_delay=0.002))
    receipts: dict[int, list[int]] = {}

    def work(number: int) -> None:
        mine = receipts.setdefault(number, [])
        for i in range(60):
            mine.append(log.append(chat_record(number * 1000 + i)).index)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.flush()
    indexes = sorted(i for mine in receipts.values() for i in mine)
    assert indexes == list(range(240))
    assert all(mine == sorted(mine) for mine in receipts.values())
    by_index = dict(log.read_indexed("chat"))
    for number, mine in receipts.items():
        assert [by_index[i] for i in mine] == [chat_record(number * 1000 + i) for i in range(60)]
    assert log.verify().records == 240


def test_reader_verifies_while_writer_writes(create_log: MakeLog, log_path: Path) -> None:
    """A read-mode log verifies cleanly, both ways, while another handle keeps writing."""
    log = create_log(SMALL_CONFIG)
    done = threading.Event()

    def write() -> None:
        # An exception here fails the test: pytest turns unhandled thread errors into errors.
        try:
            for i in range(300):
                log.append(chat_record(i))
                if i % 3 == 2:
                    log.flush()
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    seen: list[int] = []
    with AuditLog.open(log_path, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        while not done.is_set() or len(seen) < 2:
            seen.append(reader.verify(keyless=True).records)
            seen.append(reader.verify().records)
    writer.join()
    assert seen == sorted(seen)
    assert log.verify().records == 300


def test_verify_progress_adds_up_to_total_bytes(four_segments: Path) -> None:
    """``verify`` reports progress summing to ``total_bytes``, which the report's bytes equal."""
    with AuditLog.open(four_segments, mode="read") as log:
        steps: list[int] = []
        report = log.verify(keyless=True, progress=steps.append)
        assert sum(steps) == log.total_bytes() == report.bytes
        assert report.blocks == 14
        assert report.segments == 4


def test_create_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    """``AuditLog.create`` refuses a directory that already holds files."""
    (tmp_path / "something").write_text("x")
    with pytest.raises(ConfigurationError):
        AuditLog.create(tmp_path, passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N)


def test_stats_count_a_chain_whose_newest_segment_has_no_block_yet(
    create_log: MakeLog, open_log: MakeLog
) -> None:
    """A segment file created just before a crash (header only) does not make stats say 0."""
    log = create_log(SMALL_CONFIG)
    for i in range(20):
        log.append(chat_record(i))
    log.close()
    # The file a crash may leave: a new segment with a header and no block.
    tamper.start_empty_segment(log.path, "chat")
    reopened = open_log(mode="read")
    assert reopened.stats().chains["chat"].records == 20
