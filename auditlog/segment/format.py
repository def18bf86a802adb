"""Segment format v1: the exact bytes of segment files, blocks and seals (docs/format.md).

Integers are big-endian. A segment file is a 32-byte file header followed by entries; an entry
is a 4-byte body length, the CRC-32 of those 4 bytes, and the body. A body is a block (type 1)
or the seal (type 2) that closes the segment. Every body ends with the SHA-256 of the bytes
before it, so any change to any byte of a complete entry is detected without keys.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from auditlog._fast import digests as frame_digests_of
from auditlog._fast import frame_digests
from auditlog.errors import IntegrityError

__all__ = [
    "BLOCK_HEADER",
    "ENTRY_PREFIX",
    "FILE_HEADER",
    "FORMAT_VERSION",
    "MAGIC",
    "BlockHeader",
    "Seal",
    "entry_prefix",
    "frame_nonce",
    "genesis_hash",
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
    return FILE_HEADER.pack(MAGIC, FORMAT_VERSION, 0, 0, sequence, first_index)


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


def block_hash_of(
    header: bytes | memoryview,
    leaves: bytes | memoryview,
    lengths: bytes | memoryview,
    digests: bytes,
) -> bytes:
    """block hash = SHA-256(header || leaves || frame lengths || SHA-256 of each frame).

    Frames enter through their digests so that a redacted frame, replaced by its digest in the
    file, leaves the block hash, and so the hash chain and every later block, unchanged.
    """
    return hashlib.sha256(b"".join((header, leaves, lengths, digests))).digest()


def pack_block(header: BlockHeader, leaves: bytes, frames: list[bytes]) -> tuple[bytes, bytes]:
    """The whole entry of a block (prefix included) and the block's hash."""
    lengths = struct.pack(f">{len(frames)}I", *map(len, frames))
    digests = frame_digests_of(frames)
    packed_header = header.pack()
    block_hash = block_hash_of(packed_header, leaves, lengths, digests)
    body_length = block_entry_size(len(frames), sum(map(len, frames))) - ENTRY_PREFIX.size
    entry = b"".join(
        (entry_prefix(body_length), packed_header, leaves, lengths, *frames, block_hash)
    )
    return entry, block_hash


@dataclass(frozen=True, slots=True)
class ParsedBlock:
    """A block whose structure and self-hash were checked; frames are views into the entry.

    Frame ``i`` is ``body[frame_starts[i]:frame_stops[i]]``, sliced only when asked for
    (keyless verification never asks). A redacted record's frame is an empty view, and its
    position is in ``redacted``.
    """

    header: BlockHeader
    block_hash: bytes
    leaves: memoryview
    body: memoryview
    frame_starts: Sequence[int]
    frame_stops: Sequence[int]
    offset: int
    size: int
    redacted: frozenset[int] = frozenset()

    def leaf(self, position: int) -> bytes:
        start = position * LEAF_BYTES
        return bytes(self.leaves[start : start + LEAF_BYTES])

    def frame(self, position: int) -> memoryview:
        """The stored frame of the record at ``position`` in the block (empty if redacted)."""
        return self.body[self.frame_starts[position] : self.frame_stops[position]]

    @property
    def frames(self) -> list[memoryview]:
        """Every frame, in order (sliced anew on each access)."""
        spans = map(slice, self.frame_starts, self.frame_stops)
        return list(map(self.body.__getitem__, spans))


def parse_block(body: memoryview, offset: int) -> ParsedBlock:
    """Check and split a block body; raises ``IntegrityError`` (without location) when malformed."""
    if len(body) < BLOCK_HEADER.size + HASH_BYTES:
        raise IntegrityError("block is shorter than its header")
    (count,) = _U32.unpack_from(body, 4)
    leaves_start = BLOCK_HEADER.size
    lengths_start = leaves_start + count * LEAF_BYTES
    frames_start = lengths_start + count * 4
    end = len(body) - HASH_BYTES
    if count < 1 or frames_start > end:
        raise IntegrityError("block record count does not fit the block")
    stored = struct.unpack_from(f">{count}I", body, lengths_start)
    redacted: frozenset[int] = frozenset()
    if max(stored) < REDACTED:
        # The common case, the loops in C: the frames are hashed in one call and the stored
        # lengths enter the block hash as they are. Keyless verification spends its time here.
        starts = list(accumulate(stored, initial=frames_start))
        stops: Sequence[int] = starts[1:]
        if starts[-1] != end:
            raise IntegrityError("block frame lengths do not add up to the block's size")
        lengths: bytes | memoryview = body[lengths_start:frames_start]
        digests = frame_digests(body, frames_start, stored)
    else:
        starts, stops, digests, redacted = _redacted_frames(body, stored, frames_start, end)
        lengths = struct.pack(f">{count}I", *(value & ~REDACTED for value in stored))
    stored_hash = bytes(body[end:])
    computed = block_hash_of(
        body[:leaves_start], body[leaves_start:lengths_start], lengths, digests
    )
    if computed != stored_hash:
        raise IntegrityError("block bytes do not match the block's hash")
    return ParsedBlock(
        header=BlockHeader.unpack(body),
        block_hash=stored_hash,
        leaves=body[leaves_start:lengths_start],
        body=body,
        frame_starts=starts,
        frame_stops=stops,
        offset=offset,
        size=ENTRY_PREFIX.size + len(body),
        redacted=redacted,
    )


def _redacted_frames(
    body: memoryview, stored: tuple[int, ...], frames_start: int, end: int
) -> tuple[list[int], list[int], bytes, frozenset[int]]:
    """Frame bounds, joined frame digests and redacted positions of a block with redactions.

    A redacted frame's slot holds the SHA-256 of the frame that was removed: that is its digest,
    and its frame is empty.
    """
    starts: list[int] = []
    stops: list[int] = []
    digests: list[bytes] = []
    redacted: list[int] = []
    position = frames_start
    sha256 = hashlib.sha256
    for slot, value in enumerate(stored):
        starts.append(position)
        if value & REDACTED:
            digests.append(bytes(body[position : position + HASH_BYTES]))
            stops.append(position)
            redacted.append(slot)
            position += HASH_BYTES
        else:
            digests.append(sha256(body[position : position + value]).digest())
            stops.append(position + value)
            position += value
    if position != end:
        raise IntegrityError("block frame lengths do not add up to the block's size")
    return starts, stops, b"".join(digests), frozenset(redacted)


def redact_block(block: ParsedBlock, positions: set[int]) -> bytes:
    """The block's entry with the frames at ``positions`` replaced by their SHA-256.

    Leaves, header and block hash stay as they are: the tree, the hash chain and every
    checkpoint still verify; only the redacted records can no longer be decrypted.
    """
    body = block.body
    count = block.header.count
    lengths_start = BLOCK_HEADER.size + count * LEAF_BYTES
    stored = list(struct.unpack_from(f">{count}I", body, lengths_start))
    frames: list[bytes] = []
    for position, frame in enumerate(block.frames):
        if position in block.redacted:
            # An earlier redaction's slot (its frame is empty) keeps the digest it holds.
            start = block.frame_starts[position]
            frames.append(bytes(body[start : start + HASH_BYTES]))
        elif position in positions:
            frames.append(hashlib.sha256(frame).digest())
            stored[position] = len(frame) | REDACTED
        else:
            frames.append(bytes(frame))
    unhashed = b"".join((bytes(body[:lengths_start]), struct.pack(f">{count}I", *stored), *frames))
    new_body = unhashed + block.block_hash
    return entry_prefix(len(new_body)) + new_body


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
