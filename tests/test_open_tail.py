"""Attacks on the shortcuts of write-open and read by index (issue 12, parts 3 and 4).

Write-open takes the open segment's tree from the tiles when their root is the last block's
(and a signed checkpoint's), reads the seal before it from its tail, and hashes only the last
block in full; readers find blocks through the seals' block indexes. Someone who can write the
files but holds no key edits each of these; the process must never return a wrong record nor
sign a root the segments do not produce.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from _integrity_helpers import (
    HEADER_FIELDS,
    TEST_PASSPHRASE,
    block_bytes,
    chat_record,
    create_log_with,
    rehash_block,
    scan_chain,
    scan_file,
    segment_file,
)

from auditlog import AuditLog, IntegrityError, note
from auditlog.merkle import root
from auditlog.segment.check import ChainCheck
from auditlog.segment.format import ENTRY_PREFIX, Seal
from auditlog.segment.tiles import TileStore

CHAIN = "chat"
RECORDS = 110  # SMALL_CONFIG: segments 0-2 sealed (32 records each), segment 3 open (14)
OPEN = 3


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("open-tail") / "template"
    create_log_with(path, {CHAIN: RECORDS})
    return path


@pytest.fixture
def log(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "log"
    shutil.copytree(template, copy)
    return copy


def _tiles(log: Path) -> TileStore:
    return TileStore(log / "chains" / CHAIN / "tiles")


def _checkpoints(log: Path) -> list[str]:
    return sorted(os.listdir(log / "chains" / CHAIN / "checkpoints"))


def _segments_root(log: Path) -> bytes:
    """The root the segments' leaves produce, recomputed from every block."""
    with AuditLog.open(log, mode="read") as reader:
        origin = reader.chain_origin(CHAIN)
    check = ChainCheck.start(CHAIN, origin)
    for scan in scan_chain(log, CHAIN):
        check.feed(scan)
    return check.root()


def _write(path: Path, data: bytes) -> None:
    os.chmod(path, 0o600)
    path.write_bytes(data)


def test_damaged_tiles_are_bypassed_and_the_tree_is_the_segments(log: Path) -> None:
    """A changed leaf tile in the open segment's range makes open re-hash the segment: the
    checkpoint it then signs is the root the segments produce."""
    leaves = _tiles(log).path(0)
    data = bytearray(leaves.read_bytes())
    data[100 * 32] ^= 1
    leaves.write_bytes(bytes(data))
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as writer:
        notes = writer.proofs.sign_checkpoints(CHAIN)
    signed = note.Checkpoint.from_text(notes[CHAIN].split("\n\n", 1)[0] + "\n")
    assert (signed.size, signed.root_hash) == (RECORDS, _segments_root(log))


def test_forged_tiles_and_last_header_are_accepted_by_open_but_never_signed(log: Path) -> None:
    """Tiles and the last block's header forged together (no key needed) reproduce each
    other's root, so open takes that tree; before signing anything the writer re-hashes the
    segment, finds the segments give another tree, and signs nothing."""
    tiles = _tiles(log)
    leaves = bytearray(tiles.path(0).read_bytes())
    leaves[97 * 32] ^= 1  # a leaf of the open segment's first block
    tiles.path(0).write_bytes(bytes(leaves))
    forged_root = root([bytes(leaves[i : i + 32]) for i in range(0, len(leaves), 32)])
    path = segment_file(log, CHAIN, OPEN)
    last = scan_file(path, OPEN, CHAIN).blocks[-1]
    data = path.read_bytes()
    entry = bytearray(block_bytes(data, last))
    start, size = HEADER_FIELDS["tree_root"]
    entry[ENTRY_PREFIX.size + start : ENTRY_PREFIX.size + start + size] = forged_root
    _write(path, data[: last.offset] + rehash_block(entry))
    signed_before = _checkpoints(log)
    with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as writer:
        writer.append(chat_record(RECORDS), chain=CHAIN)
        writer.flush()
        with pytest.raises(IntegrityError) as caught:
            writer.proofs.sign_checkpoints(CHAIN)
        assert caught.value.location["chain"] == CHAIN
    assert _checkpoints(log) == signed_before
    with (
        AuditLog.open(log, mode="read") as reader,
        pytest.raises(IntegrityError),
    ):
        reader.verify(keyless=True)


def test_a_rehashed_middle_block_of_the_open_segment_stops_open(log: Path) -> None:
    """A forger who changes a leaf of a block before the last and recomputes its hash breaks
    the next block's link to it, which open checks from the entry heads."""
    path = segment_file(log, CHAIN, OPEN)
    first = scan_file(path, OPEN, CHAIN).blocks[0]
    data = path.read_bytes()
    entry = bytearray(block_bytes(data, first))
    entry[ENTRY_PREFIX.size + 128] ^= 1  # its first leaf
    forged = rehash_block(entry)
    _write(path, data[: first.offset] + forged + data[first.offset + first.size :])
    before = path.read_bytes()
    with pytest.raises(IntegrityError, match="hash chain is broken") as caught:
        AuditLog.open(log, passphrase=TEST_PASSPHRASE)
    assert caught.value.location["block"] == 1
    assert path.read_bytes() == before


def test_a_forged_seal_frontier_before_the_open_segment_stops_open(log: Path) -> None:
    """The seal before the open segment, its frontier changed and its hash recomputed, no
    longer gives the root of the checkpoint signed when it was written: open refuses."""
    path = segment_file(log, CHAIN, OPEN - 1)
    scan = scan_file(path, OPEN - 1, CHAIN)
    assert scan.seal is not None
    forged = dataclasses.replace(scan.seal, frontier=(bytes(32),) * len(scan.seal.frontier)).pack()
    data = path.read_bytes()
    _write(path, data[: len(data) - len(forged)] + forged)
    with pytest.raises(IntegrityError, match="signed checkpoint") as caught:
        AuditLog.open(log, passphrase=TEST_PASSPHRASE)
    assert caught.value.location == {"chain": CHAIN, "checkpoint": scan.seal.end_index}


def test_a_forged_seal_block_index_never_yields_a_wrong_record(log: Path) -> None:
    """A seal whose block index says a block starts one record later than it does (hash
    recomputed) makes the read of that range fail, never return another record; the other
    records still read."""
    path = segment_file(log, CHAIN, 1)
    scan = scan_file(path, 1, CHAIN)
    assert scan.seal is not None
    items = list(scan.seal.block_index)
    moved = items[1][0] + 1
    items[1] = (moved, items[1][1])
    forged = dataclasses.replace(scan.seal, block_index=tuple(items)).pack()
    data = path.read_bytes()
    _write(path, data[: len(data) - len(forged)] + forged)
    with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        with pytest.raises(IntegrityError):
            list(reader.read(CHAIN, moved - 1, moved + 1))
        assert list(reader.read(CHAIN, 0, 32)) == [chat_record(i) for i in range(32)]
        assert list(reader.read(CHAIN, 64, RECORDS)) == [chat_record(i) for i in range(64, RECORDS)]


def test_a_seal_that_does_not_parse_is_bypassed_by_the_reader(log: Path) -> None:
    """A sealed segment whose seal is damaged is read along its entries instead: the records
    read as before (verify reports the seal)."""
    path = segment_file(log, CHAIN, 1)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # the seal's hash
    _write(path, bytes(data))
    with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        assert list(reader.read(CHAIN, 30, 70)) == [chat_record(i) for i in range(30, 70)]


def test_a_handle_reads_what_was_appended_and_sealed_since_its_last_read(log: Path) -> None:
    """One read handle keeps what it learned of the segments; records appended (and segments
    sealed and started) after its first read are found by its next reads."""
    with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        assert list(reader.read(CHAIN, RECORDS - 1, RECORDS)) == [chat_record(RECORDS - 1)]
        more = 40  # fills the open segment, seals it and starts another
        with AuditLog.open(log, passphrase=TEST_PASSPHRASE) as writer:
            writer.append_many([chat_record(RECORDS + i) for i in range(more)], chain=CHAIN)
        assert list(reader.read(CHAIN, RECORDS - 2, RECORDS + more)) == [
            chat_record(i) for i in range(RECORDS - 2, RECORDS + more)
        ]


def test_a_replaced_segment_file_is_learned_again(log: Path) -> None:
    """A sealed segment replaced by another file (as a redaction replaces it) is not read
    through what the handle learned of the old one."""
    path = segment_file(log, CHAIN, 1)
    with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        assert list(reader.read(CHAIN, 40, 41)) == [chat_record(40)]
        data = path.read_bytes()
        replacement = path.with_suffix(".new")
        replacement.write_bytes(data)
        os.chmod(path, 0o600)
        os.replace(replacement, path)  # a new inode, same bytes
        assert list(reader.read(CHAIN, 33, 64)) == [chat_record(i) for i in range(33, 64)]


def test_seal_pack_round_trip_holds_the_block_index() -> None:
    """The seal the reader reads from a file's tail packs and unpacks to itself."""
    seal = Seal(2, 10, 20, 5, bytes(32), bytes(32), (bytes(32),), (3,), ((10, 32), (15, 900)))
    packed = seal.pack()
    assert Seal.unpack(memoryview(packed)[ENTRY_PREFIX.size :]) == seal
