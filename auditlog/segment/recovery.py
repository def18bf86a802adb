"""Opening a chain for writing: check its tail, cut what a crash left, bring its tiles in step.

Opening costs a few reads, not a segment's or the chain's: the last segment is checked as the
continuation of the seal (or tombstone) before it, by its entries' heads and its last block,
and its tree comes from the tiles when they reproduce the roots that vouch for it. A torn tail
(an entry cut short, or a file extended with zeros by a crash) is cut and reported; damage is
never cut here (``repair`` does that, on request, keeping the bytes).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from auditlog import note
from auditlog._fs import fsync_dir
from auditlog.errors import ConfigurationError, IntegrityError, NoteError
from auditlog.merkle import CompactRange, range_nodes
from auditlog.segment.check import ChainCheck
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.segment.files import ChainFiles
from auditlog.segment.format import Seal, Tombstone
from auditlog.segment.scan import list_segments, read_seal, scan_segment, segment_path
from auditlog.segment.tail import SegmentTail, TailVouch, read_tail, tree_from_tiles
from auditlog.segment.tiles import TileStore, unchecked_tombstones
from auditlog.segment.tombstone import TombstoneStore

__all__ = [
    "RecoveryReport",
    "check_tail",
    "cut_torn_tail",
    "leaf_blocks",
    "rebuild_tiles",
    "recover_tiles",
    "tree_pieces",
]


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening a chain for writing found and did: a torn tail cut, and where."""

    chain: str
    segment: int
    offset: int
    bytes_cut: int
    durable_records: int


def check_tail(
    files: ChainFiles, chain: str, origin: str, store: TombstoneStore | None = None
) -> tuple[ChainCheck, SegmentTail | None]:
    """Check a chain's last segment as a continuation of what comes before it.

    ``store`` holds the chain's tombstones (loaded here, signatures checked) and the key that
    checks its signed checkpoints; the check returned carries the tombstones.

    What comes before is the seal of the segment before (read from its tail), or the tombstone
    of deleted segments, or the chain's start; with ``verifier_key``, the newest signed
    checkpoint must agree with it where it falls at its end or inside the last segment. The
    last segment is read by ``read_tail`` (entry heads, the last block in full) and its tree
    taken from the tiles when their root is the one its last block names; else (tiles missing,
    behind or wrong) it is read and re-hashed whole. Opening costs a few reads, however long
    the chain. Returns the check positioned after the last segment (or after the last
    tombstone, when the newest segments were deleted) and the last segment's tail (None when
    there is none after the tombstones). Raises ``IntegrityError`` for damage (a torn tail is
    not damage: the tail reports it).
    """
    tombstones = store.load() if store is not None else {}
    verifier_key = store.verifier_key if store is not None else None
    segments_dir = files.segments
    segments = list_segments(segments_dir)
    newest_tombstone = max(tombstones.values(), key=lambda t: t.last_sequence, default=None)
    if newest_tombstone is not None and (
        not segments or newest_tombstone.last_sequence > segments[-1][0]
    ):
        check = ChainCheck.resume_after(chain, origin, newest_tombstone)
        check.tombstones = tombstones
        return check, None
    if not segments:
        check = ChainCheck.start(chain, origin)
        check.tombstones = tombstones
        return check, None
    sequence, path = segments[-1]
    previous = sequence - 1
    tombstone = next((t for t in tombstones.values() if t.last_sequence == previous), None)
    if sequence == 0:
        check = ChainCheck.start(chain, origin)
    elif tombstone is not None:
        check = ChainCheck.resume_after(chain, origin, tombstone)
    else:
        seal = _seal_before(segments_dir, chain, previous)
        check = ChainCheck.resume(chain, origin, previous, seal)
    check.tombstones = tombstones
    signed = _newest_checkpoint(files, origin, verifier_key)
    if signed is not None and signed[0] == check.size:
        _require_root(check.root(), signed, chain, "the seal (or tombstone) before the tail")
    tail = read_tail(path, sequence, chain=chain, first_index=check.size, prev_hash=check.last_hash)
    if tail.first_index == -1:  # a torn file header: the segment was being created
        check.next_sequence += 1
        check.segments += 1
        check.sealed_open = True
        return check, tail
    inside = signed if signed is not None and check.size < signed[0] <= tail.end_index else None
    if _continue_from_tiles(check, tail, files, inside):
        return check, tail
    # The tiles could not vouch for the tree: read and re-hash the whole segment.
    if inside is not None:
        check.wanted = {inside[0]}
    scan = scan_segment(path.read_bytes(), path, sequence, chain=chain, allow_torn=True)
    check.feed(scan)
    if inside is not None and inside[0] in check.roots:
        _require_root(check.roots[inside[0]], inside, chain, "the last segment's records")
    return check, SegmentTail.of_scan(scan)


def _seal_before(segments_dir: Path, chain: str, previous: int) -> Seal:
    """The seal of the segment before the last one, read from its tail (whole if need be, to
    say what is wrong with it)."""
    before_path = segment_path(segments_dir, previous)
    try:
        fd = os.open(before_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise IntegrityError(
            f"segment {previous} is missing and no tombstone stands for it",
            location={"chain": chain, "segment": previous},
        ) from None
    try:
        found = read_seal(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    if found is not None:
        return found[0]
    before = scan_segment(
        before_path.read_bytes(), before_path, previous, chain=chain, allow_torn=False
    )
    if before.seal is None:
        raise IntegrityError(
            "the segment before the last one is not sealed; run `auditlog verify` to find "
            "out what happened",
            location={"chain": chain, "segment": previous},
        )
    return before.seal


def _newest_checkpoint(
    files: ChainFiles, origin: str, verifier_key: str | None
) -> tuple[int, bytes] | None:
    """(size, root) of the chain's newest stored checkpoint, if its signature holds; None
    without a key or a checkpoint (one that does not open is left to ``verify``)."""
    if verifier_key is None:
        return None
    store = CheckpointStore(files.checkpoints)
    newest = store.latest()
    if newest is None:
        return None
    size, signed = newest
    try:
        checkpoint = note.Checkpoint.from_text(note.open_note(signed, [verifier_key]))
    except NoteError:
        return None
    if checkpoint.origin != origin or checkpoint.size != size:
        return None
    return size, checkpoint.root_hash


def _require_root(found: bytes, signed: tuple[int, bytes], chain: str, what: str) -> None:
    if not hmac.compare_digest(found, signed[1]):
        raise IntegrityError(
            f"{what} give another tree root at size {signed[0]} than the chain's own signed "
            "checkpoint: the segments were changed. Nothing was written; run `auditlog "
            "verify` and restore the chain from a backup",
            location={"chain": chain, "checkpoint": signed[0]},
        )


def _continue_from_tiles(
    check: ChainCheck,
    tail: SegmentTail,
    files: ChainFiles,
    inside: tuple[int, bytes] | None,
) -> bool:
    """Move ``check`` past ``tail`` with the tree the tiles give, if its root is the one the
    last block's header names (and a signed checkpoint's inside the segment): the tail's
    entries were checked by ``read_tail``, its last block in full. False if the tiles cannot
    vouch for it (nothing is changed then)."""
    tiles = TileStore(files.tiles)
    start = check.tree
    fd = os.open(tail.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        built = tree_from_tiles(tiles, start, tail, fd)
    finally:
        os.close(fd)
    if built is None:
        return False
    tree, pieces = built
    if tail.blocks and not hmac.compare_digest(tree.root(), tail.blocks[-1].header.tree_root):
        return False
    if inside is not None and _root_from_tiles(tiles, start, inside[0]) != inside[1]:
        return False
    last_hash = tail.last_block.block_hash if tail.last_block is not None else check.last_hash
    if tail.seal is not None and not _seal_matches(tail, tree, last_hash):
        return False  # the whole read says what is wrong
    if pieces and tiles.expected_sizes(tree.end)[0] > _stored_bytes(tiles):
        for first, leaves, stride_nodes in pieces:
            tiles.write(first, leaves, stride_nodes)  # what a crash kept from the tiles
    tail.unvouched = TailVouch(
        check.chain,
        check.origin,
        tail.path,
        tail.sequence,
        tail.good_size,
        start,
        check.last_hash,
        tree.hashes,
        last_hash,
    )
    check.tree = tree
    check.last_hash = last_hash
    check.next_sequence += 1
    check.segments += 1
    check.blocks += len(tail.blocks)
    check.records += tail.record_count
    check.sealed_open = tail.seal is None
    return True


def _stored_bytes(tiles: TileStore) -> int:
    try:
        return os.stat(tiles.path(0)).st_size
    except FileNotFoundError:
        return 0


def _root_from_tiles(tiles: TileStore, start: CompactRange, size: int) -> bytes | None:
    """The root at ``size`` of ``start`` and the tiles' nodes after it; None if they lack it."""
    try:
        hashes = [tiles.node(level, index, size) for level, index in range_nodes(start.end, size)]
    except (IntegrityError, ConfigurationError, OSError):
        return None
    tree = CompactRange(start.begin, start.end, start.hashes)
    tree.merge(CompactRange(start.end, size, hashes))
    return tree.root()


def _seal_matches(tail: SegmentTail, tree: CompactRange, last_hash: bytes) -> bool:
    """Whether a sealed last segment's seal says what its blocks and tree say."""
    seal = tail.seal
    assert seal is not None
    return bool(tail.blocks) and seal.description() == (
        len(tail.blocks),
        tail.first_index,
        tree.end,
        last_hash,
        tree.root(),
        tree.hashes,
        tuple(sorted({b.header.period for b in tail.blocks})),
        tuple((b.header.first_index, b.offset) for b in tail.blocks),
    )


def cut_torn_tail(scan: SegmentTail, chain: str, durable_records: int) -> RecoveryReport:
    """Cut the torn tail of a chain's last segment (or the whole file, if its header is torn)."""
    fd = os.open(scan.path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, 0 if scan.first_index == -1 else scan.good_size)
        os.fsync(fd)
    finally:
        os.close(fd)
    if scan.first_index == -1:
        # The file was being created when the process died: no block ever reached it.
        scan.path.unlink()
        fsync_dir(scan.path.parent)
    return RecoveryReport(
        chain=chain,
        segment=scan.sequence,
        offset=scan.good_size if scan.first_index != -1 else 0,
        bytes_cut=scan.torn_bytes,
        durable_records=durable_records,
    )


def recover_tiles(
    tiles: TileStore,
    files: ChainFiles,
    chain: str,
    size: int,
    *,
    any_deleted: bool = False,
    tombstones: Mapping[int, Tombstone] | None = None,
) -> None:
    """Bring the tiles in step with the recovered chain: cut extra nodes, and rebuild them
    from the segments and tombstones if a level file has another length than ``size`` calls
    for (or is missing, or a stray file is there).

    ``tombstones`` are the chain's, as the writer's open checked them; without them, a chain
    with ``any_deleted`` reads its tombstones' texts (their signatures were just checked).
    """
    tiles.truncate(size)
    if tiles.matches(size):
        return
    if tombstones is None and any_deleted:
        tombstones = {t.first_sequence: t for t in unchecked_tombstones(files.tombstones)}
    rebuilt = rebuild_tiles(tiles, files, chain, tombstones or {})
    if rebuilt != size:
        raise IntegrityError(
            f"rebuilding tiles found {rebuilt} leaves, the chain has {size}",
            location={"chain": chain},
        )


def rebuild_tiles(
    tiles: TileStore, files: ChainFiles, chain: str, tombstones: Mapping[int, Tombstone]
) -> int:
    """Write the chain's tiles again from its segments and tombstones (one pass, no key);
    returns the tree size they hold."""
    return tiles.rebuild(tree_pieces(files.segments, chain, tombstones))


def tree_pieces(
    segments_dir: Path, chain: str, tombstones: Mapping[int, Tombstone]
) -> Iterator[tuple[int, bytes] | CompactRange]:
    """What the chain's tree is made of, in index order (no key needed): ``(first index,
    joined leaves)`` of every block of the segments present, and the compact range of every
    tombstone where it stands. As in verification, a tombstone whose first segment is still
    there is not used, and the other segments a used tombstone stands for (an unfinished sweep
    may have left some) are passed over."""
    present = {sequence for sequence, _ in list_segments(segments_dir)}
    waiting = sorted(
        (t for t in tombstones.values() if t.first_sequence not in present),
        key=lambda t: t.first_index,
    )
    deleted = {s for t in waiting for s in range(t.first_sequence, t.last_sequence + 1)}
    for first, leaves in leaf_blocks(segments_dir, chain, deleted):
        while waiting and waiting[0].first_index <= first:
            yield waiting.pop(0).range()
        yield first, leaves
    for tombstone in waiting:
        yield tombstone.range()


def leaf_blocks(
    segments_dir: Path, chain: str, passed_over: Container[int] = ()
) -> Iterator[tuple[int, bytes]]:
    """(first index, joined leaves) of every block of a chain, in order (no key needed), but
    those of the segments ``passed_over``."""
    segments = list_segments(segments_dir)
    for position, (sequence, path) in enumerate(segments):
        if sequence in passed_over:
            continue
        last = position == len(segments) - 1
        scan = scan_segment(path.read_bytes(), path, sequence, chain=chain, allow_torn=last)
        for block in scan.blocks:
            yield block.header.first_index, bytes(block.leaves)
