"""Opening a chain for writing: check its tail, cut what a crash left, bring its tiles in step.

Opening costs one segment read, not the whole chain: the last segment is checked as the
continuation of the seal (or tombstone) before it. A torn tail (an entry cut short, or a file
extended with zeros by a crash) is cut and reported; damage is never cut here (``repair`` does
that, on request, keeping the bytes).
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from auditlog._fs import fsync_dir
from auditlog.errors import IntegrityError
from auditlog.merkle import CompactRange
from auditlog.segment.check import ChainCheck
from auditlog.segment.files import ChainFiles
from auditlog.segment.format import Tombstone
from auditlog.segment.scan import SegmentScan, list_segments, scan_segment, segment_path
from auditlog.segment.tiles import TileStore, unchecked_tombstones

__all__ = [
    "RecoveryReport",
    "check_tail",
    "cut_torn_tail",
    "leaf_blocks",
    "rebuild_tiles",
    "recover_tiles",
    "tree_pieces",
]


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening a chain for writing found and did: a torn tail cut, and where."""

    chain: str
    segment: int
    offset: int
    bytes_cut: int
    durable_records: int


def check_tail(
    files: ChainFiles, chain: str, origin: str, tombstones: dict[int, Tombstone] | None = None
) -> tuple[ChainCheck, SegmentScan | None]:
    """Check a chain's last segment as a continuation of what comes before it.

    What comes before is the seal of the segment before, or the tombstone of deleted
    segments, or the chain's start. This is what opening a chain for writing costs: one
    segment read, not the whole chain. Returns the check positioned after the last segment
    (or after the last tombstone, when the newest segments were deleted) and the last
    segment's scan (None when there is none after the tombstones). Raises ``IntegrityError``
    for damage (a torn tail is not damage: the scan reports it).
    """
    tombstones = tombstones or {}
    segments_dir = files.segments
    segments = list_segments(segments_dir)
    newest_tombstone = max(tombstones.values(), key=lambda t: t.last_sequence, default=None)
    if newest_tombstone is not None and (
        not segments or newest_tombstone.last_sequence > segments[-1][0]
    ):
        check = ChainCheck.resume_after(chain, origin, newest_tombstone)
        check.tombstones = tombstones
        return check, None
    if not segments:
        return ChainCheck.start(chain, origin), None
    sequence, path = segments[-1]
    previous = sequence - 1
    tombstone = next((t for t in tombstones.values() if t.last_sequence == previous), None)
    if sequence == 0:
        check = ChainCheck.start(chain, origin)
    elif tombstone is not None:
        check = ChainCheck.resume_after(chain, origin, tombstone)
    else:
        before_path = segment_path(segments_dir, previous)
        try:
            data = before_path.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(
                f"segment {previous} is missing and no tombstone stands for it",
                location={"chain": chain, "segment": previous},
            ) from None
        before = scan_segment(data, before_path, previous, chain=chain, allow_torn=False)
        if before.seal is None:
            raise IntegrityError(
                "the segment before the last one is not sealed; run `auditlog verify` to find "
                "out what happened",
                location={"chain": chain, "segment": previous},
            )
        check = ChainCheck.resume(chain, origin, previous, before.seal)
    check.tombstones = tombstones
    scan = scan_segment(path.read_bytes(), path, sequence, chain=chain, allow_torn=True)
    check.feed(scan)
    return check, scan


def cut_torn_tail(scan: SegmentScan, chain: str, durable_records: int) -> RecoveryReport:
    """Cut the torn tail of a chain's last segment (or the whole file, if its header is torn)."""
    fd = os.open(scan.path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, 0 if scan.first_index == -1 else scan.good_size)
        os.fsync(fd)
    finally:
        os.close(fd)
    if scan.first_index == -1:
        # The file was being created when the process died: no block ever reached it.
        scan.path.unlink()
        fsync_dir(scan.path.parent)
    return RecoveryReport(
        chain=chain,
        segment=scan.sequence,
        offset=scan.good_size if scan.first_index != -1 else 0,
        bytes_cut=scan.torn_bytes,
        durable_records=durable_records,
    )


def recover_tiles(
    tiles: TileStore,
    files: ChainFiles,
    chain: str,
    size: int,
    *,
    any_deleted: bool = False,
    tombstones: Mapping[int, Tombstone] | None = None,
) -> None:
    """Bring the tiles in step with the recovered chain: cut extra nodes, and rebuild them
    from the segments and tombstones if a level file has another length than ``size`` calls
    for (or is missing, or a stray file is there).

    ``tombstones`` are the chain's, as the writer's open checked them; without them, a chain
    with ``any_deleted`` reads its tombstones' texts (their signatures were just checked).
    """
    tiles.truncate(size)
    if tiles.matches(size):
        return
    if tombstones is None and any_deleted:
        tombstones = {t.first_sequence: t for t in unchecked_tombstones(files.tombstones)}
    rebuilt = rebuild_tiles(tiles, files, chain, tombstones or {})
    if rebuilt != size:
        raise IntegrityError(
            f"rebuilding tiles found {rebuilt} leaves, the chain has {size}",
            location={"chain": chain},
        )


def rebuild_tiles(
    tiles: TileStore, files: ChainFiles, chain: str, tombstones: Mapping[int, Tombstone]
) -> int:
    """Write the chain's tiles again from its segments and tombstones (one pass, no key);
    returns the tree size they hold."""
    return tiles.rebuild(tree_pieces(files.segments, chain, tombstones))


def tree_pieces(
    segments_dir: Path, chain: str, tombstones: Mapping[int, Tombstone]
) -> Iterator[tuple[int, bytes] | CompactRange]:
    """What the chain's tree is made of, in index order (no key needed): ``(first index,
    joined leaves)`` of every block of the segments present, and the compact range of every
    tombstone where it stands. As in verification, a tombstone whose first segment is still
    there is not used, and the other segments a used tombstone stands for (an unfinished sweep
    may have left some) are passed over."""
    present = {sequence for sequence, _ in list_segments(segments_dir)}
    waiting = sorted(
        (t for t in tombstones.values() if t.first_sequence not in present),
        key=lambda t: t.first_index,
    )
    deleted = {s for t in waiting for s in range(t.first_sequence, t.last_sequence + 1)}
    for first, leaves in leaf_blocks(segments_dir, chain, deleted):
        while waiting and waiting[0].first_index <= first:
            yield waiting.pop(0).range()
        yield first, leaves
    for tombstone in waiting:
        yield tombstone.range()


def leaf_blocks(
    segments_dir: Path, chain: str, passed_over: Container[int] = ()
) -> Iterator[tuple[int, bytes]]:
    """(first index, joined leaves) of every block of a chain, in order (no key needed), but
    those of the segments ``passed_over``."""
    segments = list_segments(segments_dir)
    for position, (sequence, path) in enumerate(segments):
        if sequence in passed_over:
            continue
        last = position == len(segments) - 1
        scan = scan_segment(path.read_bytes(), path, sequence, chain=chain, allow_torn=last)
        for block in scan.blocks:
            yield block.header.first_index, bytes(block.leaves)
