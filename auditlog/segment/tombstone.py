"""Where a chain's tombstones are kept: ``tombstones/<first>-<last>.tomb``, signed notes.

A tombstone stands for segments a retention sweep deleted, so the rest of the chain still
verifies; its text format is ``format.Tombstone``.
"""

from __future__ import annotations

import os
from pathlib import Path

from auditlog import note
from auditlog._fs import create_exclusive, make_private_dir, read_note
from auditlog.errors import IntegrityError, NoteError
from auditlog.segment.format import Tombstone

__all__ = ["TombstoneStore", "tombstone_name", "tombstone_range"]


def tombstone_name(first_sequence: int, last_sequence: int) -> str:
    """The file name of the tombstone of segments ``first_sequence`` to ``last_sequence``."""
    return f"{first_sequence:010d}-{last_sequence:010d}.tomb"


def tombstone_range(name: str) -> tuple[int, int] | None:
    """The segments (first, last) a tombstone's file name stands for; None if not one."""
    first, dash, last = name.removesuffix(".tomb").partition("-")
    if not name.endswith(".tomb") or not dash:
        return None
    if first.isascii() and first.isdigit() and last.isascii() and last.isdigit():
        return int(first), int(last)
    return None


class TombstoneStore:
    """The tombstones of one chain, ``tombstones/<first>-<last>.tomb``, signed notes."""

    def __init__(self, directory: Path, origin: str, verifier_key: str | None) -> None:
        self.directory = directory
        self.origin = origin
        self.verifier_key = verifier_key

    def path(self, first_sequence: int, last_sequence: int) -> Path:
        return self.directory / tombstone_name(first_sequence, last_sequence)

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
        signed = read_note(path, "tombstone", {"tombstone": path.name})
        if self.verifier_key is None:
            text = signed.split("\n\n", 1)[0] + "\n"
        else:
            try:
                text = note.open_note(signed, [self.verifier_key])
            except NoteError as exc:
                raise IntegrityError(
                    f"tombstone {path.name} is not signed by the log: {exc}; restore it from a "
                    "backup",
                    location={"tombstone": path.name},
                ) from None
        tombstone = Tombstone.from_text(text)
        if (
            tombstone.origin != self.origin
            or path.name != self.path(tombstone.first_sequence, tombstone.last_sequence).name
        ):
            raise IntegrityError(
                f"tombstone {path.name} belongs elsewhere (another chain, log or place): restore "
                "this chain's own from a backup",
                location={"tombstone": path.name},
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
