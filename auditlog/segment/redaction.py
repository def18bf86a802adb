"""Rewriting a sealed segment with some records' frames removed and everything else kept."""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

from auditlog import note
from auditlog._fs import atomic_replace, create_exclusive, make_private_dir, read_note
from auditlog.errors import IntegrityError, NoteError
from auditlog.segment.blocks import redact_block
from auditlog.segment.format import FILE_HEADER, RedactionNote
from auditlog.segment.scan import scan_segment

__all__ = ["RedactionStore", "rewrite_segment"]


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
    parts = [data[: FILE_HEADER.size]]
    offset = FILE_HEADER.size
    block_index = []
    removed = 0
    for block in scan.blocks:
        positions = redactions.get(block.header.first_index)
        if positions:
            removed += len(positions - block.redacted)
            new_entry = redact_block(block, positions)
        else:
            new_entry = data[block.offset : block.offset + block.size]
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


class RedactionStore:
    """Signed notes naming the records a redaction removed: ``redactions/<time>-<n>.note``.

    Verification accepts a frame missing from a block only when a note signed by the log's
    key names its index, so nobody with write access to the files can erase a record's frame
    unnoticed.
    """

    def __init__(self, directory: Path, origin: str, verifier_key: str | None) -> None:
        self.directory = directory
        self.origin = origin
        self.verifier_key = verifier_key

    def save(self, indexes: list[int], at_micros: int, signer_key: str) -> Path:
        text = RedactionNote(self.origin, tuple(indexes), at_micros).text()
        make_private_dir(self.directory)
        path = self.directory / f"{at_micros:020d}-{len(indexes)}-{secrets.token_hex(4)}.note"
        create_exclusive(path, note.sign(text, signer_key).encode("utf-8"))
        return path

    def indexes(self) -> set[int]:
        """Every index a signed redaction note names (signatures checked with a key)."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(".note"))
        except FileNotFoundError:
            return set()
        found: set[int] = set()
        for name in names:
            signed = read_note(self.directory / name, "redaction note", {"redaction": name})
            try:
                text = (
                    note.open_note(signed, [self.verifier_key])
                    if self.verifier_key
                    else signed.split("\n\n", 1)[0] + "\n"
                )
            except NoteError as exc:
                raise IntegrityError(
                    f"redaction note {name} is not signed by the log: {exc}; restore it from a "
                    "backup",
                    location={"redaction": name},
                ) from None
            try:
                redaction = RedactionNote.from_text(text)
            except IntegrityError:
                redaction = None
            if redaction is None or redaction.origin != self.origin:
                raise IntegrityError(
                    f"redaction note {name} is malformed: it was changed or damaged; restore it "
                    "from a backup",
                    location={"redaction": name},
                )
            found.update(redaction.indexes)
        return found
