"""Tiles: bound by verification, rebuilt across tombstones, and serving proofs after sweeps.

Logs here have one ``chat`` chain whose records fall in minutes (``period_seconds=60``) so a
sweep can delete any chosen run of periods by hand. A swept log is checked twice: as the sweep
left it (the deleted leaves still in the tiles) and after its tiles were rebuilt (holes there).
Every single-byte flip of every tile file is held against ``TileCheck`` fed the nodes a real
chain check computes (what ``ChainReader.verify`` does, keyed or keyless alike, without
rescanning the segments for each flip), and one flip per stored node goes through
``AuditLog.verify`` keyless and keyed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _integrity_helpers import chat_record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlog import AuditLog, LogConfig, merkle
from auditlog.errors import ConfigurationError, IntegrityError
from auditlog.merkle import CompactRange, range_nodes
from auditlog.proofs import verify_consistency_proof, verify_inclusion_proof
from auditlog.retention import RetentionPolicy
from auditlog.segment.check import ChainCheck
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.segment.files import ChainFiles
from auditlog.segment.reader import ChainReader
from auditlog.segment.recovery import leaf_blocks
from auditlog.segment.tiles import HOLE, STRIDE, StrideNodes, TileCheck, TileStore
from auditlog.segment.tombstone import TombstoneStore
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N, FixedClock

CHAIN = "chat"
CONFIG = LogConfig(
    block_max_records=4, max_segment_records=8, period_seconds=60, dictionary_samples=8
)
BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FIRST_PERIOD = int(BASE.timestamp()) // 60
POLICY = RetentionPolicy(keep_at_least=timedelta(0), delete_after=timedelta(seconds=1))
# A chain of 260 records: two tiles of level 8 would need 512, one (8, 0) it has.
SMALL = [130, 130]
# 600 records; minutes 0 and 2 are swept: deleted leaves [0, 520) (range nodes (9, 0) and
# (3, 64), so level-8 nodes (8, 0) and (8, 1) lie strictly inside one) and [553, 560) (range
# nodes (0, 553), (1, 277), (2, 139)).
SWEPT = [520, 33, 7, 40]
SWEPT_MINUTES = {0, 2}


def minute(number: int) -> datetime:
    return BASE + timedelta(minutes=number)


def chain_dir(path: Path) -> Path:
    return path / "chains" / CHAIN


def tiles_dir(path: Path) -> Path:
    return chain_dir(path) / "tiles"


def write_log(path: Path, counts: list[int]) -> None:
    """A closed log whose chain holds ``counts[m]`` chat records in minute ``m``, a retention
    policy that lets any past minute be swept by hand, and a checkpoint of its head."""
    clock = FixedClock(minute(len(counts)))
    with AuditLog.create(
        path,
        passphrase=TEST_PASSPHRASE,
        scrypt_n=TEST_SCRYPT_N,
        config=CONFIG,
        fsync=False,
        clock=clock,
    ) as log:
        index = 0
        for number, count in enumerate(counts):
            at = minute(number)
            log.append_many(
                [
                    chat_record(i, at=at + timedelta(microseconds=i))
                    for i in range(index, index + count)
                ]
            )
            log.flush()
            index += count
        log.retention.set_policy(CHAIN, POLICY, actor="test", now=clock.now())
        log.proofs.sign_checkpoints()


def sweep(path: Path, minutes: set[int], at: int) -> None:
    """Sweep the given minutes by hand at minute ``at``, then sign a checkpoint of the head."""
    clock = FixedClock(minute(at))
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE, clock=clock, fsync=False) as log:
        periods = {CHAIN: [FIRST_PERIOD + m for m in sorted(minutes)]}
        log.retention.sweep(now=clock.now(), periods=periods, dry_run=False)
        log.proofs.sign_checkpoints()


def rebuild_on_write_open(path: Path) -> None:
    """Delete the chain's tiles and open the log for writing, which rebuilds them."""
    shutil.rmtree(tiles_dir(path))
    AuditLog.open(path, passphrase=TEST_PASSPHRASE, fsync=False).close()


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of 260 records, never swept (not to be changed: copy it first)."""
    path = tmp_path_factory.mktemp("small") / "log"
    write_log(path, SMALL)
    return path


@pytest.fixture(scope="module")
def swept_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``SWEPT`` log after its sweep, tiles as the sweep left them (copy it first)."""
    path = tmp_path_factory.mktemp("swept") / "log"
    write_log(path, SWEPT)
    sweep(path, SWEPT_MINUTES, len(SWEPT) + 1)
    return path


@pytest.fixture(scope="module")
def rebuilt_log(tmp_path_factory: pytest.TempPathFactory, swept_log: Path) -> Path:
    """The swept log with its tiles rebuilt from segments and tombstones (copy it first)."""
    path = tmp_path_factory.mktemp("rebuilt") / "log"
    shutil.copytree(swept_log, path)
    rebuild_on_write_open(path)
    return path


def copy_of(log: Path, tmp_path: Path) -> Path:
    path = tmp_path / "log"
    shutil.copytree(log, path)
    return path


# -- holding tiles against the tree -------------------------------------------------------------


@dataclass
class NodeStream:
    """What a chain check hands its node sink, recorded to be replayed into a ``TileCheck``."""

    calls: list[tuple[int, bytes, StrideNodes] | tuple[CompactRange, StrideNodes]]
    size: int

    def block(self, first: int, leaves: bytes, stride_nodes: StrideNodes) -> None:
        self.calls.append((first, leaves, list(stride_nodes)))

    def deleted(self, deleted: CompactRange, stride_nodes: StrideNodes) -> None:
        self.calls.append((deleted, list(stride_nodes)))

    def check(self, path: Path) -> IntegrityError | None:
        """The damage a ``TileCheck`` of ``path``'s tiles finds, fed this stream (no writer)."""
        tiles = TileCheck(TileStore(tiles_dir(path)), CHAIN)
        try:
            for call in self.calls:
                if len(call) == 3:
                    tiles.block(*call)
                else:
                    tiles.deleted(*call)
            if tiles.finish(self.size):
                tiles.settle(self.size, torn=False)
        except IntegrityError as exc:
            return exc
        finally:
            tiles.close()
        return None


def node_stream(path: Path) -> NodeStream:
    """The nodes a keyless check of ``path``'s chain computes, recorded."""
    with AuditLog.open(path, mode="read") as log:
        origin = log.chain_origin(CHAIN)
    files = ChainFiles(chain_dir(path))
    stream = NodeStream([], 0)
    check = ChainCheck.start(CHAIN, origin)
    check.tombstones = TombstoneStore(files.tombstones, origin, None).load()
    check.nodes = stream
    for scan in ChainReader(files, CHAIN, origin, 60).scans():
        check.feed(scan)
    check.apply_tombstones()
    stream.size = check.size
    return stream


def tile_bytes(path: Path) -> Iterator[tuple[Path, int, int]]:
    """(file, level, length) of every tile file of ``path``'s chain."""
    for tile in sorted(tiles_dir(path).iterdir()):
        yield tile, int(tile.name[6:]), tile.stat().st_size


def flip(tile: Path, offset: int) -> bytes:
    """Flip one bit of byte ``offset`` of ``tile``; returns the bytes before."""
    original = tile.read_bytes()
    changed = bytearray(original)
    changed[offset] ^= 1 << (offset % 8)
    tile.write_bytes(bytes(changed))
    return original


@contextlib.contextmanager
def flipping(tile: Path) -> Iterator[Callable[[int], None]]:
    """A function that flips one bit of a byte of ``tile`` in place, and undoes the last flip
    first: one ``pwrite`` each, for thousands of flips."""
    fd = os.open(tile, os.O_RDWR)
    original = tile.read_bytes()
    last: list[int] = []

    def flip_at(offset: int) -> None:
        for undo in last:
            os.pwrite(fd, original[undo : undo + 1], undo)
        os.pwrite(fd, bytes([original[offset] ^ 1 << (offset % 8)]), offset)
        last[:] = [offset]

    try:
        yield flip_at
    finally:
        os.pwrite(fd, original, 0)
        os.close(fd)


def assert_names(error: IntegrityError | None, level: int, node: int) -> None:
    """The error is about tile node ``(level, node)``: it names the chain, the level and a
    node range holding it."""
    assert error is not None, f"a flip in node ({level}, {node}) went unnoticed"
    location = error.location
    assert location["chain"] == CHAIN
    assert location["tiles"] == f"level-{level:02d}"
    assert location["level"] == level
    first = location["node"]
    assert isinstance(first, int)
    assert first <= node < first + int(str(location.get("count", 1))), location
    assert "auditlog repair" in str(error)


@pytest.mark.parametrize("name", ["small_log", "swept_log", "rebuilt_log"])
def test_every_single_byte_flip_in_the_tiles_is_caught_where_it_is(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Every byte of every tile file, flipped, is a mismatch naming the chain, the level and
    the node (or, among deleted leaves kept after a sweep, the smallest group it hides in)."""
    path = copy_of(request.getfixturevalue(name), tmp_path)
    stream = node_stream(path)
    assert stream.check(path) is None
    for tile, level, length in tile_bytes(path):
        with flipping(tile) as flip_at:
            for offset in range(length):
                flip_at(offset)
                assert_names(stream.check(path), level, offset // 32)
    assert stream.check(path) is None


@pytest.mark.parametrize("name", ["small_log", "swept_log", "rebuilt_log"])
def test_keyed_and_keyless_verify_catch_a_flip_in_every_tile_node(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """``AuditLog.verify``, keyless and keyed, fails on a flip in a stored node (one byte per
    node, the byte moving along: every node of the small log, every stride node and every
    seventh leaf of the swept ones), naming the node, and passes once it is undone."""
    path = copy_of(request.getfixturevalue(name), tmp_path)
    every = 1 if name == "small_log" else 7
    with AuditLog.open(path, mode="read", passphrase=TEST_PASSPHRASE) as log:
        log.verify(keyless=True)
        log.verify()
        for tile, level, length in tile_bytes(path):
            for node in range(0, length // 32, every if level == 0 else 1):
                original = flip(tile, node * 32 + node % 32)
                for keyless in (True, False):
                    with pytest.raises(IntegrityError) as info:
                        log.verify(keyless=keyless)
                    assert_names(info.value, level, node)
                tile.write_bytes(original)
        log.verify()


def _truncate(path: Path, by: int) -> None:
    os.truncate(path, path.stat().st_size - by)


def _extend(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


TILE_DAMAGE: dict[str, tuple[Callable[[Path], None], int]] = {
    # damage to tiles/ -> the level the error names
    "level-00-short-by-a-node": (lambda t: _truncate(t / "level-00", 32), 0),
    "level-00-short-by-a-byte": (lambda t: _truncate(t / "level-00", 1), 0),
    "level-00-emptied": (lambda t: os.truncate(t / "level-00", 0), 0),
    "level-00-deleted": (lambda t: (t / "level-00").unlink(), 0),
    "level-00-longer-by-a-node": (lambda t: _extend(t / "level-00", os.urandom(32)), 0),
    "level-00-longer-by-a-byte": (lambda t: _extend(t / "level-00", b"\x00"), 0),
    "level-08-short": (lambda t: _truncate(t / "level-08", 32), 8),
    "level-08-deleted": (lambda t: (t / "level-08").unlink(), 8),
    "level-08-longer": (lambda t: _extend(t / "level-08", os.urandom(32)), 8),
    "level-16-added": (lambda t: _extend(t / "level-16", os.urandom(32)), 16),
    "level-16-added-empty": (lambda t: _extend(t / "level-16", b""), 16),
}


@pytest.mark.parametrize("damage", TILE_DAMAGE)
@pytest.mark.parametrize("name", ["small_log", "swept_log", "rebuilt_log"])
def test_tile_files_of_the_wrong_length_are_caught_and_rebuilt(
    damage: str, name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A tile file cut, extended, deleted or added fails keyless and keyed verify (naming the
    level), and both a write-open and ``repair`` rebuild the tiles so that verify passes."""
    path = copy_of(request.getfixturevalue(name), tmp_path)
    make_damage, level = TILE_DAMAGE[damage]
    for repair in (False, True):
        make_damage(tiles_dir(path))
        with AuditLog.open(path, mode="read", passphrase=TEST_PASSPHRASE) as log:
            for keyless in (True, False):
                with pytest.raises(IntegrityError) as info:
                    log.verify(keyless=keyless)
                assert (info.value.location["chain"], info.value.location["level"]) == (
                    CHAIN,
                    level,
                )
                assert "auditlog repair" in str(info.value)
        if repair:
            assert AuditLog.repair(path, passphrase=TEST_PASSPHRASE) == []
        else:
            AuditLog.open(path, passphrase=TEST_PASSPHRASE, fsync=False).close()
        with AuditLog.open(path, mode="read", passphrase=TEST_PASSPHRASE) as log:
            log.verify(keyless=True)
            log.verify()


def test_a_stray_file_among_the_tiles_is_caught_and_removed_by_repair(
    small_log: Path, tmp_path: Path
) -> None:
    """A file in ``tiles/`` that is no level file fails verify; ``repair`` removes it."""
    path = copy_of(small_log, tmp_path)
    (tiles_dir(path) / "level-8").write_bytes(b"")
    with AuditLog.open(path, mode="read") as log, pytest.raises(IntegrityError) as info:
        log.verify(keyless=True)
    assert info.value.location == {"chain": CHAIN, "tiles": "level-8"}
    AuditLog.repair(path, passphrase=TEST_PASSPHRASE)
    assert not (tiles_dir(path) / "level-8").exists()
    with AuditLog.open(path, mode="read") as log:
        log.verify(keyless=True)


def test_a_tail_a_live_writer_may_still_be_writing_is_judged_once_it_is_gone(
    small_log: Path, tmp_path: Path
) -> None:
    """Tiles short by the last block's nodes, or holding one node more, pass verify while a
    writer holds the chain (it writes a block's nodes just after the block) and fail once no
    writer does; a node that differs fails either way."""
    path = copy_of(small_log, tmp_path)
    level_00 = tiles_dir(path) / "level-00"
    original = level_00.read_bytes()
    writer = AuditLog.open(path, passphrase=TEST_PASSPHRASE, fsync=False)
    try:
        for changed in (original[:-32], original + os.urandom(32)):
            level_00.write_bytes(changed)
            with AuditLog.open(path, mode="read") as log:
                log.verify(keyless=True)
        level_00.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with AuditLog.open(path, mode="read") as log, pytest.raises(IntegrityError):
            log.verify(keyless=True)
        level_00.write_bytes(original[:-32])
    finally:
        writer.close()
    with AuditLog.open(path, mode="read") as log, pytest.raises(IntegrityError) as info:
        log.verify(keyless=True)
    last = len(original) // 32 - 1
    assert (info.value.location["level"], info.value.location["node"]) == (0, last)


@pytest.mark.parametrize("name", ["small_log", "swept_log", "rebuilt_log"])
def test_repair_rebuilds_tiles_changed_in_place(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Tiles changed without changing their length (every node of a level overwritten) are
    rebuilt by ``repair``, which cuts nothing and leaves them as a rebuild writes them."""
    path = copy_of(request.getfixturevalue(name), tmp_path)
    expected = copy_of(request.getfixturevalue(name), tmp_path / "expected")
    rebuild_on_write_open(expected)
    segments = {p.name: p.read_bytes() for p in (chain_dir(path) / "segments").iterdir()}
    for tile, _, length in tile_bytes(path):
        tile.write_bytes(os.urandom(length))
    with AuditLog.open(path, mode="read") as log, pytest.raises(IntegrityError):
        log.verify(keyless=True)
    assert AuditLog.repair(path, passphrase=TEST_PASSPHRASE) == []
    with AuditLog.open(path, mode="read", passphrase=TEST_PASSPHRASE) as log:
        log.verify()
    assert segments == {p.name: p.read_bytes() for p in (chain_dir(path) / "segments").iterdir()}
    assert {p.name: p.read_bytes() for p in tiles_dir(path).iterdir()} == {
        p.name: p.read_bytes() for p in tiles_dir(expected).iterdir()
    }


def test_a_write_open_rebuilds_tiles_across_tombstones(swept_log: Path, tmp_path: Path) -> None:
    """After a sweep, tiles deleted altogether come back on a write-open, holes in the deleted
    ranges and every other node as before, and verify passes keyless and keyed."""
    path = copy_of(swept_log, tmp_path)
    before = {p.name: p.read_bytes() for p in tiles_dir(path).iterdir()}
    rebuild_on_write_open(path)
    with AuditLog.open(path, mode="read", passphrase=TEST_PASSPHRASE) as log:
        log.verify(keyless=True)
        log.verify()
        deleted = log.verify(keyless=True).chains[CHAIN].tombstoned
    assert deleted == ((0, 520), (553, 560))
    after = {p.name: p.read_bytes() for p in tiles_dir(path).iterdir()}
    assert after.keys() == before.keys() == {"level-00", "level-08"}
    inside = {  # stored nodes strictly inside a range node of a tombstone
        (level, index)
        for first, end in deleted
        for range_level, range_index in range_nodes(first, end)
        for level in range(0, range_level, STRIDE)
        for index in range(
            range_index << (range_level - level), (range_index + 1) << (range_level - level)
        )
    }
    assert {(8, 0), (8, 1), (0, 554)} <= inside
    assert not {(0, 553), (3, 64)} & inside
    for name, data in after.items():
        level = int(name[6:])
        assert len(data) == len(before[name])
        for index in range(len(data) // 32):
            node = data[index * 32 : index * 32 + 32]
            assert node == (
                HOLE if (level, index) in inside else before[name][index * 32 : index * 32 + 32]
            )


def test_verify_names_a_rewritten_hole_among_holes(rebuilt_log: Path, tmp_path: Path) -> None:
    """In rebuilt tiles, a deleted leaf's hole given a hash is named exactly (its subtree's
    first leaf still says "hole")."""
    path = copy_of(rebuilt_log, tmp_path)
    level_00 = tiles_dir(path) / "level-00"
    data = bytearray(level_00.read_bytes())
    data[300 * 32 : 301 * 32] = os.urandom(32)
    level_00.write_bytes(bytes(data))
    with AuditLog.open(path, mode="read") as log, pytest.raises(IntegrityError) as info:
        log.verify(keyless=True)
    assert (info.value.location["level"], info.value.location["node"]) == (0, 300)
    assert "count" not in info.value.location


# -- proofs after sweeps ------------------------------------------------------------------------


def inside_deleted(size: int, deleted: tuple[tuple[int, int], ...]) -> bool:
    return any(first < size < end for first, end in deleted)


def check_proofs(path: Path) -> int:
    """Prove every present record against the newest checkpoint, and against every checkpoint
    one present record below it and the last; prove every checkpoint consistent with the next
    and with the newest. Every proof is verified. Returns the number of proofs."""
    proofs = 0
    with AuditLog.open(path, mode="read") as log:
        key = log.verifier_key
        deleted = log.verify(keyless=True).chains[CHAIN].tombstoned
        present = [
            i
            for i in range(log.verify(keyless=True).chains[CHAIN].size)
            if not any(first <= i < end for first, end in deleted)
        ]
        sizes = [
            s
            for s in CheckpointStore(chain_dir(path) / "checkpoints").sizes()
            if s and not inside_deleted(s, deleted)
        ]
        newest = sizes[-1]
        for index in present:
            verify_inclusion_proof(log.proofs.prove_inclusion(CHAIN, index, newest), key)
            proofs += 1
        for size in sizes:
            below = [i for i in present if i < size]
            for index in {below[0], below[len(below) // 2], below[-1]} if below else ():
                verify_inclusion_proof(log.proofs.prove_inclusion(CHAIN, index, size), key)
                proofs += 1
        for older, newer in zip(sizes, [*sizes[1:], newest], strict=True):
            for size2 in {newer, newest}:
                verify_consistency_proof(log.proofs.prove_consistency(CHAIN, older, size2), key)
                proofs += 1
    return proofs


def test_proofs_after_a_sweep_and_after_a_rebuild(swept_log: Path, rebuilt_log: Path) -> None:
    """Every present record and every checkpoint outside the deleted ranges is proven, with
    the deleted leaves in the tiles and with holes there."""
    assert check_proofs(swept_log) == check_proofs(rebuilt_log) > 100


def test_no_proof_reaches_into_holes(rebuilt_log: Path) -> None:
    """After a rebuild a deleted record has no inclusion proof: a clear ``ConfigurationError``."""
    with AuditLog.open(rebuilt_log, mode="read") as log:
        with pytest.raises(ConfigurationError, match="deleted by a retention sweep"):
            log.proofs.prove_inclusion(CHAIN, 100)
        with pytest.raises(ConfigurationError, match="deleted by a retention sweep"):
            log.proofs.prove_inclusion(CHAIN, 555)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_proofs_hold_after_random_sweeps_and_rebuilds(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """For random minutes of records and random runs of them swept (in one or two sweeps),
    verify passes and every proof holds as swept and after a rebuild of the tiles."""
    counts = data.draw(
        st.lists(st.integers(1, 11), min_size=2, max_size=7)
        | st.lists(st.sampled_from([3, 9, 140]), min_size=2, max_size=4),
        label="counts",
    )
    first = data.draw(st.sets(st.integers(0, len(counts) - 1), min_size=1), label="first sweep")
    second = data.draw(st.sets(st.integers(0, len(counts) - 1)) | st.just(set()), label="second")
    path = tmp_path_factory.mktemp("random") / "log"
    write_log(path, counts)
    sweep(path, first, len(counts) + 1)
    if second - first:
        sweep(path, second - first, len(counts) + 2)
    with AuditLog.open(path, mode="read", passphrase=TEST_PASSPHRASE) as log:
        log.verify()
    swept = check_proofs(path)
    rebuild_on_write_open(path)
    with AuditLog.open(path, mode="read", passphrase=TEST_PASSPHRASE) as log:
        log.verify()
    assert check_proofs(path) == swept


# -- stores and ranges, below the log -----------------------------------------------------------


@given(
    st.integers(0, 700),
    st.integers(1, 700),
    st.integers(0, 300),
)
def test_a_merge_collects_the_stride_nodes_extending_would_except_those_inside_it(
    before: int, deleted: int, after: int
) -> None:
    """Merging a compact range into a tree collects exactly the stride nodes that extending
    with its leaves would, but for those strictly inside one of its subtrees."""
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(before + deleted + after)]
    joined = b"".join(leaves)
    full: list[tuple[int, int, bytes]] = []
    CompactRange().extend_joined(joined, full)
    cut = CompactRange(before, before)
    cut.extend_joined(joined[before * 32 : (before + deleted) * 32])
    tree = CompactRange()
    merged: list[tuple[int, int, bytes]] = []
    tree.extend_joined(joined[: before * 32], merged)
    tree.merge(cut, merged)
    tree.extend_joined(joined[(before + deleted) * 32 :], merged)
    nodes = range_nodes(before, before + deleted)

    def strictly_inside(level: int, index: int) -> bool:
        return any(level < r and index >> (r - level) == i for r, i in nodes)

    assert merged == [n for n in full if not strictly_inside(n[0], n[1])]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 700), st.data())
def test_rebuilt_tiles_serve_every_node_a_present_leaf_needs(
    size: int, data: st.DataObject
) -> None:
    """With a random deleted range rebuilt as holes, every node of the inclusion proofs of
    present leaves (around the range's edges and elsewhere), and of the consistency proofs
    between sizes outside it, is the tree's."""
    first = data.draw(st.integers(0, size - 1), label="first deleted")
    end = data.draw(st.integers(first + 1, size), label="end deleted")
    present = [i for i in range(size) if not first <= i < end]
    outside = [s for s in range(1, size + 1) if not first < s < end]
    indexes = {i for i in (0, first - 1, end, size - 1) if i in present}
    indexes |= set(data.draw(st.lists(st.sampled_from(present), max_size=3)) if present else ())
    sizes = {first, end, size} - {0}
    sizes |= set(data.draw(st.lists(st.sampled_from(outside), max_size=3)))
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    deleted = CompactRange(first, first)
    deleted.extend_joined(b"".join(leaves[first:end]))
    pieces: list[tuple[int, bytes] | CompactRange] = []
    for start in range(0, first, 5):  # blocks of up to five leaves
        pieces.append((start, b"".join(leaves[start : min(first, start + 5)])))
    pieces.append(deleted)
    for start in range(end, size, 5):
        pieces.append((start, b"".join(leaves[start : min(size, start + 5)])))
    with tempfile.TemporaryDirectory() as directory:
        store = TileStore(Path(directory) / "tiles", [deleted])
        assert store.rebuild(pieces) == size
        assert store.matches(size)
        for index in indexes:
            assert store.leaf(index) == leaves[index]
            specs = merkle.inclusion_proof_nodes(index, size)
            hashes = {node: store.node(*node, size) for spec in specs for node in spec.nodes}
            assert merkle.rehash(specs, hashes) == merkle.inclusion_proof(index, size, leaves)
        for size1 in sizes:
            specs = merkle.consistency_proof_nodes(size1, size)
            hashes = {node: store.node(*node, size) for spec in specs for node in spec.nodes}
            assert merkle.rehash(specs, hashes) == merkle.consistency_proof(size1, size, leaves)


def test_tiles_are_served_from_the_chains_own_tombstones(rebuilt_log: Path) -> None:
    """A ``TileStore`` made with its directory only finds the deleted range nodes it needs in
    the chain's ``tombstones/``: node (6, 8), over [512, 576), folds a range node of the first
    tombstone, 33 present leaves, the second tombstone and 16 more present leaves."""
    with AuditLog.open(rebuilt_log, mode="read") as log:
        origin = log.chain_origin(CHAIN)
        size = log.verify(keyless=True).chains[CHAIN].size
    tombstones = TombstoneStore(chain_dir(rebuilt_log) / "tombstones", origin, None).load()
    first, second = sorted(tombstones.values(), key=lambda t: t.first_index)
    leaves = b"".join(b for _, b in leaf_blocks(chain_dir(rebuilt_log) / "segments", CHAIN))
    expected = CompactRange(512, 512)
    expected.merge(CompactRange(512, 520, first.range_hashes[1:]))
    expected.extend_joined(leaves[: 33 * 32])
    expected.merge(second.range())
    expected.extend_joined(leaves[33 * 32 : 49 * 32])
    assert (expected.begin, expected.end, len(expected.hashes)) == (512, 576, 1)
    assert TileStore(tiles_dir(rebuilt_log)).node(6, 8, size) == expected.hashes[0]
