"""Recovery and repair: torn tails are cut, damage is refused, repair quarantines, locks hold.

Most tests start from a copy of one template log: 110 chat records in three sealed segments of
four 8-record blocks and an open segment (sequence 3) of two blocks, records 96-103 and 104-109.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _integrity_helpers import (
    TEST_PASSPHRASE,
    TEST_SCRYPT_N,
    chat_record,
    create_log_with,
    flip_bit,
    frame_offset,
    network_record,
    scan_file,
    segment_file,
    tree_of_files,
)

import auditlog
from auditlog import AuditLog, IntegrityError, LogLockedError, RecoveryReport, RepairReport

CHAIN = "chat"
RECORDS = 110
OPEN = 3
LIBRARY_ROOT = Path(auditlog.__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recovery") / "template"
    create_log_with(path, {CHAIN: RECORDS})
    return path


@pytest.fixture
def log(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "log"
    shutil.copytree(template, copy)
    return copy


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(LIBRARY_ROOT), str(TESTS)])
    env.pop("AUDITLOG_PASSPHRASE", None)
    return env


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=_child_env(),
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _assert_holds(log: Path, count: int) -> None:
    """The log verifies both ways and its chat chain reads back records 0..count-1 exactly."""
    with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        assert reader.verify(keyless=True).chains[CHAIN].records == count
        assert reader.verify().chains[CHAIN].records == count
        assert list(reader.read(CHAIN)) == [chat_record(i) for i in range(count)]


# -- torn tails ------------------------------------------------------------------------------


def test_torn_tail_is_cut_on_write_open_and_reported(log: Path) -> None:
    """A partial entry at the end of the open segment is cut on write-open and reported."""
    path = segment_file(log, CHAIN, OPEN)
    block = scan_file(path, OPEN, CHAIN).blocks[-1]
    data = path.read_bytes()
    path.write_bytes(data[: block.offset + 100])
    with AuditLog.open(log, mode="read") as reader:
        # Readers change nothing: the torn bytes are only reported by verification.
        assert reader.verify(keyless=True).chains[CHAIN].torn_tail_bytes == 100
    assert path.stat().st_size == block.offset + 100
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as writer:
        assert writer.recovery == [
            RecoveryReport(
                chain=CHAIN,
                segment=OPEN,
                offset=block.offset,
                bytes_cut=100,
                durable_records=block.header.first_index,
            )
        ]
    assert path.read_bytes() == data[: block.offset]
    _assert_holds(log, block.header.first_index)
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as writer:
        assert writer.recovery == []  # the cut is done once


def _seal_open_segment(log: Path) -> None:
    """Append up to the next segment roll so the template's segment 3 gets sealed."""
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as writer:
        writer.append_many(chat_record(i) for i in range(RECORDS, 136))
    assert scan_file(segment_file(log, CHAIN, OPEN), OPEN, CHAIN).seal is not None


@pytest.mark.parametrize(
    "content",
    [b"", b"\x89ALSEG\r\n\x00\x01", bytes(32)],
    ids=["empty-file", "partial-file-header", "zero-filled-file-header"],
)
def test_segment_torn_while_being_created_is_removed(log: Path, content: bytes) -> None:
    """A new segment file whose header never fully reached the disk is removed and reported."""
    _seal_open_segment(log)
    sealed = scan_file(segment_file(log, CHAIN, OPEN), OPEN, CHAIN)
    durable = sealed.end_index
    path = segment_file(log, CHAIN, OPEN + 1)
    assert path.exists()
    os.chmod(path, 0o600)
    path.write_bytes(content)
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as writer:
        assert writer.recovery == [
            RecoveryReport(
                chain=CHAIN,
                segment=OPEN + 1,
                offset=0,
                bytes_cut=len(content),
                durable_records=durable,
            )
        ]
        assert not path.exists()
        receipt = writer.append(chat_record(durable))
        writer.flush()
        assert receipt.index == durable
        assert receipt.durable
    _assert_holds(log, durable + 1)


def test_torn_seal_is_cut_and_the_segment_reopened(log: Path) -> None:
    """A seal torn mid-write is cut; the segment is written on and sealed again at its roll."""
    head_before_the_seal = (log / "head.note").read_bytes()
    checkpoints_before = set((log / "chains" / CHAIN / "checkpoints").iterdir())
    _seal_open_segment(log)
    # Pretend the process died while writing segment 3's seal, before segment 4 existed (and
    # so before the seal's checkpoint and the head that counts it were written).
    (log / "head.note").write_bytes(head_before_the_seal)
    for path in set((log / "chains" / CHAIN / "checkpoints").iterdir()) - checkpoints_before:
        path.unlink()
    segment_file(log, CHAIN, OPEN + 1).unlink()
    path = segment_file(log, CHAIN, OPEN)
    scan = scan_file(path, OPEN, CHAIN)
    seal_at = scan.blocks[-1].offset + scan.blocks[-1].size
    os.chmod(path, 0o600)
    path.write_bytes(path.read_bytes()[: seal_at + 30])
    durable = scan.end_index
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as writer:
        assert writer.recovery == [
            RecoveryReport(
                chain=CHAIN, segment=OPEN, offset=seal_at, bytes_cut=30, durable_records=durable
            )
        ]
        writer.append_many(chat_record(i) for i in range(durable, durable + 10))
    scans = scan_file(path, OPEN, CHAIN), scan_file(segment_file(log, CHAIN, OPEN + 1), 4, CHAIN)
    assert scans[0].seal is not None
    assert scans[0].end_index == durable
    assert scans[1].first_index == durable
    _assert_holds(log, durable + 10)


def test_unsealed_segment_before_the_last_refuses_write_open(log: Path) -> None:
    """Write-open refuses a chain whose second-to-last segment lost its seal."""
    path = segment_file(log, CHAIN, OPEN - 1)
    scan = scan_file(path, OPEN - 1, CHAIN)
    os.chmod(path, 0o600)
    path.write_bytes(path.read_bytes()[: scan.blocks[-1].offset + scan.blocks[-1].size])
    before = tree_of_files(log)
    with pytest.raises(IntegrityError) as caught:
        AuditLog.open(log, passphrase=TEST_PASSPHRASE)
    assert caught.value.location.get("chain") == CHAIN
    assert caught.value.location.get("segment") == OPEN - 1
    assert tree_of_files(log) == before


# -- damage in the open segment: refused on open or by verify, repaired by repair() -----------


@pytest.mark.parametrize("ordinal", [1, 0], ids=["last-block", "first-of-two-blocks"])
def test_damaged_open_segment_refused_then_repaired(log: Path, ordinal: int) -> None:
    """A complete block with a bad hash in the open segment stops write-open if it is the last
    block (the one open hashes in full); in an earlier block, whose frames open does not read,
    verify finds it; repair cuts it either way."""
    path = segment_file(log, CHAIN, OPEN)
    block = scan_file(path, OPEN, CHAIN).blocks[ordinal]
    data = path.read_bytes()
    flip_bit(path, frame_offset(block, 1) + 2)
    damaged = path.read_bytes()

    def refused() -> None:
        if ordinal == 0:
            AuditLog.open(log, passphrase=TEST_PASSPHRASE).close()
            assert path.read_bytes() == damaged  # open wrote nothing into the segment
            with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
                reader.verify(keyless=True)
        else:
            AuditLog.open(log, passphrase=TEST_PASSPHRASE)

    with pytest.raises(IntegrityError) as caught:
        refused()
    location = caught.value.location
    assert (location["chain"], location["segment"], location["block"], location["offset"]) == (
        CHAIN,
        OPEN,
        ordinal,
        block.offset,
    )
    # The failed open released its lock: repair (and then a writer) can take it.
    reports = AuditLog.repair(log, passphrase=TEST_PASSPHRASE)
    assert len(reports) == 1
    report = reports[0]
    assert report == RepairReport(
        chain=CHAIN,
        segment=OPEN,
        offset=block.offset,
        bytes_cut=len(data) - block.offset,
        first_lost_index=block.header.first_index,
        quarantine=report.quarantine,
    )
    assert report.quarantine.parent == log / "chains" / CHAIN / "quarantine"
    assert report.quarantine.read_bytes() == damaged[block.offset :]
    assert stat.S_IMODE(report.quarantine.stat().st_mode) == 0o600
    assert stat.S_IMODE(report.quarantine.parent.stat().st_mode) == 0o700
    assert segment_file(log, CHAIN, OPEN).read_bytes()[: block.offset] == data[: block.offset]
    kept = block.header.first_index
    # Repair may have logged its work at the current time: append after it.
    later = chat_record(10_000, at=datetime.now(UTC) + timedelta(seconds=1))
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as writer:
        assert writer.recovery == []
        receipt = writer.append(later)
        writer.flush()
    with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        size = reader.verify().chains[CHAIN].records
        assert reader.verify(keyless=True).chains[CHAIN].records == size
        records = list(reader.read(CHAIN))
    # Repair may log its own work as a record; every record before the cut is kept as it was.
    assert records[:kept] == [chat_record(i) for i in range(kept)]
    assert receipt.index == size - 1
    assert records[-1] == later


@pytest.mark.parametrize("sequence", [OPEN - 1, 0], ids=["last-sealed", "oldest-sealed"])
def test_repair_refuses_damage_in_sealed_segment(log: Path, sequence: int) -> None:
    """Repair refuses damage in a sealed segment and leaves every file as it was."""
    path = segment_file(log, CHAIN, sequence)
    block = scan_file(path, sequence, CHAIN).blocks[2]
    flip_bit(path, frame_offset(block, 0))
    os.chmod(path, 0o400)
    before = tree_of_files(log)
    with pytest.raises(IntegrityError) as caught:
        AuditLog.repair(log, passphrase=TEST_PASSPHRASE)
    assert caught.value.location.get("segment") == sequence
    assert tree_of_files(log) == before
    assert not (log / "chains" / CHAIN / "quarantine").exists()


def test_repair_of_intact_log_does_nothing(log: Path) -> None:
    """Repairing an intact log reports nothing and changes no file."""
    before = tree_of_files(log)
    assert AuditLog.repair(log, passphrase=TEST_PASSPHRASE) == []
    assert tree_of_files(log) == before


def test_repair_does_not_cut_a_chain_held_by_a_writer(log: Path) -> None:
    """Repair refuses (LogLockedError) to touch a chain that a live writer holds."""
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as writer:
        path = segment_file(log, CHAIN, OPEN)
        block = scan_file(path, OPEN, CHAIN).blocks[0]
        flip_bit(path, frame_offset(block, 0))
        before = tree_of_files(log)
        with pytest.raises(LogLockedError):
            AuditLog.repair(log, passphrase=TEST_PASSPHRASE)
        after = tree_of_files(log)
        writer.append(chat_record(RECORDS))
    assert after == before


# -- one writer per chain --------------------------------------------------------------------


def test_second_writer_in_same_process_is_locked_out(log: Path) -> None:
    """A second write-open of a chain in the same process raises LogLockedError until close."""
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as first:
        with pytest.raises(LogLockedError):
            AuditLog.open(log, passphrase=TEST_PASSPHRASE)
        with pytest.raises(LogLockedError):
            AuditLog.open(log, passphrase=TEST_PASSPHRASE, chains=[CHAIN])
        # Readers take no lock.
        with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
            assert reader.verify().records == RECORDS
        first.append(chat_record(RECORDS))
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as second:
        second.append(chat_record(RECORDS + 1))
    _assert_holds(log, RECORDS + 2)


def test_second_writer_in_another_process_is_locked_out(log: Path, tmp_path: Path) -> None:
    """A writer in another process gets LogLockedError while this process holds the chain."""
    code = f"""
        from auditlog import AuditLog, LogLockedError
        try:
            AuditLog.open({str(log)!r}, passphrase={TEST_PASSPHRASE!r})
        except LogLockedError:
            print("locked")
        else:
            print("opened")
    """
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE):
        result = _run_python(code, tmp_path)
    assert result.stdout.strip() == "locked", result.stderr
    result = _run_python(code, tmp_path)
    assert result.stdout.strip() == "opened", result.stderr


def test_two_processes_write_two_chains_of_one_log(tmp_path: Path) -> None:
    """Two processes, each holding one chain of the same log, both write and the log verifies."""
    log = tmp_path / "log"
    AuditLog.create(log, passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N).close()
    code = f"""
        from _integrity_helpers import network_record
        from auditlog import AuditLog
        with AuditLog.open({str(log)!r}, passphrase={TEST_PASSPHRASE!r}, chains=["b"]) as log:
            for i in range(40):
                log.append(network_record(i), chain="b")
                if i % 10 == 9:
                    log.flush()
        print("done")
    """
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE, chains=["a"]) as writer:
        writer.append_many((chat_record(i) for i in range(5)), chain="a")
        with subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(),
            cwd=tmp_path,
        ) as child:
            # Both processes write at the same time, each under its own chain's lock.
            for i in range(5, 40):
                writer.append(chat_record(i), chain="a")
                if i % 5 == 4:
                    writer.flush()
            stdout, stderr = child.communicate(timeout=120)
        with pytest.raises(auditlog.ConfigurationError):
            writer.append(network_record(0), chain="b")
    assert (child.returncode, stdout.strip()) == (0, "done"), stderr
    with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        report = reader.verify()
        assert {chain: r.records for chain, r in report.chains.items()} == {"a": 40, "b": 40}
        assert list(reader.read("a")) == [chat_record(i) for i in range(40)]
        assert list(reader.read("b")) == [network_record(i) for i in range(40)]
