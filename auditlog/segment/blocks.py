"""Block bodies: build one from its header, leaves and frames; check and split a stored one.

The header layouts (``BlockHeader``, the entry prefix) are in ``format``; this module handles
what follows the header: the leaves, the frame lengths, the frames and the block hash, and the
redaction of frames in place (docs/format.md, "Blocks" and "Redaction").
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from auditlog._fast import block_frames, frame_digests
from auditlog._fast import digests as frame_digests_of
from auditlog.errors import IntegrityError
from auditlog.segment.format import (
    BLOCK_HEADER,
    ENTRY_PREFIX,
    HASH_BYTES,
    LEAF_BYTES,
    REDACTED,
    BlockHeader,
    block_entry_size,
    entry_prefix,
)

__all__ = [
    "ParsedBlock",
    "block_hash_of",
    "pack_block",
    "parse_block",
    "redact_block",
    "split_block",
]

_U32 = struct.Struct(">I")


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
    end = len(body) - HASH_BYTES
    redacted: frozenset[int] = frozenset()
    fast = block_frames(body)
    if fast is not None:
        # The common case, in one C call: the frame digests and the block hash in one pass,
        # and the frame bounds as an array (no Python object per record). Keyless
        # verification spends its time here.
        computed, packed_bounds = fast
        bounds = memoryview(packed_bounds).cast("q")
        starts: Sequence[int] = bounds[:-1]
        stops: Sequence[int] = bounds[1:]
    else:
        starts, stops, computed, redacted = _general_frames(body, count, lengths_start, end)
    stored_hash = bytes(body[end:])
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


def split_block(body: memoryview, offset: int) -> ParsedBlock:
    """A block's parts without its hash recomputed: for reading a few of its records.

    Each record read from it is still authenticated on its own by ``decrypt_block``: its frame
    by AES-GCM, whose associated data holds its index and leaf, and its decrypted bytes by its
    leaf. Damage elsewhere in the block is left to verification (docs/format.md, "Reading
    records"). A block with redacted slots, or one that does not split cleanly, goes through
    ``parse_block`` and its checks.
    """
    size = len(body)
    if size < BLOCK_HEADER.size + HASH_BYTES:
        return parse_block(body, offset)
    (count,) = _U32.unpack_from(body, 4)
    lengths_start = BLOCK_HEADER.size + count * LEAF_BYTES
    frames_start = lengths_start + 4 * count
    end = size - HASH_BYTES
    if count < 1 or frames_start > end:
        return parse_block(body, offset)
    lengths = struct.unpack_from(f">{count}I", body, lengths_start)
    if max(lengths) >= REDACTED:
        return parse_block(body, offset)
    bounds = list(accumulate(lengths, initial=frames_start))
    if bounds[-1] != end:
        return parse_block(body, offset)
    return ParsedBlock(
        header=BlockHeader.unpack(body),
        block_hash=bytes(body[end:]),
        leaves=body[BLOCK_HEADER.size : lengths_start],
        body=body,
        frame_starts=bounds[:-1],
        frame_stops=bounds[1:],
        offset=offset,
        size=ENTRY_PREFIX.size + size,
    )


def _general_frames(
    body: memoryview, count: int, lengths_start: int, end: int
) -> tuple[list[int], list[int], bytes, frozenset[int]]:
    """Frame bounds, recomputed block hash and redacted positions of a block that
    ``block_frames`` does not take: one with redacted slots, or a malformed one (raised)."""
    frames_start = lengths_start + count * 4
    if count < 1 or frames_start > end:
        raise IntegrityError("block record count does not fit the block")
    stored = struct.unpack_from(f">{count}I", body, lengths_start)
    redacted: frozenset[int] = frozenset()
    if max(stored) < REDACTED:
        starts = list(accumulate(stored, initial=frames_start))
        stops = starts[1:]
        if starts[-1] != end:
            raise IntegrityError("block frame lengths do not add up to the block's size")
        lengths: bytes | memoryview = body[lengths_start:frames_start]
        digests = frame_digests(body, frames_start, stored)
        del starts[-1]
    else:
        starts, stops, digests, redacted = _redacted_frames(body, stored, frames_start, end)
        lengths = struct.pack(f">{count}I", *(value & ~REDACTED for value in stored))
    computed = block_hash_of(
        body[: BLOCK_HEADER.size], body[BLOCK_HEADER.size : lengths_start], lengths, digests
    )
    return starts, stops, computed, redacted


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
