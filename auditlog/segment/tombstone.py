"""Tombstones: what stands in for segments a retention sweep deleted, so the rest still verifies.

A tombstone is a C2SP signed note, signed with the log's checkpoint key, whose text names the
deleted segments and indexes, the hash chain around them (the hash the first deleted block
named, and the last deleted block's hash), the compact range of the deleted leaves (O(log n)
hashes: with them the tree of what remains recomputes to the same roots) and the frontier of
the tree at the end of the range (so a writer can go on after it). Text, one field a line::

    auditlog-tombstone/v1
    origin <chain origin>
    segments <first sequence> <last sequence>
    indexes <first index> <end index>
    prev <base64>
    last <base64>
    range <base64> ...
    frontier <base64> ...
    periods <period> ...
    deleted <UTC microseconds>
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from auditlog import note
from auditlog._fs import create_exclusive, make_private_dir
from auditlog.errors import IntegrityError, NoteError
from auditlog.merkle import CompactRange

__all__ = ["Tombstone", "TombstoneStore"]

_MAGIC: Final = "auditlog-tombstone/v1"


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
            raise IntegrityError("a tombstone names an empty or inverted range")
        # Both ranges must decompose exactly as their sizes say; CompactRange checks that.
        CompactRange(self.first_index, self.end_index, self.range_hashes)
        CompactRange(0, self.end_index, self.frontier)

    def text(self) -> str:
        lines = [
            _MAGIC,
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
        if len(lines) != 10 or lines[0] != _MAGIC:
            raise IntegrityError("not an auditlog tombstone of a known version")
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
            raise IntegrityError("a tombstone is malformed") from None

    def range(self) -> CompactRange:
        return CompactRange(self.first_index, self.end_index, self.range_hashes)


class TombstoneStore:
    """The tombstones of one chain, ``tombstones/<first>-<last>.tomb``, signed notes."""

    def __init__(self, directory: Path, origin: str, verifier_key: str | None) -> None:
        self.directory = directory
        self.origin = origin
        self.verifier_key = verifier_key

    def path(self, first_sequence: int, last_sequence: int) -> Path:
        return self.directory / f"{first_sequence:010d}-{last_sequence:010d}.tomb"

    def save(self, tombstone: Tombstone, signer_key: str) -> Path:
        """Store a signed tombstone durably; storing the same one again is a no-op."""
        make_private_dir(self.directory)
        path = self.path(tombstone.first_sequence, tombstone.last_sequence)
        signed = note.sign(tombstone.text(), signer_key)
        try:
            create_exclusive(path, signed.encode("utf-8"))
        except FileExistsError:
            if self._open(path) != tombstone:
                raise IntegrityError(
                    f"another tombstone for the same segments exists at {path.name}",
                    location={"tombstone": path.name},
                ) from None
        return path

    def _open(self, path: Path) -> Tombstone:
        signed = path.read_text("utf-8")
        if self.verifier_key is None:
            text = signed.split("\n\n", 1)[0] + "\n"
        else:
            try:
                text = note.open_note(signed, [self.verifier_key])
            except NoteError as exc:
                raise IntegrityError(
                    f"tombstone {path.name} is not signed by the log: {exc}",
                    location={"tombstone": path.name},
                ) from None
        tombstone = Tombstone.from_text(text)
        if (
            tombstone.origin != self.origin
            or path.name != self.path(tombstone.first_sequence, tombstone.last_sequence).name
        ):
            raise IntegrityError(
                f"tombstone {path.name} belongs elsewhere", location={"tombstone": path.name}
            )
        return tombstone

    def load(self) -> dict[int, Tombstone]:
        """Every tombstone, by the first segment sequence it stands for."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(".tomb"))
        except FileNotFoundError:
            return {}
        found = {}
        for name in names:
            tombstone = self._open(self.directory / name)
            found[tombstone.first_sequence] = tombstone
        return found
