"""Opening a chain for writing: check its tail, cut what a crash left, bring its tiles in step.

Opening costs one segment read, not the whole chain: the last segment is checked as the
continuation of the seal (or tombstone) before it. A torn tail (an entry cut short, or a file
extended with zeros by a crash) is cut and reported; damage is never cut here (``repair`` does
that, on request, keeping the bytes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from auditlog._fs import fsync_dir
from auditlog.errors import IntegrityError
from auditlog.segment.check import ChainCheck
from auditlog.segment.files import ChainFiles
from auditlog.segment.format import Tombstone
from auditlog.segment.scan import SegmentScan, list_segments, scan_segment, segment_path
from auditlog.segment.tiles import TileStore

__all__ = ["RecoveryReport", "check_tail", "cut_torn_tail", "leaf_blocks", "recover_tiles"]


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
    tiles: TileStore, files: ChainFiles, chain: str, size: int, *, any_deleted: bool
) -> None:
    """Bring the tiles in step with the recovered chain: cut extra nodes, rebuild if short."""
    tiles.truncate(size)
    if not tiles.matches(size) and not any_deleted:
        # Tiles cannot be rebuilt across deleted segments (their leaves are gone); proofs
        # near such a gap fail their own check until the tiles are restored.
        rebuilt = tiles.rebuild(leaf_blocks(files.segments, chain))
        if rebuilt != size:
            raise IntegrityError(
                f"rebuilding tiles found {rebuilt} leaves, the chain has {size}",
                location={"chain": chain},
            )


def leaf_blocks(segments_dir: Path, chain: str) -> Iterator[tuple[int, bytes]]:
    """(first index, joined leaves) of every block of a chain, in order (no key needed)."""
    segments = list_segments(segments_dir)
    for position, (sequence, path) in enumerate(segments):
        last = position == len(segments) - 1
        scan = scan_segment(path.read_bytes(), path, sequence, chain=chain, allow_torn=last)
        for block in scan.blocks:
            yield block.header.first_index, bytes(block.leaves)
