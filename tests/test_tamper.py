"""The tamper matrix: every kind of change to a closed log's files is caught, with and without keys.

Each case copies one template log (two chains of 110 records; per chain three sealed segments of
four 8-record blocks, then an open segment of two blocks), changes its files the way an attacker
or a broken disk would, and checks that both keyless and keyed verification raise
``IntegrityError`` naming the chain and segment (and block, offset, index where they are known).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from _integrity_helpers import (
    HEADER_FIELDS,
    TEST_PASSPHRASE,
    block_bytes,
    create_log_with,
    flip_bit,
    frame_offset,
    leaf_offset,
    read_segment,
    rehash_block,
    scan_file,
    segment_file,
    tree_of_files,
    write_segment,
)

from auditlog import AuditLog, IntegrityError
from auditlog.segment.format import file_header
from auditlog.segment.scan import SegmentScan

CHAIN = "chat"
OTHER = "network"
RECORDS = 110  # per chain: segments 0-2 sealed (32 records each), segment 3 open (8 + 6)
LAST_SEQUENCE = 3

Location = dict[str, object]
Tamper = Callable[[Path], Location]
TAMPERS: dict[str, Tamper] = {}


def tamper(name: str) -> Callable[[Tamper], Tamper]:
    def register(function: Tamper) -> Tamper:
        TAMPERS[name] = function
        return function

    return register


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tamper") / "template"
    create_log_with(path, {CHAIN: RECORDS, OTHER: RECORDS})
    return path


@pytest.fixture
def log(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Keyless verification must not depend on a passphrase lying around in the environment.
    monkeypatch.delenv("AUDITLOG_PASSPHRASE", raising=False)
    copy = tmp_path / "log"
    shutil.copytree(template, copy)
    return copy


def _scan(log: Path, sequence: int, chain: str = CHAIN) -> SegmentScan:
    return scan_file(segment_file(log, chain, sequence), sequence, chain)


def _at_block(sequence: int, ordinal: int, offset: int, index: int | None = None) -> Location:
    where: Location = {"chain": CHAIN, "segment": sequence, "block": ordinal, "offset": offset}
    if index is not None:
        where["index"] = index
    return where


def _at_segment(sequence: int, **more: object) -> Location:
    return {"chain": CHAIN, "segment": sequence, **more}


def _seal_offset(scan: SegmentScan) -> int:
    last = scan.blocks[-1]
    return last.offset + last.size


def _swap_files(first: Path, second: Path) -> None:
    spare = first.with_suffix(".swap")
    first.rename(spare)
    second.rename(first)
    spare.rename(second)


def _renumber(log: Path, old: int, new: int) -> None:
    """Move segment ``old`` to ``new`` and make its file header agree, as a careful forger would."""
    data = read_segment(log, CHAIN, old)
    first_index = _scan(log, old).first_index
    segment_file(log, CHAIN, old).unlink()
    write_segment(log, CHAIN, new, file_header(new, first_index) + data[len(file_header(0, 0)) :])


# -- bit flips inside complete entries: each body's own hash catches them --------------------


@tamper("frame-bit-sealed")
def _frame_bit_sealed(log: Path) -> Location:
    block = _scan(log, 1).blocks[2]
    frame = frame_offset(block, 3) + len(block.frames[3]) // 2
    flip_bit(segment_file(log, CHAIN, 1), frame, 5)
    return _at_block(1, 2, block.offset, block.header.first_index)


@tamper("frame-bit-first-record")
def _frame_bit_first_record(log: Path) -> Location:
    block = _scan(log, 0).blocks[0]
    flip_bit(segment_file(log, CHAIN, 0), frame_offset(block, 0))
    return _at_block(0, 0, block.offset, 0)


@tamper("leaf-bit-sealed")
def _leaf_bit_sealed(log: Path) -> Location:
    block = _scan(log, 1).blocks[1]
    flip_bit(segment_file(log, CHAIN, 1), leaf_offset(block, 5) + 7, 2)
    return _at_block(1, 1, block.offset, block.header.first_index)


def _header_tamper(field: str) -> Tamper:
    def change(log: Path) -> Location:
        block = _scan(log, 2).blocks[3]
        start, size = HEADER_FIELDS[field]
        # The lowest bit of the field's last byte: the smallest change a number can get.
        flip_bit(segment_file(log, CHAIN, 2), block.offset + 8 + start + size - 1, 0)
        # A damaged first_index or type cannot vouch for the block's index: only place it.
        known = field not in ("type", "first_index")
        return _at_block(2, 3, block.offset, block.header.first_index if known else None)

    return change


for _field in HEADER_FIELDS:
    tamper(f"header-{_field}")(_header_tamper(_field))


@tamper("entry-length-bit")
def _entry_length_bit(log: Path) -> Location:
    block = _scan(log, 1).blocks[2]
    flip_bit(segment_file(log, CHAIN, 1), block.offset + 2, 3)
    return _at_block(1, 2, block.offset)


@tamper("entry-crc-bit")
def _entry_crc_bit(log: Path) -> Location:
    block = _scan(log, 1).blocks[2]
    flip_bit(segment_file(log, CHAIN, 1), block.offset + 6, 1)
    return _at_block(1, 2, block.offset)


# -- the open segment's last block: no seal and no next block vouch for it --------------------


@tamper("open-last-block-frame-bit")
def _open_last_block_frame_bit(log: Path) -> Location:
    block = _scan(log, LAST_SEQUENCE).blocks[-1]
    last = block.header.count - 1
    flip_bit(segment_file(log, CHAIN, LAST_SEQUENCE), frame_offset(block, last) + 3, 4)
    return _at_block(LAST_SEQUENCE, 1, block.offset, block.header.first_index)


@tamper("open-last-block-leaf-bit")
def _open_last_block_leaf_bit(log: Path) -> Location:
    block = _scan(log, LAST_SEQUENCE).blocks[-1]
    flip_bit(segment_file(log, CHAIN, LAST_SEQUENCE), leaf_offset(block, 0), 7)
    return _at_block(LAST_SEQUENCE, 1, block.offset, block.header.first_index)


@tamper("open-last-block-header-tree_root")
def _open_last_block_header(log: Path) -> Location:
    block = _scan(log, LAST_SEQUENCE).blocks[-1]
    start, _ = HEADER_FIELDS["tree_root"]
    flip_bit(segment_file(log, CHAIN, LAST_SEQUENCE), block.offset + 8 + start, 0)
    return _at_block(LAST_SEQUENCE, 1, block.offset, block.header.first_index)


@tamper("open-last-block-length-bit")
def _open_last_block_length(log: Path) -> Location:
    block = _scan(log, LAST_SEQUENCE).blocks[-1]
    flip_bit(segment_file(log, CHAIN, LAST_SEQUENCE), block.offset + 3, 6)
    return _at_block(LAST_SEQUENCE, 1, block.offset)


# -- whole blocks removed, repeated or moved --------------------------------------------------


def _edit_blocks(log: Path, sequence: int, edit: Callable[[list[bytes]], list[bytes]]) -> None:
    """Rewrite a segment with its block entries changed by ``edit`` (the seal kept as it was)."""
    scan = _scan(log, sequence)
    data = read_segment(log, CHAIN, sequence)
    entries = [block_bytes(data, block) for block in scan.blocks]
    head = data[: scan.blocks[0].offset]
    tail = data[_seal_offset(scan) :]
    write_segment(log, CHAIN, sequence, head + b"".join(edit(entries)) + tail)


@tamper("block-deleted-sealed")
def _block_deleted_sealed(log: Path) -> Location:
    scan = _scan(log, 1)
    _edit_blocks(log, 1, lambda blocks: blocks[:1] + blocks[2:])
    return _at_block(1, 1, scan.blocks[1].offset)


@tamper("block-deleted-first-of-segment")
def _block_deleted_first(log: Path) -> Location:
    scan = _scan(log, 1)
    _edit_blocks(log, 1, lambda blocks: blocks[1:])
    return _at_block(1, 0, scan.blocks[0].offset)


@tamper("block-deleted-open-segment")
def _block_deleted_open(log: Path) -> Location:
    scan = _scan(log, LAST_SEQUENCE)
    _edit_blocks(log, LAST_SEQUENCE, lambda blocks: blocks[1:])
    return _at_block(LAST_SEQUENCE, 0, scan.blocks[0].offset)


@tamper("block-duplicated-sealed")
def _block_duplicated_sealed(log: Path) -> Location:
    scan = _scan(log, 1)
    _edit_blocks(log, 1, lambda blocks: blocks[:2] + blocks[1:])
    return _at_block(1, 2, scan.blocks[2].offset)


@tamper("block-duplicated-at-open-tail")
def _block_duplicated_open(log: Path) -> Location:
    scan = _scan(log, LAST_SEQUENCE)
    _edit_blocks(log, LAST_SEQUENCE, lambda blocks: [*blocks, blocks[-1]])
    return _at_block(LAST_SEQUENCE, 2, scan.size)


@tamper("block-replayed-from-first-segment")
def _block_replayed(log: Path) -> Location:
    first = _scan(log, 0)
    old = block_bytes(read_segment(log, CHAIN, 0), first.blocks[0])
    scan = _scan(log, LAST_SEQUENCE)
    _edit_blocks(log, LAST_SEQUENCE, lambda blocks: [*blocks, old])
    return _at_block(LAST_SEQUENCE, 2, scan.size)


@tamper("blocks-reordered-sealed")
def _blocks_reordered_sealed(log: Path) -> Location:
    scan = _scan(log, 1)
    _edit_blocks(log, 1, lambda b: [b[0], b[2], b[1], b[3]])
    return _at_block(1, 1, scan.blocks[1].offset)


@tamper("blocks-reordered-open")
def _blocks_reordered_open(log: Path) -> Location:
    scan = _scan(log, LAST_SEQUENCE)
    _edit_blocks(log, LAST_SEQUENCE, lambda b: [b[1], b[0]])
    return _at_block(LAST_SEQUENCE, 0, scan.blocks[0].offset)


# -- truncation ------------------------------------------------------------------------------


def _truncate(log: Path, sequence: int, size: int) -> None:
    write_segment(log, CHAIN, sequence, read_segment(log, CHAIN, sequence)[:size])


@tamper("sealed-truncated-inside-block")
def _truncated_inside_block(log: Path) -> Location:
    block = _scan(log, 1).blocks[2]
    _truncate(log, 1, block.offset + block.size // 2)
    return _at_segment(1, offset=block.offset)


@tamper("sealed-truncated-inside-entry-prefix")
def _truncated_inside_prefix(log: Path) -> Location:
    block = _scan(log, 1).blocks[2]
    _truncate(log, 1, block.offset + 5)
    return _at_segment(1, offset=block.offset)


@tamper("sealed-truncated-at-block-boundary")
def _truncated_at_boundary(log: Path) -> Location:
    block = _scan(log, 1).blocks[2]
    _truncate(log, 1, block.offset)
    return _at_segment(1)


@tamper("sealed-truncated-inside-seal")
def _truncated_inside_seal(log: Path) -> Location:
    seal = _seal_offset(_scan(log, 1))
    _truncate(log, 1, seal + 40)
    return _at_segment(1, offset=seal)


@tamper("sealed-truncated-inside-file-header")
def _truncated_inside_header(log: Path) -> Location:
    _truncate(log, 1, 20)
    return _at_segment(1)


@tamper("sealed-truncated-to-empty")
def _truncated_to_empty(log: Path) -> Location:
    _truncate(log, 2, 0)
    return _at_segment(2)


# -- whole segments swapped, removed, copied -------------------------------------------------


@tamper("segments-swapped")
def _segments_swapped(log: Path) -> Location:
    _swap_files(segment_file(log, CHAIN, 1), segment_file(log, CHAIN, 2))
    return _at_segment(1)


@tamper("segments-swapped-first")
def _segments_swapped_first(log: Path) -> Location:
    _swap_files(segment_file(log, CHAIN, 0), segment_file(log, CHAIN, 1))
    return _at_segment(0)


@tamper("sealed-and-open-segments-swapped")
def _segments_swapped_open(log: Path) -> Location:
    _swap_files(segment_file(log, CHAIN, 2), segment_file(log, CHAIN, LAST_SEQUENCE))
    return _at_segment(2)


@tamper("segments-swapped-headers-rewritten")
def _segments_swapped_rewritten(log: Path) -> Location:
    spare = 99
    _renumber(log, 1, spare)
    _renumber(log, 2, 1)
    _renumber(log, spare, 2)
    return _at_segment(1)


@tamper("segment-removed-middle")
def _segment_removed_middle(log: Path) -> Location:
    segment_file(log, CHAIN, 1).unlink()
    return _at_segment(2)


@tamper("segment-removed-first")
def _segment_removed_first(log: Path) -> Location:
    segment_file(log, CHAIN, 0).unlink()
    return _at_segment(1)


@tamper("segment-removed-last-sealed")
def _segment_removed_last_sealed(log: Path) -> Location:
    segment_file(log, CHAIN, 2).unlink()
    return _at_segment(LAST_SEQUENCE)


@tamper("segment-removed-and-later-renumbered")
def _segment_removed_renumbered(log: Path) -> Location:
    segment_file(log, CHAIN, 1).unlink()
    _renumber(log, 2, 1)
    _renumber(log, 3, 2)
    return _at_segment(1)


@tamper("segment-copied-from-other-chain")
def _segment_from_other_chain(log: Path) -> Location:
    foreign = _scan(log, 1, OTHER)
    write_segment(log, CHAIN, 1, read_segment(log, OTHER, 1))
    return _at_block(1, 0, foreign.blocks[0].offset)


@tamper("open-segment-copied-from-other-chain")
def _open_segment_from_other_chain(log: Path) -> Location:
    foreign = _scan(log, LAST_SEQUENCE, OTHER)
    write_segment(log, CHAIN, LAST_SEQUENCE, read_segment(log, OTHER, LAST_SEQUENCE))
    return _at_block(LAST_SEQUENCE, 0, foreign.blocks[0].offset)


# -- seals -----------------------------------------------------------------------------------


@tamper("seal-removed")
def _seal_removed(log: Path) -> Location:
    _truncate(log, 1, _seal_offset(_scan(log, 1)))
    return _at_segment(1)


@tamper("seal-removed-before-open-segment")
def _seal_removed_last(log: Path) -> Location:
    _truncate(log, 2, _seal_offset(_scan(log, 2)))
    return _at_segment(2)


@tamper("seal-bit")
def _seal_bit(log: Path) -> Location:
    seal = _seal_offset(_scan(log, 1))
    flip_bit(segment_file(log, CHAIN, 1), seal + 60, 3)
    return _at_segment(1, offset=seal)


@tamper("seal-rewritten-with-valid-hash")
def _seal_rewritten(log: Path) -> Location:
    scan = _scan(log, 1)
    assert scan.seal is not None
    forged = dataclasses.replace(scan.seal, tree_root=bytes(32)).pack()
    data = read_segment(log, CHAIN, 1)
    write_segment(log, CHAIN, 1, data[: _seal_offset(scan)] + forged)
    return _at_segment(1, seal=True)


# -- forgeries that recompute the changed block's own hash -----------------------------------


def _rewrite_block(log: Path, sequence: int, ordinal: int, offset: int, xor: int) -> None:
    """Change one byte of a block at ``offset`` (file offset) and recompute the block's hash."""
    scan = _scan(log, sequence)
    block = scan.blocks[ordinal]
    data = read_segment(log, CHAIN, sequence)
    entry = bytearray(block_bytes(data, block))
    entry[offset - block.offset] ^= xor
    new = rehash_block(entry)
    write_segment(
        log, CHAIN, sequence, data[: block.offset] + new + data[block.offset + block.size :]
    )


@tamper("leaf-rewritten-rehashed")
def _leaf_rehashed(log: Path) -> Location:
    block = _scan(log, 1).blocks[1]
    _rewrite_block(log, 1, 1, leaf_offset(block, 2), 0x40)
    return _at_block(1, 1, block.offset, block.header.first_index)


@tamper("prev-hash-rewritten-rehashed")
def _prev_hash_rehashed(log: Path) -> Location:
    block = _scan(log, 1).blocks[1]
    start, _ = HEADER_FIELDS["prev_hash"]
    _rewrite_block(log, 1, 1, block.offset + 8 + start, 0x01)
    return _at_block(1, 1, block.offset, block.header.first_index)


@tamper("frame-rewritten-rehashed-mid-segment")
def _frame_rehashed(log: Path) -> Location:
    scan = _scan(log, 1)
    block = scan.blocks[1]
    _rewrite_block(log, 1, 1, frame_offset(block, 4) + 2, 0x10)
    # The changed block is self-consistent; the next block no longer names its hash.
    following = scan.blocks[2]
    return _at_block(1, 2, following.offset, following.header.first_index)


def _verify_errors(log: Path) -> tuple[IntegrityError, IntegrityError]:
    with AuditLog.open(log, mode="read") as reader, pytest.raises(IntegrityError) as keyless:
        reader.verify(keyless=True)
    with (
        AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader,
        pytest.raises(IntegrityError) as keyed,
    ):
        reader.verify()
    return keyless.value, keyed.value


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tampering_is_detected_with_and_without_keys(log: Path, case: str) -> None:
    """A tampered log fails keyless and keyed verification, naming where the damage is."""
    expected = TAMPERS[case](log)
    for error in _verify_errors(log):
        found = {key: error.location.get(key) for key in expected}
        assert found == expected, error.diagnostics()


def test_untouched_log_verifies_both_ways(log: Path) -> None:
    """An untouched log verifies with and without keys, counts every record, and is not changed."""
    before = tree_of_files(log)
    with AuditLog.open(log, mode="read") as reader:
        keyless = reader.verify(keyless=True)
    with AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader:
        keyed = reader.verify()
    for report in (keyless, keyed):
        assert report.records == 2 * RECORDS
        assert {name: chain.records for name, chain in report.chains.items()} == {
            CHAIN: RECORDS,
            OTHER: RECORDS,
        }
        assert report.segments == 2 * (LAST_SEQUENCE + 1)
        assert all(chain.sealed_segments == LAST_SEQUENCE for chain in report.chains.values())
        assert all(chain.torn_tail_bytes == 0 for chain in report.chains.values())
    assert keyless.keyless
    assert not keyed.keyless
    assert {c: r.root for c, r in keyless.chains.items()} == {
        c: r.root for c, r in keyed.chains.items()
    }
    assert tree_of_files(log) == before


def test_keyed_verify_catches_rehashed_frame_in_last_block(log: Path) -> None:
    """A forged frame in the chain's last block, block hash recomputed, fails keyed verify."""
    scan = _scan(log, LAST_SEQUENCE)
    block = scan.blocks[-1]
    _rewrite_block(log, LAST_SEQUENCE, len(scan.blocks) - 1, frame_offset(block, 2) + 1, 0x01)
    # Nothing after the last block vouches for it: without keys it cannot be told from real data.
    with AuditLog.open(log, mode="read") as reader:
        reader.verify(keyless=True)
    with (
        AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader,
        pytest.raises(IntegrityError) as caught,
    ):
        reader.verify()
    expected = _at_block(LAST_SEQUENCE, 1, block.offset, block.header.first_index + 2)
    assert {key: caught.value.location.get(key) for key in expected} == expected


def test_segment_files_are_read_only_once_sealed(template: Path) -> None:
    """The template's sealed segments are 0400 and its open segment 0600, as tampering assumes."""
    for chain in (CHAIN, OTHER):
        modes = [
            os.stat(segment_file(template, chain, sequence)).st_mode & 0o777
            for sequence in range(LAST_SEQUENCE + 1)
        ]
        assert modes == [0o400] * LAST_SEQUENCE + [0o600]


@pytest.mark.parametrize("damage", ["ciphertext-bit", "deleted"])
def test_damaged_dictionary_fails_both_verifications_naming_the_file(
    log: Path, damage: str
) -> None:
    """A damaged or missing zstd dictionary fails keyless verification (the log's signed head
    binds it), naming the file, and keyed verification and reading of its blocks, naming chain
    and segment."""
    dictionaries = sorted((log / "chains" / CHAIN / "dicts").glob("*.zdict"))
    assert dictionaries, "the template trained no dictionary"
    name = f"chains/{CHAIN}/dicts/{dictionaries[0].name}"
    if damage == "deleted":
        dictionaries[0].unlink()
    else:
        # The ciphertext is the last field of the msgpack map: flip a bit near the end.
        flip_bit(dictionaries[0], dictionaries[0].stat().st_size - 20)
    with AuditLog.open(log, mode="read") as reader, pytest.raises(IntegrityError) as caught:
        reader.verify(keyless=True)
    assert caught.value.location.get("file") == name, caught.value.diagnostics()
    for keyed in (lambda r: r.verify(), lambda r: list(r.read(CHAIN))):
        with (
            AuditLog.open(log, mode="read", passphrase=TEST_PASSPHRASE) as reader,
            pytest.raises(IntegrityError) as caught,
        ):
            keyed(reader)
        assert caught.value.location.get("chain") == CHAIN, caught.value.diagnostics()
        assert isinstance(caught.value.location.get("segment"), int), caught.value.diagnostics()
