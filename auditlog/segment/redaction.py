"""Rewriting a sealed segment with some records' frames removed and everything else kept."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from auditlog._fs import atomic_replace
from auditlog.errors import IntegrityError
from auditlog.segment.format import ENTRY_PREFIX, FILE_HEADER, redact_block
from auditlog.segment.scan import scan_segment

__all__ = ["rewrite_segment"]


def rewrite_segment(path: Path, sequence: int, chain: str, redactions: dict[int, set[int]]) -> int:
    """Replace the frames named by ``redactions`` (block first index -> positions) by digests.

    The segment must be sealed. Its blocks keep their hashes, so the chain, the tree and all
    checkpoints still verify; the seal is rewritten only because block offsets moved. The old
    file is overwritten before it is released. Returns the number of frames removed.
    """
    data = path.read_bytes()
    scan = scan_segment(data, path, sequence, chain=chain, allow_torn=False)
    if scan.seal is None:
        raise IntegrityError(
            "only sealed segments are rewritten", location={"chain": chain, "segment": sequence}
        )
    view = memoryview(data)
    parts = [data[: FILE_HEADER.size]]
    offset = FILE_HEADER.size
    block_index = []
    removed = 0
    for block in scan.blocks:
        entry = view[block.offset : block.offset + block.size]
        positions = redactions.get(block.header.first_index)
        if positions:
            removed += len(positions - block.redacted)
            new_entry = redact_block(block, entry[ENTRY_PREFIX.size :], positions)
        else:
            new_entry = bytes(entry)
        block_index.append((block.header.first_index, offset))
        parts.append(new_entry)
        offset += len(new_entry)
    seal = dataclasses.replace(scan.seal, block_index=tuple(block_index))
    parts.append(seal.pack())
    rewritten = b"".join(parts)
    check = scan_segment(rewritten, path, sequence, chain=chain, allow_torn=False)
    if [b.block_hash for b in check.blocks] != [b.block_hash for b in scan.blocks]:
        raise IntegrityError("rewriting a segment changed a block hash; nothing was written")
    os.chmod(path, 0o600)
    atomic_replace(path, rewritten)
    os.chmod(path, 0o400)
    return removed
