"""Format v1 of a chain's files: every header's layout, how to build it and how to parse it.

This module is the one place that knows the bytes of (docs/format.md):

- segment files: a 32-byte file header followed by entries; an entry is a 4-byte body length,
  the CRC-32 of those 4 bytes, and the body. A body is a block (type 1) or the seal (type 2)
  that closes the segment. Every body ends with the SHA-256 of the bytes before it, so any
  change to any byte of a complete entry is detected without keys. Block headers, seals, and
  the peeks that read a few bytes of a file (its header, an entry's head) are here; the rest
  of a block body (leaves, frames, block hash) is built and checked in ``blocks``;
- tombstones: the signed text standing for segments a sweep deleted;
- redaction notes: the signed text naming the records a redaction removed.

Integers are big-endian.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import Final

from auditlog.errors import IntegrityError
from auditlog.merkle import CompactRange

__all__ = [
    "BLOCK_HEADER",
    "ENTRY_PREFIX",
    "FILE_HEADER",
    "FORMAT_VERSION",
    "MAGIC",
    "BlockHeader",
    "EntryHead",
    "FileHeader",
    "RedactionNote",
    "Seal",
    "Tombstone",
    "entry_prefix",
    "frame_nonce",
    "genesis_hash",
    "peek_entry",
]

MAGIC: Final = b"\x89ALSEG\r\n"
FORMAT_VERSION: Final = 1
BLOCK_VERSION: Final = 1
SEAL_VERSION: Final = 1
ENTRY_BLOCK: Final = 0x01
ENTRY_SEAL: Final = 0x02
HASH_BYTES: Final = 32
LEAF_BYTES: Final = 32
REDACTED: Final = 0x8000_0000  # bit of a frame length: the slot holds the frame's SHA-256
MAX_ENTRY_BYTES: Final = 1 << 28  # 256 MiB: far above any block the writer makes
TIME_GRANULE_US: Final = 60_000_000  # block header times are whole minutes (floor / ceiling)

# magic, version, flags, reserved, segment sequence number, first index
FILE_HEADER: Final = struct.Struct(">8sHHIQQ")
# body length, CRC-32 of the 4 length bytes
ENTRY_PREFIX: Final = struct.Struct(">II")
# type, version, flags, count, first index, tree size, period, dictionary id,
# min time, max time, block salt, previous block hash, tree root
BLOCK_HEADER: Final = struct.Struct(">BBHIQQIIqq16s32s32s")
# type, version, flags, block count, first index, end index, sealed at,
# last block hash, tree root, frontier hash count
SEAL_HEADER: Final = struct.Struct(">BBHIQQq32s32sB")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_BLOCK_INDEX_ITEM = struct.Struct(">QQ")


_RESTORE: Final = ": it was changed or damaged; restore it from a backup"


def genesis_hash(origin: str) -> bytes:
    """The 'previous block hash' of a chain's very first block; binds the chain to its origin."""
    return hashlib.sha256(b"auditlog/v1 genesis\0" + origin.encode("utf-8")).digest()


def frame_nonce(position: int) -> bytes:
    """The AES-GCM nonce of the record at ``position`` within its block (the key is per block)."""
    return position.to_bytes(12, "big")


_NONCES: tuple[bytes, ...] = ()
_NONCES_LOCK = threading.Lock()


def frame_nonces(count: int) -> tuple[bytes, ...]:
    """The nonces of positions 0 .. count-1, cached because every block needs them."""
    global _NONCES
    cached = _NONCES
    if len(cached) < count:
        with _NONCES_LOCK:
            cached = _NONCES
            if len(cached) < count:
                cached = _NONCES = tuple(frame_nonce(p) for p in range(count))
    return cached[:count]


def frame_aad(origin_prefix: bytes, index: int, leaf: bytes) -> bytes:
    """Associated data of a frame: origin, NUL, the record's chain index, its leaf hash."""
    return origin_prefix + index.to_bytes(8, "big") + leaf


def entry_prefix(body_length: int) -> bytes:
    """The 8 bytes before an entry body: its length and a CRC-32 that vouches for the length."""
    length = _U32.pack(body_length)
    return length + _U32.pack(zlib.crc32(length))


def file_header(sequence: int, first_index: int) -> bytes:
    """The 32 bytes that begin segment ``sequence``, whose first record is ``first_index``."""
    return FILE_HEADER.pack(MAGIC, FORMAT_VERSION, 0, 0, sequence, first_index)


@dataclass(frozen=True, slots=True)
class FileHeader:
    """The unpacked 32-byte header of a segment file (not yet checked against anything)."""

    magic: bytes
    version: int
    flags: int
    reserved: int
    sequence: int
    first_index: int

    @classmethod
    def unpack(cls, data: bytes | memoryview) -> FileHeader | None:
        """The header at the start of ``data``; None if ``data`` is shorter than a header."""
        if len(data) < FILE_HEADER.size:
            return None
        return cls(*FILE_HEADER.unpack_from(data))


# What ``peek_entry`` reads of an entry: its prefix and the first 16 bytes of its body, which
# hold (for a block) type, version, flags, count and first index.
ENTRY_HEAD_BYTES: Final = ENTRY_PREFIX.size + 16
# What ``first_block_period`` reads of a segment: its header, the first entry's prefix and the
# first block's header.
FIRST_BLOCK_HEAD_BYTES: Final = FILE_HEADER.size + ENTRY_PREFIX.size + BLOCK_HEADER.size


@dataclass(frozen=True, slots=True)
class EntryHead:
    """Where an entry is, and what its first bytes say (type, first index, count)."""

    offset: int
    size: int
    kind: int
    first_index: int
    count: int


def peek_entry(head: bytes, offset: int, file_size: int) -> EntryHead | None:
    """The entry whose first ``ENTRY_HEAD_BYTES`` are ``head``, at ``offset`` in a file.

    None when the prefix is not one the writer makes (a torn or damaged tail) or the entry runs
    past the end of the file. Nothing of the body is checked: what is then read of a block is
    checked in full (its hash) before use.
    """
    if len(head) < ENTRY_HEAD_BYTES:
        return None
    length, _ = ENTRY_PREFIX.unpack_from(head)
    if head[: ENTRY_PREFIX.size] != entry_prefix(length) or offset + ENTRY_PREFIX.size + length > (
        file_size
    ):
        return None
    body = ENTRY_PREFIX.size
    kind = head[body]
    count = int.from_bytes(head[body + 4 : body + 8], "big")
    first = int.from_bytes(head[body + 8 : body + 16], "big")
    return EntryHead(offset, ENTRY_PREFIX.size + length, kind, first, count)


def first_block_period(head: bytes) -> int | None:
    """The period of a segment's first block, from its first ``FIRST_BLOCK_HEAD_BYTES``.

    None when the segment holds no complete block header yet. Segments roll when a newer
    period arrives, so no block of a segment is of a newer period than its first one.
    """
    if len(head) < FIRST_BLOCK_HEAD_BYTES:
        return None
    period: int = BLOCK_HEADER.unpack_from(head, FILE_HEADER.size + ENTRY_PREFIX.size)[6]
    return period


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The clear, authenticated header of a block (the first 128 bytes of its body)."""

    count: int
    first_index: int
    tree_size: int
    period: int
    dictionary_id: int
    min_time: int
    max_time: int
    block_salt: bytes
    prev_hash: bytes
    tree_root: bytes
    flags: int = 0

    def pack(self) -> bytes:
        return BLOCK_HEADER.pack(
            ENTRY_BLOCK,
            BLOCK_VERSION,
            self.flags,
            self.count,
            self.first_index,
            self.tree_size,
            self.period,
            self.dictionary_id,
            self.min_time,
            self.max_time,
            self.block_salt,
            self.prev_hash,
            self.tree_root,
        )

    @classmethod
    def unpack(cls, body: bytes | memoryview) -> BlockHeader:
        (
            _type,
            version,
            flags,
            count,
            first_index,
            tree_size,
            period,
            dictionary_id,
            min_time,
            max_time,
            block_salt,
            prev_hash,
            tree_root,
        ) = BLOCK_HEADER.unpack_from(body)
        if version != BLOCK_VERSION:
            raise IntegrityError(
                f"block version {version} is not one this auditlog reads ({BLOCK_VERSION}); "
                "upgrade auditlog or check the file for damage"
            )
        if flags:
            raise IntegrityError("block header has unknown flags set")
        return cls(
            count=count,
            first_index=first_index,
            tree_size=tree_size,
            period=period,
            dictionary_id=dictionary_id,
            min_time=min_time,
            max_time=max_time,
            block_salt=block_salt,
            prev_hash=prev_hash,
            tree_root=tree_root,
            flags=flags,
        )


def block_entry_size(count: int, frame_bytes: int) -> int:
    """Bytes a block of ``count`` records with ``frame_bytes`` of frames takes in its file."""
    return (
        ENTRY_PREFIX.size + BLOCK_HEADER.size + count * (LEAF_BYTES + 4) + frame_bytes + HASH_BYTES
    )


@dataclass(frozen=True, slots=True)
class Seal:
    """The last entry of a sealed segment: what the segment holds and where the tree stood."""

    block_count: int
    first_index: int
    end_index: int
    sealed_at: int
    last_block_hash: bytes
    tree_root: bytes
    frontier: tuple[bytes, ...]
    periods: tuple[int, ...]
    block_index: tuple[tuple[int, int], ...]  # (first index, file offset) of each block

    def description(self) -> tuple[object, ...]:
        """What the seal says of its segment and tree (all but when it was sealed), as a tuple
        that a check builds again from the blocks and the tree, and compares whole."""
        return (
            self.block_count,
            self.first_index,
            self.end_index,
            self.last_block_hash,
            self.tree_root,
            self.frontier,
            self.periods,
            self.block_index,
        )

    def pack(self) -> bytes:
        parts = [
            SEAL_HEADER.pack(
                ENTRY_SEAL,
                SEAL_VERSION,
                0,
                self.block_count,
                self.first_index,
                self.end_index,
                self.sealed_at,
                self.last_block_hash,
                self.tree_root,
                len(self.frontier),
            ),
            *self.frontier,
            _U16.pack(len(self.periods)),
            *(_U32.pack(p) for p in self.periods),
            *(_BLOCK_INDEX_ITEM.pack(i, o) for i, o in self.block_index),
        ]
        unhashed = b"".join(parts)
        body = unhashed + hashlib.sha256(unhashed).digest()
        return entry_prefix(len(body)) + body

    @classmethod
    def unpack(cls, body: memoryview) -> Seal:
        if len(body) < SEAL_HEADER.size + HASH_BYTES:
            raise IntegrityError("seal is shorter than its header")
        if hashlib.sha256(body[:-HASH_BYTES]).digest() != bytes(body[-HASH_BYTES:]):
            raise IntegrityError("seal bytes do not match the seal's hash")
        (
            _type,
            version,
            flags,
            block_count,
            first_index,
            end_index,
            sealed_at,
            last_block_hash,
            tree_root,
            frontier_count,
        ) = SEAL_HEADER.unpack_from(body)
        if version != SEAL_VERSION:
            raise IntegrityError(f"seal version {version} is not one this auditlog reads")
        if flags:
            raise IntegrityError("seal has unknown flags set")
        position = SEAL_HEADER.size
        frontier = tuple(
            bytes(body[position + i * HASH_BYTES : position + (i + 1) * HASH_BYTES])
            for i in range(frontier_count)
        )
        position += frontier_count * HASH_BYTES
        try:
            (period_count,) = _U16.unpack_from(body, position)
            position += _U16.size
            periods = struct.unpack_from(f">{period_count}I", body, position)
            position += 4 * period_count
            block_index = tuple(
                _BLOCK_INDEX_ITEM.unpack_from(body, position + i * _BLOCK_INDEX_ITEM.size)
                for i in range(block_count)
            )
        except struct.error:
            raise IntegrityError("seal is truncated") from None
        position += block_count * _BLOCK_INDEX_ITEM.size
        if position != len(body) - HASH_BYTES:
            raise IntegrityError("seal length does not match its contents")
        return cls(
            block_count=block_count,
            first_index=first_index,
            end_index=end_index,
            sealed_at=sealed_at,
            last_block_hash=last_block_hash,
            tree_root=tree_root,
            frontier=frontier,
            periods=tuple(periods),
            block_index=block_index,
        )


# --- Tombstones ------------------------------------------------------------------------------
# A tombstone is a C2SP signed note, signed with the log's checkpoint key, whose text names the
# deleted segments and indexes, the hash chain around them (the hash the first deleted block
# named, and the last deleted block's hash), the compact range of the deleted leaves (O(log n)
# hashes: with them the tree of what remains recomputes to the same roots) and the frontier of
# the tree at the end of the range (so a writer can go on after it). Text, one field a line::
#
#     auditlog-tombstone/v1
#     origin <chain origin>
#     segments <first sequence> <last sequence>
#     indexes <first index> <end index>
#     prev <base64>
#     last <base64>
#     range <base64> ...
#     frontier <base64> ...
#     periods <period> ...
#     deleted <UTC microseconds>

_TOMBSTONE_MAGIC: Final = "auditlog-tombstone/v1"


def _b64(items: tuple[bytes, ...]) -> str:
    return " ".join(base64.b64encode(h).decode("ascii") for h in items)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """The signed stand-in for segments ``first_sequence..last_sequence`` of a chain."""

    origin: str
    first_sequence: int
    last_sequence: int
    first_index: int
    end_index: int
    prev_hash: bytes
    last_block_hash: bytes
    range_hashes: tuple[bytes, ...]
    frontier: tuple[bytes, ...]
    periods: tuple[int, ...]
    deleted_at: int

    def __post_init__(self) -> None:
        if self.last_sequence < self.first_sequence or self.end_index <= self.first_index:
            raise IntegrityError("a tombstone names an empty or inverted range" + _RESTORE)
        # Both ranges must decompose exactly as their sizes say; CompactRange checks that.
        CompactRange(self.first_index, self.end_index, self.range_hashes)
        CompactRange(0, self.end_index, self.frontier)

    def text(self) -> str:
        lines = [
            _TOMBSTONE_MAGIC,
            f"origin {self.origin}",
            f"segments {self.first_sequence} {self.last_sequence}",
            f"indexes {self.first_index} {self.end_index}",
            f"prev {_b64((self.prev_hash,))}",
            f"last {_b64((self.last_block_hash,))}",
            f"range {_b64(self.range_hashes)}".rstrip(),
            f"frontier {_b64(self.frontier)}".rstrip(),
            "periods " + " ".join(map(str, self.periods)),
            f"deleted {self.deleted_at}",
        ]
        return "".join(line.rstrip() + "\n" for line in lines)

    @classmethod
    def from_text(cls, text: str) -> Tombstone:
        lines = text.rstrip("\n").split("\n")
        if len(lines) != 10 or lines[0] != _TOMBSTONE_MAGIC:
            raise IntegrityError("not an auditlog tombstone of a known version" + _RESTORE)
        fields: dict[str, list[str]] = {}
        for line in lines[1:]:
            key, _, rest = line.partition(" ")
            fields[key] = rest.split() if rest else []
        try:
            return cls(
                origin=" ".join(fields["origin"]),
                first_sequence=int(fields["segments"][0]),
                last_sequence=int(fields["segments"][1]),
                first_index=int(fields["indexes"][0]),
                end_index=int(fields["indexes"][1]),
                prev_hash=base64.b64decode(fields["prev"][0], validate=True),
                last_block_hash=base64.b64decode(fields["last"][0], validate=True),
                range_hashes=tuple(base64.b64decode(h, validate=True) for h in fields["range"]),
                frontier=tuple(base64.b64decode(h, validate=True) for h in fields["frontier"]),
                periods=tuple(int(p) for p in fields["periods"]),
                deleted_at=int(fields["deleted"][0]),
            )
        except (KeyError, IndexError, ValueError, binascii.Error, TypeError):
            raise IntegrityError("a tombstone is malformed" + _RESTORE) from None

    def range(self) -> CompactRange:
        return CompactRange(self.first_index, self.end_index, self.range_hashes)


# --- Redaction notes -------------------------------------------------------------------------
# A redaction note is a C2SP signed note naming the records whose frames a redaction removed::
#
#     auditlog-redaction/v1
#     origin <chain origin>
#     indexes <index> ...
#     redacted <UTC microseconds>

_REDACTION_MAGIC: Final = "auditlog-redaction/v1"


@dataclass(frozen=True, slots=True)
class RedactionNote:
    """The text of a signed redaction note: which records of a chain lost their frames."""

    origin: str
    indexes: tuple[int, ...]
    redacted_at: int

    def text(self) -> str:
        return (
            f"{_REDACTION_MAGIC}\norigin {self.origin}\n"
            f"indexes {' '.join(map(str, sorted(self.indexes)))}\nredacted {self.redacted_at}\n"
        )

    @classmethod
    def from_text(cls, text: str) -> RedactionNote:
        """Parse a note's text; raises ``IntegrityError`` (without location) when malformed."""
        lines = text.rstrip("\n").split("\n")
        if (
            len(lines) != 4
            or lines[0] != _REDACTION_MAGIC
            or not lines[1].startswith("origin ")
            or not lines[3].startswith("redacted ")
        ):
            raise IntegrityError("redaction note is malformed" + _RESTORE)
        try:
            indexes = tuple(int(i) for i in lines[2].removeprefix("indexes ").split())
            redacted_at = int(lines[3].removeprefix("redacted "))
        except ValueError:
            raise IntegrityError("redaction note is malformed" + _RESTORE) from None
        return cls(lines[1].removeprefix("origin "), indexes, redacted_at)
