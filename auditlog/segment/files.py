"""The files of one chain: where each lives in the chain's directory, and the chain's lock.

A chain's directory (``chains/<chain>/`` in a log, docs/format.md "Layout") holds::

    LOCK            held by the chain's single writer (flock); it holds the writer's pid
    keyring         the chain's data keys, wrapped by the root key
    sweep.journal   a sweep's signed plan, present only while a sweep is unfinished
    segments/       append-only segment files, <sequence>.seg
    dicts/          zstd dictionaries, encrypted under their period's key
    tiles/          stored tree nodes for O(log n) proofs
    checkpoints/    signed checkpoints, one file per tree size
    tombstones/     signed stand-ins for segments a sweep deleted
    redactions/     signed notes naming records whose frames a redaction removed
    quarantine/     bytes ``repair`` cut from a damaged tail, kept as evidence

Every other module asks a ``ChainFiles`` for these paths instead of spelling them.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from auditlog._fs import FILE_MODE
from auditlog.errors import LogLockedError

__all__ = ["ChainFiles", "acquire_chain_lock"]


@dataclass(frozen=True, slots=True)
class ChainFiles:
    """The paths of one chain's files, under ``directory``."""

    directory: Path

    @property
    def lock(self) -> Path:
        return self.directory / "LOCK"

    @property
    def keyring(self) -> Path:
        return self.directory / "keyring"

    @property
    def sweep_journal(self) -> Path:
        return self.directory / "sweep.journal"

    @property
    def segments(self) -> Path:
        return self.directory / "segments"

    @property
    def dicts(self) -> Path:
        return self.directory / "dicts"

    @property
    def tiles(self) -> Path:
        return self.directory / "tiles"

    @property
    def checkpoints(self) -> Path:
        return self.directory / "checkpoints"

    @property
    def tombstones(self) -> Path:
        return self.directory / "tombstones"

    @property
    def redactions(self) -> Path:
        return self.directory / "redactions"

    @property
    def quarantine(self) -> Path:
        return self.directory / "quarantine"


def acquire_chain_lock(files: ChainFiles, chain: str) -> int:
    """Take the chain's writer lock without waiting; the descriptor holds it until closed."""
    fd = os.open(files.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LogLockedError(
            f"chain {chain!r} is already being written by another writer (this or another "
            "process); one writer per chain keeps the chain well-formed: close the other "
            "writer, or give each writer its own chain"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
