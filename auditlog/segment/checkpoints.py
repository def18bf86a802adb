"""A chain's signed checkpoints: ``checkpoints/<tree size, 20 digits>.note``, one per size.

Checkpoints are written at every segment seal and when asked for. A file is never replaced:
two checkpoints of one size with different roots are a fork, and both are kept as evidence.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from auditlog import note
from auditlog._fs import create_exclusive, make_private_dir, read_note
from auditlog.errors import ConfigurationError, ForkError

__all__ = ["CheckpointStore"]


class CheckpointStore:
    """The signed checkpoints of one chain, one immutable file per tree size."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, size: int) -> Path:
        return self.directory / f"{size:020d}.note"

    def save(self, signed: str, size: int, root: bytes) -> None:
        """Store a checkpoint; an existing one of the same size must say the same root.

        Two checkpoints of one size with different roots are a fork: both are kept and
        ``ForkError`` is raised.
        """
        make_private_dir(self.directory)
        path = self.path(size)
        try:
            create_exclusive(path, signed.encode("utf-8"))
            return
        except FileExistsError:
            existing = path.read_text("utf-8")
        old_root = note.Checkpoint.from_text(existing.split("\n\n", 1)[0] + "\n").root_hash
        if old_root == root:
            return
        evidence = (
            self.directory
            / f"{size:020d}.fork-{hashlib.sha256(signed.encode()).hexdigest()[:16]}.note"
        )
        create_exclusive(evidence, signed.encode("utf-8"))
        raise ForkError(
            f"a checkpoint of size {size} with another root already exists: the chain was "
            f"rewritten; both are kept ({path.name}, {evidence.name})",
            location={"size": size},
        )

    def sizes(self) -> list[int]:
        """Tree sizes of the stored checkpoints, ascending."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(
            int(n[:20])
            for n in names
            if len(n) == 25 and n.endswith(".note") and n[:20].isascii() and n[:20].isdigit()
        )

    def get(self, size: int) -> str:
        try:
            path = self.path(size)
            return read_note(path, "checkpoint", {"checkpoint": path.name})
        except FileNotFoundError:
            raise ConfigurationError(
                f"no checkpoint of size {size} is stored; make one with `auditlog checkpoint` "
                "(checkpoints exist at every segment seal and when asked for)"
            ) from None

    def latest(self) -> tuple[int, str] | None:
        sizes = self.sizes()
        return (sizes[-1], self.get(sizes[-1])) if sizes else None

    def covering(self, size: int) -> tuple[int, str]:
        """The smallest stored checkpoint whose tree has at least ``size`` leaves."""
        for candidate in self.sizes():
            if candidate >= size:
                return candidate, self.get(candidate)
        raise ConfigurationError(
            f"no stored checkpoint covers {size} records yet; make one with `auditlog checkpoint`"
        )
