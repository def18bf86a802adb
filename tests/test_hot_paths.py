"""The write path of issue 12: queued single appends, leader group commit, many chains per
flush, and dictionary training off the flush path. Behaviour only: speed is benchmarks' job."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from _integrity_helpers import (
    BASE_TIME,
    HEADER_FIELDS,
    SMALL_CONFIG,
    TEST_PASSPHRASE,
    chat_record,
    network_record,
    scan_file,
    segment_file,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlog import (
    AuditLog,
    AuditLogError,
    IntegrityError,
    LateRecordError,
    LogConfig,
    Receipt,
    Record,
)
from auditlog.merkle import root
from auditlog.segment.format import ENTRY_PREFIX
from auditlog.testing import settle

MakeLog = Callable[..., AuditLog]


def _record(index: int) -> Record:
    return chat_record(index) if index % 3 else network_record(index)


@settings(max_examples=15, deadline=None)
@given(plan=st.lists(st.tuples(st.booleans(), st.integers(1, 12)), min_size=1, max_size=12))
def test_single_appends_and_batches_interleave_in_index_order(
    tmp_path_factory: pytest.TempPathFactory, plan: list[tuple[bool, int]]
) -> None:
    """Whatever mix of queued single appends and batches a thread makes, every record gets the
    next index of its chain, its receipt's leaf is the leaf in the chain's tree, and reading the
    chain back gives each record at its receipt's index."""
    path = tmp_path_factory.mktemp("mix") / "log"
    with AuditLog.create(path, passphrase=TEST_PASSPHRASE, config=SMALL_CONFIG) as log:
        written: dict[str, list[tuple[int, bytes, Record]]] = {}
        counter = 0
        for single, count in plan:
            records = [_record(counter + i) for i in range(count)]
            counter += count
            if single:
                for record in records:
                    receipt = log.append(record)
                    written.setdefault(receipt.chain, []).append(
                        (receipt.index, receipt.leaf, record)
                    )
            else:
                result = log.append_many(records, flush=False)
                by_chain: dict[str, list[Record]] = {}
                for record in records:
                    by_chain.setdefault(str(record.kind), []).append(record)
                for chain, ranges in result.ranges.items():
                    indexes = [i for r in ranges for i in r]
                    for index, record in zip(indexes, by_chain[chain], strict=True):
                        written.setdefault(chain, []).append((index, b"", record))
        log.flush()
        report = log.verify()
        for chain, items in written.items():
            assert [index for index, _, _ in items] == list(range(len(items)))
            assert list(log.read(chain)) == [record for _, _, record in items]
            leaves = [leaf for _, leaf, _ in items]
            if all(leaves):
                assert report.chains[chain].root == root(leaves)


def test_appends_from_many_threads_lose_nothing_and_keep_each_threads_order(
    create_log: MakeLog,
) -> None:
    """Eight threads appending at once: indexes are unique and contiguous, each thread's
    records keep their order, and every receipt's record is read back at its index."""
    log = create_log(LogConfig(block_max_records=64))
    receipts: list[list[tuple[Receipt, Record]]] = [[] for _ in range(8)]

    def produce(n: int) -> None:
        for i in range(300):
            record = chat_record(n * 1000 + i, at=BASE_TIME + timedelta(seconds=i))
            receipts[n].append((log.append(record), record))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [item for part in receipts for item in part]
    assert sorted(r.index for r, _ in everything) == list(range(2400))
    for part in receipts:
        indexes = [r.index for r, _ in part]
        assert indexes == sorted(indexes)
    assert max(everything, key=lambda item: item[0].index)[0].wait_durable(timeout=30)
    back = list(log.read("chat"))
    for receipt, record in everything:
        assert back[receipt.index] == record
    ordered = sorted(everything, key=lambda item: item[0].index)
    assert log.verify().chains["chat"].root == root([r.leaf for r, _ in ordered])


def test_a_late_single_append_is_refused_at_once_and_takes_no_index(create_log: MakeLog) -> None:
    """A record too old for its chain is refused by ``append`` itself (not later, when the
    queue is drained), and the next record gets the index it would have had."""
    log = create_log(LogConfig(late_bound_seconds=60))
    first = log.append(chat_record(0, at=BASE_TIME + timedelta(hours=1)))
    with pytest.raises(LateRecordError):
        log.append(chat_record(1, at=BASE_TIME))
    second = log.append(chat_record(2, at=BASE_TIME + timedelta(hours=1)))
    assert (first.index, second.index) == (0, 1)
    log.flush()
    assert len(list(log.read("chat"))) == 2


def test_one_flush_makes_every_chain_durable_and_survives_reopening(
    create_log: MakeLog, open_log: MakeLog
) -> None:
    """``append_many`` over many chains with ``flush=True`` returns with its chains' records
    durable, ``flush`` with every chain's (their syncs run at once); reopened, the log holds
    and verifies them all."""
    log = create_log()
    records = [_record(i) for i in range(120)]
    receipts = [log.append(r, chain=f"c{i % 5}") for i, r in enumerate(records[:20])]
    result = log.append_many(records[20:], flush=True)
    assert result.durable
    assert set(result.ranges) == {"chat", "network"}
    assert not any(r.durable for r in receipts)  # chains c0-c4 were not part of it
    log.flush()  # the seven chains at once
    assert all(r.durable for r in receipts)
    log.close()
    again = open_log()
    assert again.stats().records == 120
    assert again.verify().records == 120


def test_wait_durable_raises_when_the_chain_failed(create_log: MakeLog) -> None:
    """A receipt whose chain stopped writing (its segment file was closed under it) does not
    wait for ever: ``wait_durable`` raises, saying to reopen the log."""
    log = create_log()
    log.append(chat_record(0))
    log.flush()
    receipt = log.append(chat_record(1))
    writer = log._chains.writer("chat")
    segment = writer._sink.segment
    assert segment is not None
    os.close(segment.fd)  # the next write fails with EBADF
    with pytest.raises(OSError, match="Bad file descriptor"):
        receipt.wait_durable(timeout=5)
    with pytest.raises(AuditLogError, match="open it again"):
        receipt.wait_durable(timeout=5)
    with pytest.raises(AuditLogError, match="open it again"):
        log.append(chat_record(2))
    segment.fd = os.open(os.devnull, os.O_WRONLY)  # so that close() has a descriptor to close


def test_dictionary_is_trained_off_the_flush_and_used_once_stored(
    create_log: MakeLog, open_log: MakeLog, log_path: Path
) -> None:
    """Once a period has its samples, its dictionary is trained in the background: the blocks
    flushed meanwhile use none, the blocks after it is stored use it, and everything reads back
    and verifies after reopening."""
    config = LogConfig(block_max_records=16, dictionary_samples=32)
    log = create_log(config)
    records = [chat_record(i) for i in range(400)]
    log.append_many(records[:64], flush=True)
    dicts = log_path / "chains" / "chat" / "dicts"
    deadline = time.monotonic() + 30
    while not any(dicts.glob("*.zdict")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any(dicts.glob("*.zdict"))
    log.append_many(records[64:], flush=True)
    log.close()
    again = open_log()
    assert list(again.read("chat")) == records
    report = again.verify()
    assert report.records == 400
    ids = _dictionary_ids(again, "chat")
    assert ids[0] == 0  # the first blocks went out before the dictionary was ready
    assert ids[-1] != 0


def _dictionary_ids(log: AuditLog, chain: str) -> list[int]:
    reader = log._chains.reader(chain)
    return [block.header.dictionary_id for scan in reader.scans() for block in scan.blocks]


def test_tiles_cut_back_before_the_open_segment_are_rebuilt_without_holes(
    create_log: MakeLog, open_log: MakeLog, log_path: Path
) -> None:
    """Tiles that lack leaves from before the open segment (a writer killed after a seal and
    before its tiles, or a cut) are rebuilt at write-open: no leaf is left a hole of zeros,
    and verification passes."""
    log = create_log(SMALL_CONFIG)
    log.append_many([chat_record(i) for i in range(40)])  # segment 0 sealed at 32, 1 open
    log.close()
    level0 = log_path / "chains" / "chat" / "tiles" / "level-00"
    os.truncate(level0, 30 * 32)
    again = open_log()
    again.append_many([chat_record(i) for i in range(40, 45)])
    again.flush()
    again.verify()
    tiles = level0.read_bytes()
    assert len(tiles) == 45 * 32
    assert bytes(32) not in [tiles[i : i + 32] for i in range(0, len(tiles), 32)]


def _flip(path: Path, position: int) -> None:
    os.chmod(path, 0o600)
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("target", ["own frame", "other frame", "dictionary id"])
def test_a_read_of_one_record_is_authenticated_on_its_own(
    create_log: MakeLog, open_log: MakeLog, log_path: Path, target: str
) -> None:
    """Reading a few records of a block skips the block's hash, not the records' checks: a
    changed frame of the record read, or a changed dictionary id in the block's header, is
    an IntegrityError, never another record; a changed frame of another record does not stop
    the read (the whole block's check is verification's, which reports it)."""
    log = create_log(LogConfig(block_max_records=64, dictionary_samples=16))
    records = [chat_record(i) for i in range(64)]
    log.append_many(records[:16])
    settle(log)  # the next block is compressed with the period's dictionary
    log.append_many(records[16:])
    log.close()
    path = segment_file(log_path, "chat", 0)
    block = scan_file(path, 0, "chat").blocks[-1]
    assert block.header.count == 48
    assert block.header.dictionary_id != 0
    body = block.offset + ENTRY_PREFIX.size
    if target == "dictionary id":
        _flip(path, body + HEADER_FIELDS["dictionary_id"][0] + 3)
    else:
        position = 10 if target == "own frame" else 30
        _flip(path, body + block.frame_starts[position] + 5)
    reader = open_log(mode="read")
    if target == "other frame":
        assert list(reader.read("chat", 26, 27)) == [records[26]]
    else:
        with pytest.raises(IntegrityError):
            list(reader.read("chat", 26, 27))
    with pytest.raises(IntegrityError):
        reader.verify()


def test_a_bulk_append_compresses_its_first_block_with_the_dictionary(
    create_log: MakeLog,
) -> None:
    """Training starts as soon as a period has its samples, and a large block waits for it:
    a bulk ``append_many`` into a fresh log writes every block with the period's dictionary,
    keeping the bytes a record of inline training."""
    log = create_log(LogConfig(block_max_records=64, dictionary_samples=16))
    log.append_many([chat_record(i) for i in range(256)])
    ids = _dictionary_ids(log, "chat")
    assert len(ids) == 4
    assert 0 not in ids


def test_a_bulk_append_over_many_periods_compresses_every_periods_blocks(
    create_log: MakeLog,
) -> None:
    """One ``append_many`` over several periods: each period's large block waits for (or
    makes) that period's dictionary, though only one training runs in the background at a
    time; each period stores exactly one dictionary."""
    log = create_log(LogConfig(period_seconds=60, block_max_records=64, dictionary_samples=16))
    records = [
        chat_record(p * 64 + i, at=BASE_TIME + timedelta(seconds=60 * p + i / 2))
        for p in range(4)
        for i in range(64)
    ]
    log.append_many(records)
    assert _dictionary_ids(log, "chat").count(0) == 0
    assert len(set(_dictionary_ids(log, "chat"))) == 4
    log.close()
    dicts = log.path / "chains" / "chat" / "dicts"
    assert len(list(dicts.glob("*.zdict"))) == 4
