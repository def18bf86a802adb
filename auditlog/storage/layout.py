"""The layout of a log directory: where the manifest, keys, holds and chains are.

A log is a directory::

    manifest.json       format version, origin, configuration, retention policies (no user data)
    holds.json          every legal hold ever placed (subjects only as keyed tokens)
    LOCK                taken while the manifest or the holds are changed
    keys/root.key       the root key, wrapped by the passphrase (default key provider)
    keys/checkpoint.key the log's checkpoint signing key, wrapped by the root key
    keys/hold.key       the key of subject tokens in holds, wrapped by the root key
    chains/<chain>/     one directory per chain (``auditlog.segment.files.ChainFiles``)
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final

from auditlog._fs import exclusive_lock
from auditlog.errors import ConfigurationError
from auditlog.segment.files import ChainFiles

__all__ = ["CHAIN_ID_PATTERN", "LogLayout", "check_chain_id"]

CHAIN_ID_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
"""Chain ids: names of streams (``chat``, ``network.eu-1``), never user data."""

ROOT_KEY_FILE: Final = "keys/root.key"
"""The root key file's path inside the log, as the manifest names it."""


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

    def chain(self, chain: str) -> ChainFiles:
        """The files of chain ``chain`` (which must be a valid chain id)."""
        return ChainFiles(self.chains / check_chain_id(chain))

    def chain_names(self) -> list[str]:
        """The chains that exist on disk, sorted."""
        try:
            entries = list(self.chains.iterdir())
        except FileNotFoundError:
            return []
        return sorted(p.name for p in entries if p.is_dir() and CHAIN_ID_PATTERN.fullmatch(p.name))

    def log_lock(self) -> AbstractContextManager[None]:
        """The log-wide lock for changes to shared files (manifest, holds); waits for it."""
        return exclusive_lock(self.root / "LOCK")
