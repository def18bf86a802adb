"""Helpers shared by the integrity tests: deterministic records, small logs, segment surgery.

Records are functions of (chain, index) so that a test, or the parent of a crashed child process,
can recompute exactly what a log must hold. Byte positions come from ``scan_segment`` so tampering
never depends on guessed offsets.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from auditlog import AuditLog, LogConfig
from auditlog.records import ChatMessage, NetworkAddressRecord, Record
from auditlog.segment.blocks import ParsedBlock
from auditlog.segment.format import BLOCK_HEADER, ENTRY_PREFIX, HASH_BYTES, LEAF_BYTES
from auditlog.segment.scan import SegmentScan, list_segments, scan_segment, segment_path
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N

__all__ = [
    "BASE_TIME",
    "HEADER_FIELDS",
    "SMALL_CONFIG",
    "TEST_PASSPHRASE",
    "TEST_SCRYPT_N",
    "block_bytes",
    "chat_record",
    "create_log_with",
    "flip_bit",
    "frame_offset",
    "leaf_offset",
    "network_record",
    "read_segment",
    "record_for",
    "rehash_block",
    "scan_chain",
    "scan_file",
    "segment_file",
    "tree_of_files",
    "write_segment",
]

BASE_TIME = datetime(2024, 1, 5, 8, 0, tzinfo=UTC)

# Small enough that a hundred records make several sealed segments of several blocks each.
SMALL_CONFIG = LogConfig(block_max_records=8, max_segment_records=32, dictionary_samples=16)

# Offsets of the block header fields inside a block body (struct ``>BBHIQQIIqq16s32s32s``).
HEADER_FIELDS: dict[str, tuple[int, int]] = {
    "type": (0, 1),
    "version": (1, 1),
    "flags": (2, 2),
    "count": (4, 4),
    "first_index": (8, 8),
    "tree_size": (16, 8),
    "period": (24, 4),
    "dictionary_id": (28, 4),
    "min_time": (32, 8),
    "max_time": (40, 8),
    "block_salt": (48, 16),
    "prev_hash": (64, 32),
    "tree_root": (96, 32),
}
assert sum(size for _, size in HEADER_FIELDS.values()) == BLOCK_HEADER.size


def chat_record(index: int, *, at: datetime | None = None) -> ChatMessage:
    """The chat record with counter ``index``: every field is a function of the counter."""
    return ChatMessage(
        occurred_at=at or BASE_TIME + timedelta(seconds=index, microseconds=index % 997),
        subject=f"user-{index % 7}",
        service="chat",
        message_id=f"msg-{index}",
        conversation_id=f"conv-{index % 3}",
        sender=f"user-{index % 7}",
        recipients=(f"user-{(index + 1) % 7}", f"user-{(index + 2) % 7}"),
        operation="send",
        content=f"message number {index}: " + "lorem ipsum " * (index % 5),
        client_ip=IPv4Address(0x0A000000 + index),
        client_port=1024 + index % 60000,
    )


def network_record(index: int, *, at: datetime | None = None) -> NetworkAddressRecord:
    """The network record with counter ``index``: every field is a function of the counter."""
    return NetworkAddressRecord(
        occurred_at=at or BASE_TIME + timedelta(seconds=index, microseconds=index % 991),
        subject=f"acct-{index % 11}",
        service="gateway",
        account=f"acct-{index % 11}",
        event="login",
        source_ip=IPv6Address((0x20010DB8 << 96) + index),
        source_port=index % 65536,
        transport="tcp",
        status="success",
    )


def record_for(chain: str, index: int) -> Record:
    """The record a test writes at ``index`` of ``chain`` (chat records unless the chain says)."""
    if chain.startswith("network"):
        return network_record(index)
    return chat_record(index)


def create_log_with(
    path: Path, counts: dict[str, int], *, config: LogConfig = SMALL_CONFIG
) -> None:
    """Create a closed log at ``path`` whose chains hold ``record_for(chain, i)`` for each count."""
    with AuditLog.create(
        path, passphrase=TEST_PASSPHRASE, config=config, scrypt_n=TEST_SCRYPT_N
    ) as log:
        for chain, count in counts.items():
            log.append_many((record_for(chain, i) for i in range(count)), chain=chain)


def segment_file(log: Path, chain: str, sequence: int) -> Path:
    return segment_path(log / "chains" / chain / "segments", sequence)


def scan_file(path: Path, sequence: int, chain: str) -> SegmentScan:
    """Parse one segment file as the chain's last segment would be (a torn tail is allowed)."""
    return scan_segment(path.read_bytes(), path, sequence, chain=chain, allow_torn=True)


def scan_chain(log: Path, chain: str) -> list[SegmentScan]:
    """Every segment of ``chain``, parsed (only the last may end torn)."""
    files = list_segments(log / "chains" / chain / "segments")
    return [
        scan_segment(
            path.read_bytes(), path, sequence, chain=chain, allow_torn=position == len(files) - 1
        )
        for position, (sequence, path) in enumerate(files)
    ]


def read_segment(log: Path, chain: str, sequence: int) -> bytes:
    return segment_file(log, chain, sequence).read_bytes()


def write_segment(log: Path, chain: str, sequence: int, data: bytes) -> None:
    """Overwrite a segment file (sealed ones are 0400: make it writable first)."""
    path = segment_file(log, chain, sequence)
    if path.exists():
        os.chmod(path, 0o600)
    path.write_bytes(data)


def block_bytes(data: bytes, block: ParsedBlock) -> bytes:
    """The whole entry (prefix included) of ``block`` within its file's bytes."""
    return data[block.offset : block.offset + block.size]


def leaf_offset(block: ParsedBlock, position: int) -> int:
    """File offset of the leaf of the record at ``position`` in ``block``."""
    return block.offset + ENTRY_PREFIX.size + BLOCK_HEADER.size + position * LEAF_BYTES


def frame_offset(block: ParsedBlock, position: int) -> int:
    """File offset of the frame of the record at ``position`` in ``block``."""
    count = block.header.count
    start = block.offset + ENTRY_PREFIX.size + BLOCK_HEADER.size + count * (LEAF_BYTES + 4)
    return start + sum(len(frame) for frame in block.frames[:position])


def flip_bit(path: Path, offset: int, bit: int = 0) -> None:
    """Flip one bit of a file in place (making a sealed segment writable first)."""
    os.chmod(path, 0o600)
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def rehash_block(entry: bytearray) -> bytes:
    """An entry whose block hash is recomputed after a change: what a forger would write.

    The block hash covers header, leaves, frame lengths and each frame's SHA-256
    (docs/format.md); the forger recomputes exactly that.
    """
    body = entry[ENTRY_PREFIX.size : len(entry) - HASH_BYTES]
    count = int.from_bytes(body[4:8], "big")
    lengths_start = BLOCK_HEADER.size + count * LEAF_BYTES
    frames_start = lengths_start + 4 * count
    lengths = [
        int.from_bytes(body[lengths_start + 4 * i : lengths_start + 4 * i + 4], "big")
        for i in range(count)
    ]
    digests = b""
    position = frames_start
    for length in lengths:
        digests += hashlib.sha256(body[position : position + length]).digest()
        position += length
    material = bytes(body[:frames_start]) + digests
    entry[len(entry) - HASH_BYTES :] = hashlib.sha256(material).digest()
    return bytes(entry)


def tree_of_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its bytes, by relative path."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
