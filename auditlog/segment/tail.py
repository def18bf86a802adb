"""The open tail of a chain as a writer's open sees it: entry heads, the last block in full.

``read_tail`` reads a chain's last segment without hashing all of it: it hops along the entries
reading each block's header (and the stored hash of the block before, which its header must
name), so every block's place, count, times and link in the hash chain are checked, and it
parses and hashes the last block in full (a torn tail is told from damage there, as
``scan_segment`` does). The frame bytes of the other blocks are not read: their hashes are
``verify``'s to check (docs/threat-model.md, "Opening for write").

``tree_from_tiles`` builds the tree at the end of the segment from the chain's tiles, on top of
an authenticated start (a seal's or tombstone's frontier), and the leaves of the blocks the
tiles do not hold yet; it is used only when its root is the one the last block's header names.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from auditlog.errors import ConfigurationError, IntegrityError
from auditlog.merkle import CompactRange, range_nodes
from auditlog.segment.blocks import ParsedBlock, parse_block
from auditlog.segment.check import ChainCheck
from auditlog.segment.format import (
    BLOCK_HEADER,
    ENTRY_BLOCK,
    ENTRY_PREFIX,
    ENTRY_SEAL,
    FILE_HEADER,
    HASH_BYTES,
    LEAF_BYTES,
    MAX_ENTRY_BYTES,
    TIME_GRANULE_US,
    BlockHeader,
    FileHeader,
    Seal,
    entry_prefix,
)
from auditlog.segment.scan import SegmentScan, check_file_header, scan_segment
from auditlog.segment.tiles import StrideNodes, TileStore

__all__ = ["BlockHead", "SegmentTail", "TailVouch", "read_tail", "tree_from_tiles", "vouch"]

_HEAD = ENTRY_PREFIX.size + BLOCK_HEADER.size  # an entry's prefix and a block header


@dataclass(frozen=True, slots=True)
class BlockHead:
    """A block's header and where its entry is (its body not read, or read and checked)."""

    header: BlockHeader
    offset: int
    size: int


@dataclass
class SegmentTail:
    """What a writer's open needs of a chain's last segment (see ``read_tail``)."""

    sequence: int
    path: Path
    first_index: int  # -1: the file header never reached the disk
    blocks: list[BlockHead]
    seal: Seal | None
    size: int
    good_size: int  # end of the last complete, well-formed entry
    torn_bytes: int
    last_block: ParsedBlock | None = None  # the last block, checked in full
    unvouched: TailVouch | None = None
    """Set when the tree was taken from the tiles: what to re-check before it is signed."""

    @property
    def record_count(self) -> int:
        return sum(b.header.count for b in self.blocks)

    @property
    def end_index(self) -> int:
        return self.blocks[-1].header.tree_size if self.blocks else self.first_index

    @classmethod
    def of_scan(cls, scan: SegmentScan) -> SegmentTail:
        """The tail of a segment that was read and checked whole."""
        return cls(
            scan.sequence,
            scan.path,
            scan.first_index,
            [BlockHead(b.header, b.offset, b.size) for b in scan.blocks],
            scan.seal,
            scan.size,
            scan.good_size,
            scan.torn_bytes,
            scan.blocks[-1] if scan.blocks else None,
        )


@dataclass(frozen=True, slots=True)
class TailVouch:
    """The check a writer that opened through the tiles owes before its tree is first signed
    or sealed: the segment's bytes as they were at the open, read and re-hashed from the
    tree before the segment, must give the tree the tiles gave (docs/threat-model.md,
    "Opening for write"). A signed root is so always one the segments produce."""

    chain: str
    origin: str
    path: Path
    sequence: int
    size: int  # the segment's good bytes at the open
    start: CompactRange  # the tree before the segment (seal, tombstone or start)
    start_hash: bytes
    tree: tuple[bytes, ...]  # the frontier the tiles gave
    last_hash: bytes

    def check(self) -> None:
        """Raise ``IntegrityError`` unless the segment gives the tree the open took."""
        with self.path.open("rb") as handle:
            data = handle.read(self.size)
        scan = scan_segment(data, self.path, self.sequence, chain=self.chain, allow_torn=False)
        start = CompactRange(self.start.begin, self.start.end, self.start.hashes)
        check = ChainCheck(self.chain, self.origin, start, self.start_hash, self.sequence)
        check.feed(scan)
        if check.tree.hashes != self.tree or not hmac.compare_digest(
            check.last_hash, self.last_hash
        ):
            raise IntegrityError(
                "the open segment's records give another tree than its tiles and last block "
                "gave when the chain was opened: the tiles or the segment were changed. "
                "Nothing was signed; run `auditlog verify`",
                location={"chain": self.chain, "segment": self.sequence},
            )


def vouch(unvouched: TailVouch | None) -> TailVouch | None:
    """What a writer calls before its tree is first sealed or signed: ``unvouched.check()``
    if the open took the tree from the tiles (raises ``IntegrityError`` if the segment gives
    another); returns what the writer still owes afterwards: nothing."""
    if unvouched is not None:
        unvouched.check()
    return None


def _zero_from(fd: int, position: int, size: int) -> bool:
    """Whether the file holds only zero bytes from ``position`` to ``size``."""
    while position < size:
        chunk = os.pread(fd, min(1 << 20, size - position), position)
        if not chunk or chunk.count(0) != len(chunk):
            return False
        position += len(chunk)
    return True


def read_tail(
    path: Path, sequence: int, *, chain: str, first_index: int, prev_hash: bytes
) -> SegmentTail:
    """Read the chain's last segment as described in the module doc.

    ``first_index`` and ``prev_hash`` are where the chain stood before the segment (its
    seal, tombstone or start). Raises ``IntegrityError`` for damage; a torn tail is reported
    in the result, not cut.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _read_tail(fd, path, sequence, chain, first_index, prev_hash)
    finally:
        os.close(fd)


def _read_tail(
    fd: int, path: Path, sequence: int, chain: str, first_index: int, prev_hash: bytes
) -> SegmentTail:
    size = os.fstat(fd).st_size
    where: dict[str, object] = {"chain": chain, "segment": sequence}
    header = FileHeader.unpack(os.pread(fd, FILE_HEADER.size, 0))
    if header is None or (not any(header.magic) and _zero_from(fd, 0, size)):
        # A crash while the file was being created: its header never fully reached the disk.
        return SegmentTail(sequence, path, -1, [], None, size, 0, size)
    check_file_header(header, sequence, where)
    if header.first_index != first_index:
        raise IntegrityError(
            f"segment starts at index {header.first_index} but the chain so far ends at "
            f"{first_index}: a segment was removed, duplicated or reordered",
            location=where,
        )
    blocks: list[BlockHead] = []
    seal_at: tuple[int, int] | None = None
    position = FILE_HEADER.size
    expected, stored_hash = first_index, prev_hash
    while position < size:
        remaining = size - position
        entry_where = {**where, "block": len(blocks), "offset": position}
        if seal_at is not None:
            raise IntegrityError("bytes follow the segment's seal", location=entry_where)
        # The block before's stored hash ends right where this entry starts: one read for both.
        back = HASH_BYTES if blocks else 0
        if remaining < ENTRY_PREFIX.size:
            break
        chunk = os.pread(fd, back + _HEAD, position - back)
        if blocks:
            stored_hash, chunk = chunk[:HASH_BYTES], chunk[HASH_BYTES:]
        length = int.from_bytes(chunk[:4], "big")
        if chunk[: ENTRY_PREFIX.size] != entry_prefix(length):
            if _zero_from(fd, position, size):
                break
            raise IntegrityError("an entry's length field is damaged", location=entry_where)
        if not 0 < length <= MAX_ENTRY_BYTES:
            raise IntegrityError(
                f"an entry claims an invalid length {length}", location=entry_where
            )
        if ENTRY_PREFIX.size + length > remaining:
            break
        ends_file = position + ENTRY_PREFIX.size + length == size
        try:
            kind = chunk[ENTRY_PREFIX.size]
            if kind == ENTRY_SEAL:
                seal_at = (position, length)
            elif kind != ENTRY_BLOCK:
                raise IntegrityError(f"unknown entry type {kind}")
            elif length < BLOCK_HEADER.size + HASH_BYTES:
                raise IntegrityError("block is shorter than its header")
            else:
                head = BlockHeader.unpack(chunk[ENTRY_PREFIX.size :])
                _check_head(head, expected, stored_hash, {**entry_where, "index": expected})
                blocks.append(BlockHead(head, position, ENTRY_PREFIX.size + length))
                expected = head.tree_size
        except IntegrityError as exc:
            if ends_file and _zero_from(fd, size - HASH_BYTES, size):
                break  # the last entry was extended with zeros by a crash: a torn write
            raise IntegrityError(
                f"{exc}; run `auditlog repair` only if this is the open tail of the chain, "
                "otherwise restore the segment from a backup",
                location=entry_where,
            ) from None
        position += ENTRY_PREFIX.size + length
    last_block, good = _check_last(fd, blocks, position, size, seal_at is None, where)
    seal = None
    if seal_at is not None and good == size:
        seal = _read_seal_entry(fd, seal_at, where)
    return SegmentTail(
        sequence, path, first_index, blocks, seal, size, good, size - good, last_block
    )


def _check_head(
    head: BlockHeader, expected: int, prev_hash: bytes, where: dict[str, object]
) -> None:
    """What ``ChainCheck`` checks of a block that its header alone shows (not its root)."""
    if head.first_index != expected:
        raise IntegrityError(
            f"block starts at index {head.first_index}, expected {expected}: a block was "
            "removed, duplicated or reordered",
            location=where,
        )
    if not hmac.compare_digest(head.prev_hash, prev_hash):
        raise IntegrityError(
            "block does not name the previous block's hash: the hash chain is broken (a block "
            "was removed, inserted, reordered, or segments were swapped)",
            location=where,
        )
    if head.count < 1 or head.tree_size != head.first_index + head.count:
        raise IntegrityError("block's tree size does not match its count", location=where)
    if head.min_time > head.max_time:
        raise IntegrityError("block's time range is inverted", location=where)
    if head.min_time % TIME_GRANULE_US or head.max_time % TIME_GRANULE_US:
        raise IntegrityError("block's time range is not in whole minutes", location=where)


def _check_last(
    fd: int,
    blocks: list[BlockHead],
    position: int,
    size: int,
    may_be_torn: bool,
    where: dict[str, object],
) -> tuple[ParsedBlock | None, int]:
    """Parse and hash the last block in full; returns it and where the good bytes end.

    A last block whose bytes fail its hash and end the file in 32 zero bytes was being written
    when a crash extended the file with zeros: it is torn, and the one before is checked.
    """
    good = position
    while blocks:
        head = blocks[-1]
        entry = os.pread(fd, head.size, head.offset)
        try:
            block = parse_block(memoryview(entry)[ENTRY_PREFIX.size :], head.offset)
        except IntegrityError as exc:
            ends_file = head.offset + head.size == size
            if may_be_torn and ends_file and not any(entry[-HASH_BYTES:]):
                blocks.pop()
                good = head.offset
                continue
            raise IntegrityError(
                f"{exc}; run `auditlog repair` only if this is the open tail of the chain, "
                "otherwise restore the segment from a backup",
                location={**where, "block": len(blocks) - 1, "offset": head.offset},
            ) from None
        if block.header != head.header:
            raise IntegrityError("block header changed while it was read", location=where)
        return block, good
    return None, good


def _read_seal_entry(fd: int, seal_at: tuple[int, int], where: dict[str, object]) -> Seal:
    offset, length = seal_at
    body = os.pread(fd, length, offset + ENTRY_PREFIX.size)
    try:
        return Seal.unpack(memoryview(body))
    except IntegrityError as exc:
        raise IntegrityError(
            f"{exc}; restore the segment from a backup", location={**where, "seal": True}
        ) from None


def tree_from_tiles(
    tiles: TileStore,
    start: CompactRange,
    tail: SegmentTail,
    segment_fd: int,
) -> tuple[CompactRange, list[tuple[int, bytes, StrideNodes]]] | None:
    """The tree at the end of ``tail``'s blocks: ``start`` (the tree before the segment),
    then the compact range of the leaves the tiles hold (nodes read from the tiles), then the
    leaves of the blocks the tiles do not hold yet, always including the last block's (read
    from the segment). Returns it with those ``(first index, leaves, stride nodes)`` read from
    the segment (what the tiles lack of them is written with ``TileStore.write``), or None when
    the tiles cannot give it.

    Nothing is checked here: the caller uses the tree only if its root is the one the last
    block's header names (and a signed checkpoint's, where one falls inside).
    """
    if not tail.blocks:
        return CompactRange(start.begin, start.end, start.hashes), []
    last = tail.blocks[-1].header
    try:
        held = os.stat(tiles.path(0)).st_size // LEAF_BYTES
    except FileNotFoundError:
        held = 0
    if held < start.end:
        return None  # the tiles lack leaves before the segment: only a rebuild mends that
    cut = min(held, last.first_index)
    try:
        nodes = range_nodes(start.end, cut)
        hashes = [tiles.node(level, index, cut) for level, index in nodes]
    except (IntegrityError, ConfigurationError, OSError):
        return None
    tree = CompactRange(start.begin, start.end, start.hashes)
    tree.merge(CompactRange(start.end, cut, hashes))
    pieces: list[tuple[int, bytes, StrideNodes]] = []
    for head in tail.blocks[:-1]:
        header = head.header
        if header.tree_size <= cut:
            continue
        skip = max(cut - header.first_index, 0)
        want = (header.count - skip) * LEAF_BYTES
        leaves = os.pread(segment_fd, want, head.offset + _HEAD + skip * LEAF_BYTES)
        if len(leaves) != want:
            return None
        pieces.append((header.first_index + skip, leaves, []))
    if tail.last_block is None:
        return None
    # The last block's leaves as its checked bytes hold them.
    pieces.append((last.first_index, bytes(tail.last_block.leaves), []))
    for _, leaves, stride_nodes in pieces:
        tree.extend_joined(leaves, stride_nodes)
    return tree, pieces
