"""Stored tree nodes, so that proofs need O(log n) reads instead of a scan of the leaves.

Like C2SP tlog-tiles, only nodes at levels 0, 8, 16, ... are stored; a node at any other level
is computed from at most 128 stored hashes of the stride level below it. Each stored level is
one flat file of 32-byte hashes, ``tiles/level-LL``, node ``(level, index)`` at byte
``32 * index``. Level 0 holds the leaf hashes. Tiles are derived data: a writer rewrites them
at the exact offsets (so a crash or a replay never leaves them out of step for long),
``rebuild`` makes them again from the segments and tombstones, and ``TileCheck`` holds them
against the tree that verification recomputes.

After a sweep, each node of a tombstone's compact range stands for deleted leaves. A stored node
that is one of those range nodes, or a union of them and present leaves, keeps its hash: every
node a proof of a present record needs is of that kind. A stored node strictly inside one range
node (its deleted leaves, and stride nodes below the range node's level) holds either its
original hash (the writer wrote it and the sweep left it) or, once the tiles were rebuilt, a
hole of 32 zero bytes, the same for every such node under one range node.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from auditlog._fs import make_private_dir, read_note, write_all
from auditlog.errors import ConfigurationError, IntegrityError
from auditlog.merkle import CompactRange, NodeID, range_nodes, root
from auditlog.segment.files import ChainFiles
from auditlog.segment.format import Tombstone

__all__ = [
    "HOLE",
    "STRIDE",
    "StrideNodes",
    "TileCheck",
    "TileStore",
    "is_tile_damage",
    "unchecked_tombstones",
]

STRIDE: Final = 8
_HASH: Final = 32
HOLE: Final = bytes(_HASH)
"""What a rebuilt tile holds for a node strictly inside a deleted range node."""

_CHUNK: Final = 1 << 15  # nodes read or written at a time over a long run (1 MiB)
_ZEROS: Final = bytes(_CHUNK * _HASH)

StrideNodes = list[tuple[int, int, bytes]]
"""``(level, index, hash)`` of completed nodes at levels 8, 16, ...: what the tree collects."""

_LENGTH_REMEDY: Final = (
    "open the log for writing or run `auditlog repair` to rebuild the tiles; they are derived data"
)
_CONTENT_REMEDY: Final = "run `auditlog repair` to rebuild the tiles; they are derived data"
_MISMATCH: Final = "does not match the tree recomputed from the chain"
_NOT_A_HOLE: Final = (
    "lies inside a deleted subtree whose first leaf is a hole (32 zero bytes), so it must be "
    "a hole too"
)


def _stored_level(level: int) -> int:
    return level - level % STRIDE


def _level_of(name: str) -> int | None:
    """The level a tile file of this name holds, or None if it is not a name tiles use."""
    digits = name.removeprefix("level-")
    if digits == name or not digits.isdigit() or name != f"level-{int(digits):02d}":
        return None
    return int(digits)


def _consecutive_runs(nodes: StrideNodes) -> Iterator[tuple[int, int, bytes]]:
    """``(level, first index, joined hashes)`` of each run of consecutive nodes of one level."""
    run: list[tuple[int, int, bytes]] = []
    for node in sorted(nodes):
        if run and (node[0] != run[-1][0] or node[1] != run[-1][1] + 1):
            yield run[0][0], run[0][1], b"".join(n[2] for n in run)
            run = []
        run.append(node)
    if run:
        yield run[0][0], run[0][1], b"".join(n[2] for n in run)


def is_tile_damage(error: IntegrityError) -> bool:
    """Whether ``error`` is about the tiles only (the segments verified): a rebuild fixes it."""
    return "tiles" in error.location


def unchecked_tombstones(directory: Path) -> list[Tombstone]:
    """The tombstones in ``directory`` as their texts say, signatures not checked.

    Only for serving proofs, which are checked against a signed checkpoint before they are
    handed out, and for rebuilding tiles, which verification holds against the signed
    tombstones: a wrong range hash here makes a proof or a verification fail, nothing more.
    """
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".tomb"))
    except FileNotFoundError:
        return []
    return [
        Tombstone.from_text(
            read_note(directory / n, "tombstone", {"tombstone": n}).split("\n\n", 1)[0] + "\n"
        )
        for n in names
    ]


class TileStore:
    """The stored nodes of one chain's tree, in ``<chain>/tiles/``.

    ``deleted`` are the compact ranges of the chain's tombstones, needed to compute a node
    across holes; when not given they are read from the chain's ``tombstones/`` the first
    time a hole is met.
    """

    def __init__(self, directory: Path, deleted: Iterable[CompactRange] | None = None) -> None:
        self.directory = directory
        self._deleted_given = None if deleted is None else list(deleted)
        self._deleted_nodes: dict[NodeID, bytes] | None = None

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
        return all(_level_of(p.name) in expected for p in self.entries())

    def entries(self) -> list[Path]:
        """Everything in the tiles directory, level files or not."""
        try:
            return sorted(self.directory.iterdir())
        except FileNotFoundError:
            return []

    def write(self, first_index: int, leaves: bytes, stride_nodes: StrideNodes) -> None:
        """Store a block's leaves and the stride nodes its leaves completed."""
        make_private_dir(self.directory)
        self._pwrite(0, first_index * _HASH, leaves)
        self._write_nodes(stride_nodes)

    def write_deleted(self, deleted: CompactRange, stride_nodes: StrideNodes) -> None:
        """Store what is known of a deleted range: the stride nodes its merge into the tree
        completed, its range nodes at stored levels, and holes for every stored node strictly
        inside a range node. Each level is written in ascending order."""
        make_private_dir(self.directory)
        nodes = list(zip(range_nodes(deleted.begin, deleted.end), deleted.hashes, strict=True))
        own = {node for node, _ in nodes}
        self._write_nodes([n for n in stride_nodes if (n[0], n[1]) not in own])
        for level in range(0, max(node[0] for node, _ in nodes) + 1, STRIDE):
            for (range_level, index), node_hash in nodes:
                if range_level == level:
                    self._pwrite(level, index * _HASH, node_hash)
                elif range_level > level:
                    width = 1 << (range_level - level)
                    for start in range(index * width, (index + 1) * width, _CHUNK):
                        count = min(_CHUNK, (index + 1) * width - start)
                        self._pwrite(level, start * _HASH, _ZEROS[: count * _HASH])

    def _write_nodes(self, stride_nodes: StrideNodes) -> None:
        for level, first, joined in _consecutive_runs(stride_nodes):
            self._pwrite(level, first * _HASH, joined)

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
        for path in self.entries():
            level = _level_of(path.name)
            if level is None:
                continue
            length = expected.get(level, 0)
            if path.stat().st_size > length:
                os.truncate(path, length)

    def rebuild(self, pieces: Iterable[tuple[int, bytes] | CompactRange]) -> int:
        """Write every level again from the chain in order, and return its tree size.

        ``pieces`` are ``(first index, joined leaves)`` of each block and the compact range of
        each run of deleted leaves (a tombstone's), in index order; anything else in the
        directory is removed first.
        """
        for path in self.entries():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        tree = CompactRange()
        for piece in pieces:
            sink: StrideNodes = []
            begin = piece.begin if isinstance(piece, CompactRange) else piece[0]
            if begin != tree.end:
                raise IntegrityError(
                    f"the chain's blocks and tombstones do not join up at index {tree.end} "
                    f"(the next starts at {begin}); run `auditlog verify` to find out why",
                    location={"index": tree.end},
                )
            if isinstance(piece, CompactRange):
                tree.merge(piece, sink)
                self.write_deleted(piece, sink)
            else:
                tree.extend_joined(piece[1], sink)
                self.write(piece[0], piece[1], sink)
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
                f"tiles of level {base} are shorter than the chain; {_LENGTH_REMEDY}",
                location={"tiles": f"level-{base:02d}", "level": base, "node": index * width},
            )
        if HOLE in hashes:
            return self._node_across_holes(level, index, base, hashes)
        # A perfect subtree's root folds the same way whatever level its base hashes are at.
        return hashes[0] if width == 1 else root(hashes)

    def _node_across_holes(self, level: int, index: int, base: int, hashes: list[bytes]) -> bytes:
        """Node ``(level, index)`` from its base-level hashes, each run of holes replaced by
        the deleted range node it lies inside (which must lie inside the node)."""
        first = index << (level - base)
        tree = CompactRange(index << level, index << level)
        position = 0
        while position < len(hashes):
            slot = first + position
            if hashes[position] != HOLE:
                subtree, node_hash = (base, slot), hashes[position]
            else:
                subtree, node_hash = self._deleted_node_over(base, slot)
                if subtree[0] > level:
                    raise ConfigurationError(
                        f"node ({level}, {index}) lies inside records a sweep deleted, whose "
                        "tree nodes are gone: only records still present, and checkpoints of "
                        "sizes outside deleted ranges, can be proven"
                    )
            sub_level, sub_index = subtree
            if sub_index << (sub_level - base) != slot:
                raise IntegrityError(
                    f"tile node ({base}, {slot}) is a hole in the middle of a subtree; "
                    f"{_CONTENT_REMEDY}",
                    location={"tiles": f"level-{base:02d}", "level": base, "node": slot},
                )
            start = sub_index << sub_level
            tree.merge(CompactRange(start, start + (1 << sub_level), (node_hash,)))
            position += 1 << (sub_level - base)
        return tree.hashes[0]

    def _deleted_node_over(self, level: int, index: int) -> tuple[NodeID, bytes]:
        """The deleted range node that node ``(level, index)``, a hole, lies strictly inside."""
        if self._deleted_nodes is None:
            ranges = self._deleted_given
            if ranges is None:
                tombstones = ChainFiles(self.directory.parent).tombstones
                ranges = [t.range() for t in unchecked_tombstones(tombstones)]
            self._deleted_nodes = {
                node: node_hash
                for deleted in ranges
                for node, node_hash in zip(
                    range_nodes(deleted.begin, deleted.end), deleted.hashes, strict=True
                )
            }
        for above in range(level + 1, 64):
            node = (above, index >> (above - level))
            if node in self._deleted_nodes:
                return node, self._deleted_nodes[node]
        raise IntegrityError(
            f"tile node ({level}, {index}) is a hole but no tombstone stands for its leaves; "
            f"{_CONTENT_REMEDY}",
            location={"tiles": f"level-{level:02d}", "level": level, "node": index},
        )

    def leaf(self, index: int) -> bytes:
        data = self._pread(0, index * _HASH, _HASH)
        if len(data) != _HASH:
            raise IntegrityError(
                f"the leaf tiles are shorter than the chain; {_LENGTH_REMEDY}",
                location={"tiles": "level-00", "level": 0, "node": index},
            )
        if data == HOLE:
            self._deleted_node_over(0, index)  # raises unless a sweep deleted the record
            raise ConfigurationError(
                f"record {index} was deleted by a retention sweep: it has no inclusion proof"
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


class _LevelReader:
    """One level file read in ascending ranges through a window: a check of the tiles in chain
    order costs one read a megabyte, not one a block."""

    def __init__(self, path: Path) -> None:
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._fd = None
        self._start = 0
        self._data = b""

    def read(self, index: int, count: int) -> bytes:
        """Nodes ``index`` to ``index + count`` (fewer where the file ends), joined."""
        offset, length = index * _HASH, count * _HASH
        if not self._start <= offset <= offset + length <= self._start + len(self._data):
            if self._fd is None:
                return b""
            self._data = os.pread(self._fd, max(length, len(_ZEROS)), offset)
            self._start = offset
        return self._data[offset - self._start : offset - self._start + length]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class TileCheck:
    """Holds a chain's stored tiles against the tree a chain check recomputes, as it goes.

    It is the check's node sink: ``block`` gets each block's leaves with the stride nodes they
    complete, ``deleted`` each deleted range (a tombstone's compact range) with the stride nodes
    its merge completes. Nodes strictly inside a deleted range node are held to the rule of the
    module docstring. The first mismatch is kept, not raised, so that damage to the chain
    itself is reported first: ``finish`` raises it.

    A live writer writes a block's nodes just after the block, so a reader may find the last
    block's nodes missing, or nodes beyond the chain it read; a crash may leave either too.
    ``finish`` reports such a tail as unsettled instead of raising, and ``settle`` then holds
    the files to the chain's end exactly, once no writer holds the chain.
    """

    def __init__(self, store: TileStore, chain: str) -> None:
        self.store = store
        self.chain = chain
        self.damage: IntegrityError | None = None
        self._readers: dict[int, _LevelReader] = {}
        self._in_flight: list[tuple[int, int, bytes]] = []  # the last block's missing nodes

    def block(self, first_index: int, leaves: bytes, stride_nodes: StrideNodes) -> None:
        if self.damage is not None or not self._settle_in_flight():
            return
        runs = [(0, first_index, leaves), *_consecutive_runs(stride_nodes)]
        for level, index, joined in runs:
            stored = self._reader(level).read(index, len(joined) // _HASH)
            if len(stored) < len(joined) and joined.startswith(stored):
                # The file ends here: a writer may not have written this block's nodes yet.
                self._in_flight = runs
                return
            if not self._expect(level, index, joined, stored):
                return

    def deleted(self, deleted: CompactRange, stride_nodes: StrideNodes) -> None:
        if self.damage is not None or not self._settle_in_flight():
            return
        for (level, index), node_hash in zip(
            range_nodes(deleted.begin, deleted.end), deleted.hashes, strict=True
        ):
            if level == 0:
                ok = self._expect(0, index, node_hash)
            else:
                ok = self._expect_deleted_subtree(level, index, node_hash)
            if not ok:
                return
        self._expect_nodes(stride_nodes)

    def finish(self, size: int) -> bool:
        """Raise the first mismatch found; return whether the tail is unsettled: the last
        block's nodes missing, or a level file longer than ``size`` leaves call for (or there
        but not called for). A stray file that is no level file is raised too."""
        self.close()
        if self.damage is not None:
            raise self.damage
        expected = self.store.expected_sizes(size)
        unsettled = bool(self._in_flight)
        for path in self.store.entries():
            level = _level_of(path.name)
            if level is None:
                raise IntegrityError(
                    f"tiles/{path.name} is not a tile file; {_LENGTH_REMEDY}",
                    location={"chain": self.chain, "tiles": path.name},
                )
            if level not in expected or path.stat().st_size != expected[level]:
                unsettled = True
        return unsettled

    def settle(self, size: int, *, torn: bool) -> None:
        """Hold the tail to a chain of ``size`` leaves (its end now: no writer may hold the
        chain meanwhile); with a ``torn`` tail, nodes beyond it are left for the next writer to
        cut. Raises what does not match."""
        self._settle_in_flight()
        self.close()
        expected = self.store.expected_sizes(size)
        for path in self.store.entries():
            found = _level_of(path.name)
            length = path.stat().st_size
            if found is None or (found not in expected and torn):
                continue
            wanted = expected.get(found, -1)  # a level the chain has no node of yet
            if length < wanted or (length > wanted and not torn) or length % _HASH:
                self._damage(found, max(0, min(length, wanted)) // _HASH, beyond=length > wanted)
        for level, length in expected.items():
            if length and not self.store.path(level).exists():
                self._damage(level, 0)
        if self.damage is not None:
            raise self.damage

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def _settle_in_flight(self) -> bool:
        """Missing nodes of a block that was not the last are damage; whether there are none."""
        runs, self._in_flight = self._in_flight, []
        return all(self._expect(*run) for run in runs)

    def _reader(self, level: int) -> _LevelReader:
        reader = self._readers.get(level)
        if reader is None:
            reader = self._readers[level] = _LevelReader(self.store.path(level))
        return reader

    def _damage(
        self,
        level: int,
        node: int,
        *,
        why: str | None = None,
        count: int = 1,
        beyond: bool = False,
    ) -> None:
        """Note the first damage: a node that does not match (``why``), else a file that ends
        at ``node``, before the chain does or (``beyond``) after it."""
        if self.damage is not None:
            return
        name = f"level-{level:02d}"
        if why is not None:
            where = f"node {node}" if count == 1 else f"nodes {node} to {node + count - 1}"
            message = f"tiles/{name}, {where}: {why}; {_CONTENT_REMEDY}"
        elif beyond:
            message = (
                f"tiles/{name} holds nodes beyond the chain's end: records may have been cut "
                "off the chain (a stored or trusted checkpoint shows it) or the tile file was "
                f"extended; if no records are missing, {_LENGTH_REMEDY}"
            )
        else:
            message = f"tiles/{name} ends at node {node}, before the chain does; {_LENGTH_REMEDY}"
        location: dict[str, object] = {"chain": self.chain, "tiles": name, "level": level}
        location["node"] = node
        if count != 1:
            location["count"] = count
        self.damage = IntegrityError(message, location=location)

    def _expect(self, level: int, index: int, joined: bytes, stored: bytes | None = None) -> bool:
        """Whether the stored nodes from ``(level, index)`` on are ``joined`` (``stored``, if
        already read); else note where they are not."""
        if stored is None:
            stored = self._reader(level).read(index, len(joined) // _HASH)
        if stored == joined:
            return True
        for offset in range(0, len(joined), _HASH):
            if len(stored) < offset + _HASH:
                self._damage(level, index + offset // _HASH)
                break
            if stored[offset : offset + _HASH] != joined[offset : offset + _HASH]:
                self._damage(level, index + offset // _HASH, why=_MISMATCH)
                break
        return False

    def _expect_nodes(self, stride_nodes: StrideNodes) -> bool:
        return all(self._expect(*run) for run in _consecutive_runs(stride_nodes))

    def _expect_deleted_subtree(self, level: int, index: int, node_hash: bytes) -> bool:
        """Hold the stored nodes strictly inside deleted range node ``(level, index)`` to the
        rule: all holes, or all the hashes of a subtree whose root is ``node_hash``."""
        first = self._reader(0).read(index << level, 1)
        if len(first) < _HASH:
            self._damage(0, index << level)
            return False
        if first == HOLE:
            return self._expect_holes(level, index)
        return self._expect_original(level, index, node_hash)

    def _expect_holes(self, level: int, index: int) -> bool:
        for below in range(0, level, STRIDE):
            width = 1 << (level - below)
            end = (index + 1) * width
            for start in range(index * width, end, _CHUNK):
                count = min(_CHUNK, end - start)
                stored = self._reader(below).read(start, count)
                if stored == _ZEROS[: count * _HASH]:
                    continue
                for offset in range(0, count * _HASH, _HASH):
                    if len(stored) < offset + _HASH:
                        self._damage(below, start + offset // _HASH)
                        return False
                    if stored[offset : offset + _HASH] != HOLE:
                        self._damage(below, start + offset // _HASH, why=_NOT_A_HOLE)
                        return False
        return True

    def _expect_original(self, level: int, index: int, node_hash: bytes) -> bool:
        """The leaves under the range node must hash up to ``node_hash`` and the stored stride
        nodes among them must be what those leaves give."""
        begin, end = index << level, (index + 1) << level
        subtree = CompactRange(begin, begin)
        wrong_node: tuple[int, int, bool] | None = None  # the first stored stride node that differs
        wrong_group: int | None = None  # the first level-8 node whose leaves hash otherwise
        for start in range(begin, end, _CHUNK):
            count = min(_CHUNK, end - start)
            leaves = self._reader(0).read(start, count)
            if len(leaves) != count * _HASH:
                self._damage(0, start + len(leaves) // _HASH)
                return False
            sink: StrideNodes = []
            subtree.extend_joined(leaves, sink)
            for below, node, computed in sink:
                stored = self._reader(below).read(node, 1)
                if below == level or stored == computed:
                    continue
                if wrong_node is None:
                    wrong_node = (below, node, len(stored) < _HASH)
                if below == STRIDE and wrong_group is None:
                    wrong_group = node
        if subtree.hashes[0] == node_hash:
            if wrong_node is None:
                return True
            below, node, short = wrong_node
            self._damage(below, node, why=None if short else _MISMATCH)
            return False
        # The leaves do not give the tombstone's hash: one of them was changed. A stored
        # level-8 node that disagrees with its leaves narrows down which.
        why = "these deleted leaves do not hash to the tombstone's range node"
        if wrong_group is not None:
            self._damage(0, wrong_group << STRIDE, count=1 << STRIDE, why=why)
        else:
            self._damage(0, begin, count=end - begin, why=why)
        return False
