"""Reading segment files without keys: parse entries, tell a torn tail from damage, check chains.

``scan_segment`` checks one file's structure and self-hashes. ``ChainCheck`` consumes the scans
of a chain's segments in order and checks everything that links them: indexes, the block hash
chain, the Merkle roots recomputed from the leaves, and each seal. Keyless verification, writer
recovery and readers all go through these two, so there is one definition of "intact".
"""

from __future__ import annotations

import builtins
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from auditlog.errors import IntegrityError
from auditlog.merkle import EMPTY_ROOT, CompactRange
from auditlog.segment.format import (
    ENTRY_BLOCK,
    ENTRY_PREFIX,
    ENTRY_SEAL,
    FILE_HEADER,
    FORMAT_VERSION,
    MAGIC,
    MAX_ENTRY_BYTES,
    TIME_GRANULE_US,
    ParsedBlock,
    Seal,
    entry_prefix,
    genesis_hash,
    parse_block,
)
from auditlog.segment.tombstone import Tombstone

__all__ = ["ChainCheck", "SegmentScan", "list_segments", "scan_segment", "segment_path"]

SEGMENT_SUFFIX = ".seg"


def segment_path(directory: Path, sequence: int) -> Path:
    """Segment files are named by sequence number only: names reveal counts, nothing else."""
    return directory / f"{sequence:010d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """The (sequence, path) of every segment file in ``directory``, in sequence order."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    stems = [name.removesuffix(SEGMENT_SUFFIX) for name in names if name.endswith(SEGMENT_SUFFIX)]
    return sorted(
        (int(stem), directory / f"{stem}{SEGMENT_SUFFIX}")
        for stem in stems
        if len(stem) == 10 and stem.isdigit() and stem.isascii()
    )


@dataclass
class SegmentScan:
    """What one segment file holds, structurally checked."""

    sequence: int
    path: Path
    first_index: int
    blocks: list[ParsedBlock]
    seal: Seal | None
    size: int
    good_size: int  # end of the last complete, well-formed entry
    torn_bytes: int  # bytes after good_size that a crash left (only ever on the last segment)

    @property
    def end_index(self) -> int:
        return self.blocks[-1].header.tree_size if self.blocks else self.first_index

    @property
    def record_count(self) -> int:
        return sum(b.header.count for b in self.blocks)


def _is_zero(data: memoryview) -> bool:
    return not any(data)


def scan_segment(
    data: bytes, path: Path, sequence: int, *, chain: str, allow_torn: bool
) -> SegmentScan:
    """Parse one segment file's bytes; ``allow_torn`` only for the chain's last segment.

    A trailing entry cut short (or a zero-filled tail: a file extended by a crash before its
    data reached the disk) is a torn tail when ``allow_torn``; a complete entry that fails its
    checks is always an ``IntegrityError``, never silently dropped.
    """
    where: dict[str, object] = {"chain": chain, "segment": sequence}
    view = memoryview(data)
    if len(data) < FILE_HEADER.size or (allow_torn and _is_zero(view)):
        # A crash while the file was being created: its header never fully reached the disk.
        if allow_torn:
            return SegmentScan(sequence, path, -1, [], None, len(data), 0, len(data))
        raise IntegrityError("segment file is shorter than its header", location=where)
    magic, version, flags, reserved, file_sequence, first_index = FILE_HEADER.unpack_from(data)
    if magic != MAGIC:
        raise IntegrityError("not an auditlog segment file (bad magic)", location=where)
    if version != FORMAT_VERSION:
        raise IntegrityError(
            f"segment format version {version} is not one this auditlog reads "
            f"({FORMAT_VERSION}); upgrade auditlog",
            location=where,
        )
    if flags or reserved:
        raise IntegrityError("segment header has unknown flags set", location=where)
    if file_sequence != sequence:
        raise IntegrityError(
            f"segment file says it is segment {file_sequence}: segment files were renamed, "
            "swapped or copied between chains",
            location=where,
        )
    blocks: list[ParsedBlock] = []
    seal: Seal | None = None
    position = FILE_HEADER.size
    torn = 0
    while position < len(data):
        remaining = len(data) - position
        entry_where = {**where, "block": len(blocks), "offset": position}
        if seal is not None:
            raise IntegrityError("bytes follow the segment's seal", location=entry_where)
        if remaining < ENTRY_PREFIX.size:
            torn = remaining
            break
        length, _ = ENTRY_PREFIX.unpack_from(data, position)
        # The prefix is intact if it is the one the writer makes for that length (its CRC).
        if data[position : position + ENTRY_PREFIX.size] != entry_prefix(length):
            if _is_zero(view[position:]):
                torn = remaining
                break
            raise IntegrityError("an entry's length field is damaged", location=entry_where)
        if not 0 < length <= MAX_ENTRY_BYTES:
            raise IntegrityError(
                f"an entry claims an invalid length {length}", location=entry_where
            )
        if ENTRY_PREFIX.size + length > remaining:
            torn = remaining
            break
        body = view[position + ENTRY_PREFIX.size : position + ENTRY_PREFIX.size + length]
        kind = body[0]
        try:
            if kind == ENTRY_BLOCK:
                blocks.append(parse_block(body, position))
            elif kind == ENTRY_SEAL:
                seal = Seal.unpack(body)
            else:
                raise IntegrityError(f"unknown entry type {kind}")
        except IntegrityError as exc:
            ends_file = position + ENTRY_PREFIX.size + length == len(data)
            if allow_torn and ends_file and _is_zero(view[-32:]):
                # The last entry's length reached the disk but not all of its bytes: the file
                # was extended with zeros by a crash. A real block ends in its SHA-256, never
                # in 32 zero bytes, so this is a torn write, not a changed block.
                torn = remaining
                break
            index = None
            if kind == ENTRY_BLOCK and len(body) >= 16:
                index = int.from_bytes(body[8:16], "big")
            raise IntegrityError(
                f"{exc}; run `auditlog repair` only if this is the open tail of the chain, "
                "otherwise restore the segment from a backup",
                location={**entry_where, **({"index": index} if index is not None else {})},
            ) from None
        position += ENTRY_PREFIX.size + length
    if torn and not allow_torn:
        raise IntegrityError(
            "segment ends in an incomplete entry but is not the last segment of its chain: "
            "a sealed segment was truncated",
            location={**where, "offset": len(data) - torn},
        )
    return SegmentScan(
        sequence=sequence,
        path=path,
        first_index=first_index,
        blocks=blocks,
        seal=seal,
        size=len(data),
        good_size=len(data) - torn,
        torn_bytes=torn,
    )


@dataclass
class ChainCheck:
    """Checks the segments of one chain, fed in order, as a chain: the keyless verification.

    Start from the beginning (``ChainCheck.start``) or from a trusted seal (``resume``): writer
    recovery resumes after the last sealed segment instead of rereading the whole chain.
    """

    chain: str
    origin: str
    tree: CompactRange
    last_hash: bytes
    next_sequence: int
    blocks: int = 0
    records: int = 0
    bytes: int = 0
    segments: int = 0
    sealed_open: bool = False  # the previous segment was not sealed (only the last may be)
    periods: set[int] = field(default_factory=set)
    roots: dict[int, builtins.bytes] = field(default_factory=dict)
    tombstones: dict[int, Tombstone] = field(default_factory=dict)
    tombstoned: list[tuple[int, int]] = field(default_factory=list)  # deleted index ranges
    wanted: set[int] = field(default_factory=set)  # tree sizes whose roots to record too
    pending_deletion: int = 0  # segments a tombstone stands for that an unfinished sweep left
    pending: set[int] = field(default_factory=set)  # segments an unfinished sweep will delete

    @classmethod
    def start(cls, chain: str, origin: str) -> ChainCheck:
        check = cls(chain, origin, CompactRange(0, 0), genesis_hash(origin), 0)
        check.roots[0] = EMPTY_ROOT
        return check

    @classmethod
    def resume(cls, chain: str, origin: str, sequence: int, seal: Seal) -> ChainCheck:
        """Continue after sealed segment ``sequence`` whose seal is ``seal``."""
        tree = CompactRange(0, seal.end_index, seal.frontier)
        return cls(chain, origin, tree, seal.last_block_hash, sequence + 1)

    @classmethod
    def resume_after(cls, chain: str, origin: str, tombstone: Tombstone) -> ChainCheck:
        """Continue after the segments a tombstone stands for."""
        tree = CompactRange(0, tombstone.end_index, tombstone.frontier)
        return cls(chain, origin, tree, tombstone.last_block_hash, tombstone.last_sequence + 1)

    def apply_tombstones(self, before_sequence: int | None = None) -> None:
        """Step over deleted segments that come next (up to ``before_sequence``), by tombstone.

        The tombstone's compact range extends the tree exactly as the deleted leaves did, and
        its hashes of the chain join the blocks before and after the gap.
        """
        while self.next_sequence in self.tombstones and (
            before_sequence is None or self.next_sequence < before_sequence
        ):
            tombstone = self.tombstones[self.next_sequence]
            if tombstone.last_sequence < tombstone.first_sequence:
                raise IntegrityError("a tombstone names an empty range of segments")
            where = {
                "chain": self.chain,
                "tombstone": f"{tombstone.first_sequence}-{tombstone.last_sequence}",
            }
            if self.sealed_open:
                raise IntegrityError(
                    "deleted segments follow a segment that is not sealed", location=where
                )
            if tombstone.first_index != self.size or not hmac.compare_digest(
                tombstone.prev_hash, self.last_hash
            ):
                raise IntegrityError(
                    "a tombstone does not join the chain where it stands: the chain around "
                    "deleted segments was changed",
                    location=where,
                )
            self.tree.merge(tombstone.range())
            if self.tree.hashes != tombstone.frontier:
                raise IntegrityError("a tombstone's frontier does not match", location=where)
            self.last_hash = tombstone.last_block_hash
            self.next_sequence = tombstone.last_sequence + 1
            self.roots[tombstone.end_index] = self.tree.root()
            self.tombstoned.append((tombstone.first_index, tombstone.end_index))

    @property
    def size(self) -> int:
        return self.tree.end

    def root(self) -> builtins.bytes:
        return self.tree.root()

    def feed(self, scan: SegmentScan) -> None:
        """Check one more segment; raises ``IntegrityError`` naming the first problem."""
        where: dict[str, object] = {"chain": self.chain, "segment": scan.sequence}
        self.apply_tombstones(scan.sequence)
        if scan.sequence in self.pending and any(
            t.first_sequence <= scan.sequence <= t.last_sequence < self.next_sequence
            for t in self.tombstones.values()
        ):
            # A sweep (its signed journal names this segment) stored the tombstone and was
            # stopped before deleting the segment: the tombstone already stands for it, and the
            # next write-open deletes it. Without such a journal it is an error below.
            self.pending_deletion += 1
            return
        if self.sealed_open:
            raise IntegrityError(
                "a segment that is not sealed is followed by another segment: a segment's "
                "seal was removed or the segment was truncated",
                location={"chain": self.chain, "segment": scan.sequence - 1},
            )
        if scan.sequence < self.next_sequence:
            raise IntegrityError(
                f"segment {scan.sequence} is back although a signed tombstone says it was "
                "deleted (restored from a backup?)",
                location=where,
            )
        if scan.sequence != self.next_sequence:
            raise IntegrityError(
                f"segment {self.next_sequence} is missing (found {scan.sequence} next) and no "
                "signed tombstone stands for it: it was deleted by hand, or a sweep was "
                "stopped before storing its tombstone (then `auditlog sweep --apply`, or any "
                "write-open, finishes it)",
                location=where,
            )
        self.next_sequence += 1
        self.segments += 1
        self.bytes += scan.size
        if scan.first_index == -1:  # a torn file header: the segment was being created
            self.sealed_open = True
            return
        if scan.first_index != self.size:
            raise IntegrityError(
                f"segment starts at index {scan.first_index} but the chain so far ends at "
                f"{self.size}: a segment was removed, duplicated or reordered",
                location=where,
            )
        block_index: list[tuple[int, int]] = []
        for ordinal, block in enumerate(scan.blocks):
            self._feed_block(block, {**where, "block": ordinal, "offset": block.offset})
            block_index.append((block.header.first_index, block.offset))
        if scan.seal is None:
            self.sealed_open = True
            return
        self._check_seal(scan, block_index, where)

    def _feed_block(self, block: ParsedBlock, where: dict[str, object]) -> None:
        header = block.header
        where = {**where, "index": header.first_index}
        if header.first_index != self.size:
            raise IntegrityError(
                f"block starts at index {header.first_index}, expected {self.size}: a block "
                "was removed, duplicated or reordered",
                location=where,
            )
        if not hmac.compare_digest(header.prev_hash, self.last_hash):
            raise IntegrityError(
                "block does not name the previous block's hash: the hash chain is broken "
                "(a block was removed, inserted, reordered, or segments were swapped)",
                location=where,
            )
        if header.tree_size != header.first_index + header.count:
            raise IntegrityError("block's tree size does not match its count", location=where)
        if header.min_time > header.max_time:
            raise IntegrityError("block's time range is inverted", location=where)
        if header.min_time % TIME_GRANULE_US or header.max_time % TIME_GRANULE_US:
            raise IntegrityError("block's time range is not in whole minutes", location=where)
        leaves = bytes(block.leaves)
        done = 0
        # Roots asked for inside the block (a checkpoint held by someone else may fall there).
        for size in sorted(s for s in self.wanted if header.first_index < s < header.tree_size):
            cut = (size - header.first_index) * 32
            self.tree.extend_joined(leaves[done:cut])
            self.roots[size] = self.tree.root()
            done = cut
        self.tree.extend_joined(leaves[done:])
        root = self.tree.root()
        self.roots[header.tree_size] = root
        if not hmac.compare_digest(root, header.tree_root):
            raise IntegrityError(
                "the Merkle root recomputed from the leaves differs from the block header's: "
                "a leaf was changed",
                location=where,
            )
        self.last_hash = block.block_hash
        self.blocks += 1
        self.records += header.count
        self.periods.add(header.period)

    def _check_seal(
        self, scan: SegmentScan, block_index: list[tuple[int, int]], where: dict[str, object]
    ) -> None:
        seal = scan.seal
        assert seal is not None
        where = {**where, "seal": True}
        expected = (
            len(scan.blocks),
            scan.first_index,
            self.size,
            self.last_hash,
            self.root(),
            tuple(self.tree.hashes),
            tuple(sorted({b.header.period for b in scan.blocks})),
            tuple(block_index),
        )
        found = (
            seal.block_count,
            seal.first_index,
            seal.end_index,
            seal.last_block_hash,
            seal.tree_root,
            seal.frontier,
            seal.periods,
            seal.block_index,
        )
        if not scan.blocks or expected != found:
            raise IntegrityError("the segment's seal does not describe its blocks", location=where)


@dataclass(frozen=True, slots=True)
class EntryHead:
    """Where an entry is, and what its first bytes say (type, first index, count)."""

    offset: int
    size: int
    kind: int
    first_index: int
    count: int


def entry_heads(path: Path) -> list[EntryHead]:
    """The entries of a segment from their length prefixes: a few bytes read per block.

    Used to reach one block without reading the segment; what is then read of a block is
    checked in full (its hash) before use. Stops at a torn tail.
    """
    heads = []
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        position = FILE_HEADER.size
        while position + ENTRY_PREFIX.size + 16 <= size:
            handle.seek(position)
            head = handle.read(ENTRY_PREFIX.size + 16)
            length, _ = ENTRY_PREFIX.unpack_from(head)
            if (
                head[: ENTRY_PREFIX.size] != entry_prefix(length)
                or position + ENTRY_PREFIX.size + length > size
            ):
                break
            kind = head[ENTRY_PREFIX.size]
            count = int.from_bytes(head[ENTRY_PREFIX.size + 4 : ENTRY_PREFIX.size + 8], "big")
            first = int.from_bytes(head[ENTRY_PREFIX.size + 8 : ENTRY_PREFIX.size + 16], "big")
            heads.append(EntryHead(position, ENTRY_PREFIX.size + length, kind, first, count))
            position += ENTRY_PREFIX.size + length
    return heads


def read_block(path: Path, head: EntryHead, *, chain: str, sequence: int) -> ParsedBlock:
    """Read and check one block found by ``entry_heads``."""
    with path.open("rb") as handle:
        handle.seek(head.offset)
        entry = handle.read(head.size)
    try:
        return parse_block(memoryview(entry)[ENTRY_PREFIX.size :], head.offset)
    except IntegrityError as exc:
        raise IntegrityError(
            str(exc),
            location={"chain": chain, "segment": sequence, "offset": head.offset},
        ) from None
