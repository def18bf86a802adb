"""Reading segment files without keys: parse entries and tell a torn tail from damage.

``scan_segment`` checks one file's structure and self-hashes; ``check.ChainCheck`` then checks
what links the scans of a chain. Keyless verification, writer recovery and readers all go
through these two, so there is one definition of "intact". ``entry_heads`` and ``read_block``
reach one block of a file without reading the rest; ``read_seal`` reads a sealed segment's seal
(and so its block index) from the file's tail in a few small reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from auditlog.errors import IntegrityError
from auditlog.segment.blocks import ParsedBlock, parse_block
from auditlog.segment.format import (
    ENTRY_BLOCK,
    ENTRY_HEAD_BYTES,
    ENTRY_PREFIX,
    ENTRY_SEAL,
    FILE_HEADER,
    FORMAT_VERSION,
    HASH_BYTES,
    MAGIC,
    MAX_ENTRY_BYTES,
    SEAL_HEADER,
    EntryHead,
    FileHeader,
    Seal,
    entry_prefix,
    peek_entry,
)

__all__ = [
    "SegmentScan",
    "check_file_header",
    "entry_heads",
    "entry_heads_at",
    "list_segments",
    "read_block",
    "read_file_header",
    "read_seal",
    "scan_segment",
    "segment_path",
]

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


def check_file_header(header: FileHeader, sequence: int, where: dict[str, object]) -> None:
    """Raise ``IntegrityError`` unless ``header`` is one this auditlog writes for segment
    ``sequence``."""
    magic, version, flags, reserved, file_sequence = (
        header.magic,
        header.version,
        header.flags,
        header.reserved,
        header.sequence,
    )
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
    header = FileHeader.unpack(view)
    assert header is not None  # the length was checked above
    check_file_header(header, sequence, where)
    first_index = header.first_index
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


def entry_heads(path: Path) -> list[EntryHead]:
    """The entries of a segment from their length prefixes: a few bytes read per block.

    Used to reach one block without reading the segment; what is then read of a block is
    checked in full (its hash) before use. Stops at a torn tail.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        heads, _ = entry_heads_at(fd, FILE_HEADER.size, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    return heads


def entry_heads_at(fd: int, position: int, size: int) -> tuple[list[EntryHead], int]:
    """The entries of an open segment file from ``position`` (an entry's start) to ``size``,
    and where they stop: at ``size``, or at a torn or damaged entry. Nothing of a body is
    checked (see ``entry_heads``)."""
    heads = []
    while position + ENTRY_HEAD_BYTES <= size:
        head = peek_entry(os.pread(fd, ENTRY_HEAD_BYTES, position), position, size)
        if head is None:
            break
        heads.append(head)
        position += head.size
    return heads, position


# What ``read_seal`` reads first: a seal ends in its last block-index item and its hash.
_SEAL_TAIL = 16 + HASH_BYTES


def read_seal(fd: int, size: int) -> tuple[Seal, int] | None:
    """The seal that ends the segment file ``fd`` (``size`` bytes long), and its offset; None
    if the file does not end in a well-formed seal whose block index describes the file.

    A few small reads, whatever the segment holds: the seal's last block-index item names the
    last block's offset; that block's entry head gives where the seal starts; the seal is then
    read whole and its hash checked. Its block index must start right after the file header
    and rise in both index and offset, and its last block must end where the seal starts and
    reach the seal's end index. A seal has no key: it is an index, and every block read
    through it is still checked (its hash, its place) before use.
    """
    if size < FILE_HEADER.size + ENTRY_HEAD_BYTES + ENTRY_PREFIX.size + SEAL_HEADER.size:
        return None
    tail = os.pread(fd, _SEAL_TAIL, size - _SEAL_TAIL)
    last_first = int.from_bytes(tail[:8], "big")
    last_offset = int.from_bytes(tail[8:16], "big")
    if not FILE_HEADER.size <= last_offset <= size - ENTRY_HEAD_BYTES:
        return None
    head = peek_entry(os.pread(fd, ENTRY_HEAD_BYTES, last_offset), last_offset, size)
    if head is None or head.kind != ENTRY_BLOCK or head.first_index != last_first:
        return None
    seal_offset = last_offset + head.size
    if size - seal_offset < ENTRY_PREFIX.size + SEAL_HEADER.size + HASH_BYTES:
        return None
    entry = os.pread(fd, size - seal_offset, seal_offset)
    if entry[: ENTRY_PREFIX.size] != entry_prefix(len(entry) - ENTRY_PREFIX.size):
        return None
    body = memoryview(entry)[ENTRY_PREFIX.size :]
    if body[0] != ENTRY_SEAL:
        return None
    try:
        seal = Seal.unpack(body)
    except IntegrityError:
        return None
    index = seal.block_index
    firsts = [first for first, _ in index]
    offsets = [offset for _, offset in index]
    if (
        not index
        or index[0] != (seal.first_index, FILE_HEADER.size)
        or index[-1] != (last_first, last_offset)
        or seal.end_index != head.first_index + head.count
        or any(a >= b for a, b in pairwise(firsts))
        or any(a >= b for a, b in pairwise(offsets))
    ):
        return None
    return seal, seal_offset


def read_file_header(path: Path) -> FileHeader | None:
    """A segment's file header (None if the file is shorter than one); one small read."""
    with path.open("rb") as handle:
        return FileHeader.unpack(handle.read(FILE_HEADER.size))


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
