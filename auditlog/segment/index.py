"""Where a chain's blocks are: a reader's index of its segments, learned once per log handle.

A read by index needs the block that holds the index. A sealed segment says where its blocks
are in its seal (``Seal.block_index``, read from the file's tail by ``read_seal``); the open
segment is indexed by hopping along its entries' length prefixes, and afterwards only along
what was appended since (the file only grows). What is learned of a segment is kept, keyed by
its sequence number, and used again while the file is the same one: same device and inode (a
redaction replaces the file, a sweep deletes it) and, for a sealed segment, the same size and
modification time; an open segment may only have grown.

Nothing here is trusted: the index only says where to look. Every block read through it is
checked against its place (its first index and size as the index says) and, when much of it
is read, in full (its hash) before a record of it is decrypted; a record is returned only once
its AEAD frame, bound to its index and leaf, opens and its bytes hash to that leaf. When a
block does not match, the segment's entry is dropped and learned again from the file once, so
a stale entry costs a second look, never a wrong answer.
"""

from __future__ import annotations

import os
import threading
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from auditlog.errors import IntegrityError
from auditlog.segment.blocks import ParsedBlock, parse_block, split_block
from auditlog.segment.format import (
    ENTRY_BLOCK,
    ENTRY_PREFIX,
    ENTRY_SEAL,
    FILE_HEADER,
    FileHeader,
    entry_prefix,
)
from auditlog.segment.scan import entry_heads_at, read_seal

__all__ = ["SegmentIndex", "SegmentLayout"]


@dataclass
class SegmentLayout:
    """Where one segment's blocks are: first index and file offset of each, in order.

    Block ``k`` spans ``offsets[k]`` to ``offsets[k + 1]`` (the last one to ``blocks_end``) and
    holds indexes ``firsts[k]`` to ``firsts[k + 1]`` (the last one to ``end``).
    """

    sequence: int
    identity: tuple[int, int]  # device, inode
    stamp: tuple[int, int]  # size, modification time (ns) when learned
    first_index: int
    sealed: bool
    firsts: array[int] = field(default_factory=lambda: array("q"))
    offsets: array[int] = field(default_factory=lambda: array("q"))
    blocks_end: int = FILE_HEADER.size
    end: int = 0
    hopped_to: int | None = None
    """For a segment indexed along its entries: where the hop stopped (None: from the seal)."""

    def blocks(self, start: int, limit: int) -> range:
        """The positions of the blocks holding any index in [start, limit)."""
        first = max(bisect_right(self.firsts, start) - 1, 0)
        last = bisect_right(self.firsts, limit - 1)
        return range(first, last) if start < self.end else range(0)

    def span(self, position: int) -> tuple[int, int, int, int]:
        """(offset, size, first index, end index) of block ``position``."""
        count = len(self.firsts)
        stop = self.offsets[position + 1] if position + 1 < count else self.blocks_end
        end = self.firsts[position + 1] if position + 1 < count else self.end
        offset = self.offsets[position]
        return offset, stop - offset, self.firsts[position], end

    def _hop(self, fd: int, size: int) -> None:
        """Index the entries from where the last hop stopped up to ``size``."""
        assert self.hopped_to is not None
        heads, self.hopped_to = entry_heads_at(fd, self.hopped_to, size)
        for head in heads:
            if head.kind == ENTRY_BLOCK:
                self.firsts.append(head.first_index)
                self.offsets.append(head.offset)
                self.blocks_end = head.offset + head.size
                self.end = head.first_index + head.count
            self.sealed = head.kind == ENTRY_SEAL


class SegmentIndex:
    """The layouts of one chain's segments that a log handle has read (see the module doc)."""

    def __init__(self) -> None:
        self._layouts: dict[int, SegmentLayout] = {}
        self._firsts: dict[int, tuple[tuple[int, int], int]] = {}
        self._lock = threading.Lock()

    def prune(self, present: set[int]) -> None:
        """Forget the segments that are no longer there (a sweep deleted them)."""
        with self._lock:
            for known in (self._layouts, self._firsts):
                for sequence in [s for s in known if s not in present]:
                    del known[sequence]

    def forget(self, sequence: int) -> None:
        with self._lock:
            self._layouts.pop(sequence, None)
            self._firsts.pop(sequence, None)

    def first_index(self, sequence: int, path: Path) -> int | None:
        """The first index a segment's file header names (read once; None if it is torn)."""
        known = self._firsts.get(sequence)
        if known is not None:
            return known[1]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            stat = os.fstat(fd)
            header = FileHeader.unpack(os.pread(fd, FILE_HEADER.size, 0))
        finally:
            os.close(fd)
        if header is None:
            return None
        with self._lock:
            self._firsts[sequence] = ((stat.st_dev, stat.st_ino), header.first_index)
        return header.first_index

    def layout(self, sequence: int, fd: int) -> SegmentLayout:
        """The layout of segment ``sequence``, open as ``fd``: the one learned before if the
        file is still the same one, else learned now."""
        stat = os.fstat(fd)
        identity = (stat.st_dev, stat.st_ino)
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._layouts.get(sequence)
            if known is not None and known.identity == identity:
                if known.hopped_to is None and known.stamp == stamp:
                    return known
                if known.hopped_to is not None and known.hopped_to <= stat.st_size:
                    if known.stamp != stamp:
                        known._hop(fd, stat.st_size)
                        known.stamp = stamp
                    return known
            learned = _learn(sequence, fd, identity, stamp)
            self._layouts[sequence] = learned
            self._firsts[sequence] = (identity, learned.first_index)
            return learned


def _learn(
    sequence: int, fd: int, identity: tuple[int, int], stamp: tuple[int, int]
) -> SegmentLayout:
    """A segment's layout from its seal if it ends in a well-formed one, else from its
    entries."""
    size = stamp[0]
    header = FileHeader.unpack(os.pread(fd, FILE_HEADER.size, 0))
    first = header.first_index if header is not None else 0
    found = read_seal(fd, size)
    if found is not None and found[0].first_index == first:
        seal, seal_offset = found
        return SegmentLayout(
            sequence,
            identity,
            stamp,
            first,
            sealed=True,
            firsts=array("q", (item[0] for item in seal.block_index)),
            offsets=array("q", (item[1] for item in seal.block_index)),
            blocks_end=seal_offset,
            end=seal.end_index,
        )
    layout = SegmentLayout(
        sequence, identity, stamp, first, sealed=False, end=first, hopped_to=FILE_HEADER.size
    )
    layout._hop(fd, size)
    return layout


def read_indexed_block(
    fd: int, layout: SegmentLayout, position: int, where: dict[str, object], *, whole: bool = True
) -> ParsedBlock:
    """Block ``position`` of ``layout``, checked against its place and, if ``whole``, in full
    (its hash; else only split, for reading a few of its records: ``split_block``).

    Raises ``IntegrityError`` when the bytes there are not a well-formed block holding the
    indexes the layout says: the file changed since it was learned, or it was damaged.
    """
    offset, size, first, end = layout.span(position)
    entry = os.pread(fd, size, offset)
    if len(entry) != size or entry[: ENTRY_PREFIX.size] != entry_prefix(size - ENTRY_PREFIX.size):
        raise IntegrityError("a block is not where the segment's index says", location=where)
    try:
        body = memoryview(entry)[ENTRY_PREFIX.size :]
        block = parse_block(body, offset) if whole else split_block(body, offset)
    except IntegrityError as exc:
        raise IntegrityError(str(exc), location=where) from None
    if block.header.first_index != first or block.header.tree_size != end:
        raise IntegrityError(
            f"the block at offset {offset} holds indexes {block.header.first_index} to "
            f"{block.header.tree_size - 1}, not {first} to {end - 1} as the segment's seal or "
            "entries say: the segment was changed",
            location={**where, "index": first},
        )
    return block
