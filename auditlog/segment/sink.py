"""Where a chain's blocks go: the open segment, its roll and seal, the tree and the tiles.

``SegmentSink`` is the lower half of a chain's writer: given a block's encrypted frames it
extends the Merkle tree, builds and writes the block entry (rolling to a new segment first when
the period changes or the segment is full, sealing the one before), and keeps the tiles, which
are derived from the segments, one step behind the disk: they are written once the block is
synced (``write_tiles``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from auditlog._fs import create_exclusive, write_all
from auditlog.clock import Clock, datetime_to_micros
from auditlog.merkle import CompactRange
from auditlog.segment.blocks import pack_block
from auditlog.segment.format import (
    TIME_GRANULE_US,
    BlockHeader,
    Seal,
    block_entry_size,
    file_header,
)
from auditlog.segment.scan import segment_path
from auditlog.segment.tail import TailVouch, vouch
from auditlog.segment.tiles import TileStore

__all__ = ["OpenSegment", "SegmentSink"]


@dataclass
class OpenSegment:
    sequence: int
    path: Path
    fd: int
    first_index: int
    size: int
    records: int
    period: int  # the newest period written into this segment
    periods: set[int]
    block_index: list[tuple[int, int]]


class SegmentSink:
    """Writes one chain's blocks into its segments (the chain's lock is held by its writer)."""

    def __init__(
        self,
        segments_dir: Path,
        tiles: TileStore,
        settings_limits: tuple[int, int],
        clock: Clock,
        *,
        fsync: bool,
        tree: CompactRange,
        last_hash: bytes,
        next_sequence: int,
        segment: OpenSegment | None,
        on_seal: Callable[[int, bytes], None] | None,
        state_lock: Callable[[], AbstractContextManager[None]],
        unvouched: TailVouch | None = None,
    ) -> None:
        """``settings_limits``: (max segment bytes, max segment records); ``unvouched``: the
        segment bytes an open took on trust (``segment.tail``), checked before the tree is
        first sealed or signed."""
        self._segments_dir = segments_dir
        self.tiles = tiles
        self._max_bytes, self._max_records = settings_limits
        self._clock = clock
        self._fsync = fsync
        self.tree = tree
        self._last_hash = last_hash
        self._next_sequence = next_sequence
        self.segment = segment
        self._on_seal = on_seal
        self._state_lock = state_lock
        self.unsynced_fd: int | None = None  # written, not yet synced (sync=False)
        self._tiles_due: list[tuple[int, bytes, list[tuple[int, int, bytes]]]] = []
        self._unvouched = unvouched

    def vouch(self) -> None:
        """Check what the open took on trust, once, before the tree is sealed or signed."""
        self._unvouched = vouch(self._unvouched)

    def write_block(
        self,
        first: int,
        period: int,
        dict_id: int,
        block_salt: bytes,
        leaves: list[bytes],
        frames: list[bytes],
        times: list[int],
        *,
        sync: bool,
    ) -> None:
        """Write one block; ``fdatasync`` it if ``sync``, else leave that to the caller
        (``unsynced_fd``)."""
        count = len(frames)
        # Roll the segment before the tree moves on: a seal records the tree as it stood at
        # the end of its own last block.
        entry_size = block_entry_size(count, sum(map(len, frames)))
        segment = self._segment_for(period, entry_size, count, first)
        tree = self.tree
        # The leaves are joined once, for the tree, the block and the tiles alike.
        joined = b"".join(leaves)
        stride_nodes: list[tuple[int, int, bytes]] = []
        tree.extend_joined(joined, stride_nodes)
        header = BlockHeader(
            count=count,
            first_index=first,
            tree_size=first + count,
            period=period,
            dictionary_id=dict_id,
            # Header times are coarsened to whole minutes: with small blocks exact times in
            # the clear would reveal when each record's event happened.
            min_time=min(times) // TIME_GRANULE_US * TIME_GRANULE_US,
            max_time=-(-max(times) // TIME_GRANULE_US) * TIME_GRANULE_US,
            block_salt=block_salt,
            prev_hash=self._last_hash,
            tree_root=tree.root(),
        )
        entry, block_hash = pack_block(header, joined, frames)
        offset = segment.size
        write_all(segment.fd, entry)
        if self._fsync and sync:
            os.fdatasync(segment.fd)
        elif self._fsync:
            self.unsynced_fd = segment.fd
        segment.size += len(entry)
        segment.records += count
        segment.period = max(segment.period, period)
        segment.periods.add(period)
        segment.block_index.append((first, offset))
        self._last_hash = block_hash
        # Derived from the segment: written once the block is on disk (``write_tiles``).
        self._tiles_due.append((first, joined, stride_nodes))

    def sync(self) -> None:
        """``fdatasync`` what was written without (a no-op if nothing was)."""
        fd, self.unsynced_fd = self.unsynced_fd, None
        if fd is not None:
            os.fdatasync(fd)

    def write_tiles(self) -> None:
        """The tiles of the blocks written (and synced) since the last call."""
        due, self._tiles_due = self._tiles_due, []
        for first, joined, stride_nodes in due:
            self.tiles.write(first, joined, stride_nodes)

    def _segment_for(self, period: int, entry_bytes: int, records: int, first: int) -> OpenSegment:
        segment = self.segment
        if (
            segment is not None
            and segment.records
            and (
                period > segment.period
                or segment.size + entry_bytes > self._max_bytes
                or segment.records + records > self._max_records
            )
        ):
            self.seal(segment)
            segment = None
        if segment is None:
            segment = self._create_segment(first, period)
        return segment

    def _create_segment(self, first: int, period: int) -> OpenSegment:
        sequence = self._next_sequence
        path = segment_path(self._segments_dir, sequence)
        header = file_header(sequence, first)
        create_exclusive(path, header)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._next_sequence += 1
        self.segment = OpenSegment(
            sequence=sequence,
            path=path,
            fd=fd,
            first_index=first,
            size=len(header),
            records=0,
            period=period,
            periods=set(),
            block_index=[],
        )
        return self.segment

    def seal(self, segment: OpenSegment) -> None:
        self.vouch()  # before the tree is first sealed
        with self._state_lock():
            self._write_seal(segment)
        # The seal's fsync made the segment's blocks durable: their tiles now, so that the
        # tiles never lag behind a sealed segment (an open takes the tiles from the seal on).
        self.write_tiles()

    def _write_seal(self, segment: OpenSegment) -> None:
        tree = self.tree
        seal = Seal(
            block_count=len(segment.block_index),
            first_index=segment.first_index,
            end_index=tree.end,
            sealed_at=datetime_to_micros(self._clock.now()),
            last_block_hash=self._last_hash,
            tree_root=tree.root(),
            frontier=tuple(tree.hashes),
            periods=tuple(sorted(segment.periods)),
            block_index=tuple(segment.block_index),
        )
        write_all(segment.fd, seal.pack())
        os.fsync(segment.fd)
        if self.unsynced_fd == segment.fd:
            self.unsynced_fd = None  # the fsync covered its blocks
        os.close(segment.fd)
        os.chmod(segment.path, 0o400)  # sealed segments are immutable; make accidents harder
        self.segment = None
        if self._on_seal is not None:
            self._on_seal(seal.end_index, seal.tree_root)

    def close(self) -> None:
        """Close the open segment's file (it stays open for the next writer)."""
        if self.segment is not None:
            os.close(self.segment.fd)
            self.segment = None
