"""Stored tree nodes, so that proofs need O(log n) reads instead of a scan of the leaves.

Like C2SP tlog-tiles, only nodes at levels 0, 8, 16, ... are stored; a node at any other level
is computed from at most 128 stored hashes of the stride level below it. Each stored level is
one flat file of 32-byte hashes, ``tiles/level-LL``, node ``(level, index)`` at byte
``32 * index``. Level 0 holds the leaf hashes. Tiles are derived data: a writer rewrites them
at the exact offsets (so a crash or a replay never leaves them out of step for long), and
``rebuild`` makes them again from the segments.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from auditlog._fs import make_private_dir, write_all
from auditlog.errors import IntegrityError
from auditlog.merkle import CompactRange, root

__all__ = ["STRIDE", "TileStore"]

STRIDE: Final = 8
_HASH: Final = 32


def _stored_level(level: int) -> int:
    return level - level % STRIDE


class TileStore:
    """The stored nodes of one chain's tree, in ``<chain>/tiles/``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, level: int) -> Path:
        return self.directory / f"level-{level:02d}"

    def expected_sizes(self, size: int) -> dict[int, int]:
        """Bytes each level file holds for a tree of ``size`` leaves."""
        sizes = {}
        level = 0
        while level == 0 or size >> level:
            sizes[level] = (size >> level) * _HASH
            level += STRIDE
        return sizes

    def matches(self, size: int) -> bool:
        """Whether the files hold exactly the nodes of a tree of ``size`` leaves (by length)."""
        expected = self.expected_sizes(size)
        for level, length in expected.items():
            try:
                if self.path(level).stat().st_size != length:
                    return False
            except FileNotFoundError:
                if length:
                    return False
        return not any(
            p.name.startswith("level-") and int(p.name[6:]) not in expected for p in self._files()
        )

    def _files(self) -> list[Path]:
        try:
            return [p for p in self.directory.iterdir() if p.name[6:].isdigit()]
        except FileNotFoundError:
            return []

    def write(
        self, first_index: int, leaves: bytes, stride_nodes: list[tuple[int, int, bytes]]
    ) -> None:
        """Store a block's leaves and the stride nodes its leaves completed."""
        make_private_dir(self.directory)
        self._pwrite(0, first_index * _HASH, leaves)
        by_level: dict[int, list[tuple[int, bytes]]] = {}
        for level, index, node in stride_nodes:
            by_level.setdefault(level, []).append((index, node))
        for level, nodes in by_level.items():
            nodes.sort()
            # Nodes of one level completed by one block are consecutive: one write each level.
            self._pwrite(level, nodes[0][0] * _HASH, b"".join(n for _, n in nodes))

    def _pwrite(self, level: int, offset: int, data: bytes) -> None:
        fd = os.open(self.path(level), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            write_all(fd, data)
        finally:
            os.close(fd)

    def truncate(self, size: int) -> None:
        """Drop nodes beyond a tree of ``size`` leaves (after a torn tail was cut)."""
        expected = self.expected_sizes(size)
        for path in self._files():
            level = int(path.name[6:])
            length = expected.get(level, 0)
            if path.stat().st_size > length:
                os.truncate(path, length)

    def rebuild(self, leaf_blocks: Iterable[tuple[int, bytes]]) -> int:
        """Write every level again from ``(first index, joined leaves)`` of all blocks, in order."""
        for path in self._files():
            path.unlink()
        tree = CompactRange()
        for first, leaves in leaf_blocks:
            sink: list[tuple[int, int, bytes]] = []
            tree.extend_joined(leaves, sink)
            self.write(first, leaves, sink)
        return tree.end

    def node(self, level: int, index: int, size: int) -> bytes:
        """The hash of node ``(level, index)``, which must lie wholly inside ``[0, size)``."""
        if (index + 1) << level > size:
            raise IntegrityError(
                f"node ({level}, {index}) is not complete in a tree of size {size}"
            )
        base = _stored_level(level)
        width = 1 << (level - base)
        data = self._pread(base, (index * width) * _HASH, width * _HASH)
        hashes = [data[i : i + _HASH] for i in range(0, len(data), _HASH)]
        if len(hashes) != width:
            raise IntegrityError(
                f"tiles of level {base} are shorter than the chain; open the log for writing "
                "once (its writer rebuilds missing tiles from the segments)"
            )
        # A perfect subtree's root folds the same way whatever level its base hashes are at.
        return hashes[0] if width == 1 else root(hashes)

    def leaf(self, index: int) -> bytes:
        data = self._pread(0, index * _HASH, _HASH)
        if len(data) != _HASH:
            raise IntegrityError(
                "the leaf tiles are shorter than the chain; open the log for writing once "
                "(its writer rebuilds missing tiles from the segments)"
            )
        return data

    def _pread(self, level: int, offset: int, length: int) -> bytes:
        try:
            fd = os.open(self.path(level), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return b""
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)
