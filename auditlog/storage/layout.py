"""The layout of a log directory: where the manifest, keys, holds and chains are.

A log is a directory::

    manifest.json       format version, origin, configuration, retention policies (no user data)
    head.note           the signed head: binds every file but the segments (``log/head.py``)
    holds.json          every legal hold ever placed (subjects only as keyed tokens)
    LOCK                taken while shared files change (manifest, holds, head, events)
    keys/root.key       the root key, wrapped by the passphrase (default key provider)
    keys/checkpoint.key the log's checkpoint signing key, wrapped by the root key
    keys/hold.key       the key of subject tokens in holds, wrapped by the root key
    chains/<chain>/     one directory per chain (``auditlog.segment.files.ChainFiles``)
    chains/_log/        the log's own events (``EVENTS_CHAIN``), a chain like the others
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from auditlog._fs import FILE_MODE
from auditlog.errors import ConfigurationError
from auditlog.segment.files import ChainFiles

__all__ = ["CHAIN_ID_PATTERN", "EVENTS_CHAIN", "LogLayout", "check_chain_id"]

CHAIN_ID_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
"""Chain ids: names of streams (``chat``, ``network.eu-1``), never user data."""

ROOT_KEY_FILE: Final = "keys/root.key"
"""The root key file's path inside the log, as the manifest names it."""

EVENTS_CHAIN: Final = "_log"
"""The log's own chain of events (policies, holds, sweeps, rotations, redactions, ...). Its id
cannot be a user's chain id (those start with a letter or digit)."""


def check_chain_id(chain: str) -> str:
    """``chain`` if it is a valid chain id, else ``ConfigurationError`` saying what is."""
    if not CHAIN_ID_PATTERN.fullmatch(chain):
        raise ConfigurationError(
            f"invalid chain id {chain!r}: use 1-63 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit (chain ids are names of streams, never user data)"
        )
    return chain


class LogLayout:
    """The paths of one log directory's files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def holds(self) -> Path:
        return self.root / "holds.json"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def root_key(self) -> Path:
        return self.root / ROOT_KEY_FILE

    @property
    def checkpoint_key(self) -> Path:
        return self.keys / "checkpoint.key"

    @property
    def hold_key(self) -> Path:
        return self.keys / "hold.key"

    @property
    def chains(self) -> Path:
        return self.root / "chains"

    @property
    def head(self) -> Path:
        """The log's signed head (``auditlog.log.head``)."""
        return self.root / "head.note"

    def chain(self, chain: str) -> ChainFiles:
        """The files of chain ``chain`` (a valid chain id, or the log's events chain)."""
        if chain == EVENTS_CHAIN:
            return ChainFiles(self.chains / EVENTS_CHAIN)
        return ChainFiles(self.chains / check_chain_id(chain))

    def relative(self, path: Path) -> str:
        """``path`` as the log names it: relative to the log directory, with ``/``."""
        return path.relative_to(self.root).as_posix()

    def chain_names(self) -> list[str]:
        """The chains that exist on disk, sorted."""
        try:
            entries = list(self.chains.iterdir())
        except FileNotFoundError:
            return []
        return sorted(p.name for p in entries if p.is_dir() and CHAIN_ID_PATTERN.fullmatch(p.name))

    @contextmanager
    def log_lock(self) -> Iterator[None]:
        """The log-wide lock, held while shared files (manifest, holds, head, the events chain)
        change and while a verifier reads them together; waits for it.

        Re-entrant within a process (a change may call another that takes it), so one
        ``flock`` per process guards it, and threads of the process take turns.
        """
        lock = _process_lock(self.root / "LOCK")
        with lock.mutex:
            if lock.depth == 0:
                lock.fd = os.open(lock.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
                try:
                    fcntl.flock(lock.fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(lock.fd)
                    raise
            lock.depth += 1
            try:
                yield
            finally:
                lock.depth -= 1
                if lock.depth == 0:
                    os.close(lock.fd)  # closing the descriptor releases the flock


class _ProcessLock:
    """One log lock of this process: a re-entrant mutex around one flock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mutex = threading.RLock()
        self.depth = 0
        self.fd = -1


_PROCESS_LOCKS: dict[Path, _ProcessLock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(path: Path) -> _ProcessLock:
    key = path.resolve()
    with _PROCESS_LOCKS_GUARD:
        lock = _PROCESS_LOCKS.get(key)
        if lock is None:
            lock = _PROCESS_LOCKS[key] = _ProcessLock(key)
        return lock
