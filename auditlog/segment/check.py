"""Checking a chain: what links the scans of its segments, fed in order (keyless verification).

``ChainCheck`` checks indexes, the block hash chain, the Merkle roots recomputed from the
leaves, each seal, and the tombstones that stand for deleted segments. Keyless verification and
writer recovery both use it, so there is one definition of an intact chain. A ``NodeSink`` given
to it receives the tree nodes it computes on the way (verification holds the tiles against
them), so that nothing needs a second pass over the segments.
"""

from __future__ import annotations

import builtins
import hmac
from dataclasses import dataclass, field
from typing import Protocol

from auditlog._fast import chunks, extend_tree
from auditlog.errors import IntegrityError
from auditlog.merkle import EMPTY_ROOT, CompactRange
from auditlog.segment.blocks import ParsedBlock
from auditlog.segment.format import TIME_GRANULE_US, Seal, Tombstone, genesis_hash
from auditlog.segment.scan import SegmentScan

__all__ = ["ChainCheck", "NodeSink"]


class NodeSink(Protocol):
    """Receives, in chain order, the leaves and stride nodes a ``ChainCheck`` has checked."""

    def block(
        self, first_index: int, leaves: bytes, stride_nodes: list[tuple[int, int, bytes]]
    ) -> None:
        """A block's leaves (joined) and the nodes of levels 8, 16, ... they completed."""

    def deleted(self, deleted: CompactRange, stride_nodes: list[tuple[int, int, bytes]]) -> None:
        """A tombstone's compact range and the nodes of levels 8, 16, ... its merge completed
        (its own subtrees at those levels included)."""


@dataclass
class ChainCheck:
    """Checks the segments of one chain, fed in order, as a chain: the keyless verification.

    Start from the beginning (``ChainCheck.start``) or from a trusted seal (``resume``): writer
    recovery resumes after the last sealed segment instead of rereading the whole chain.
    """

    chain: str
    origin: str
    tree: CompactRange
    last_hash: bytes
    next_sequence: int
    blocks: int = 0
    records: int = 0
    bytes: int = 0
    segments: int = 0
    sealed_open: bool = False  # the previous segment was not sealed (only the last may be)
    periods: set[int] = field(default_factory=set)
    roots: dict[int, builtins.bytes] = field(default_factory=dict)
    tombstones: dict[int, Tombstone] = field(default_factory=dict)
    tombstoned: list[tuple[int, int]] = field(default_factory=list)  # deleted index ranges
    wanted: set[int] = field(default_factory=set)  # tree sizes whose roots to record too
    pending_deletion: int = 0  # segments a tombstone stands for that an unfinished sweep left
    pending: set[int] = field(default_factory=set)  # segments an unfinished sweep will delete
    nodes: NodeSink | None = None  # told the tree nodes as they are checked

    @classmethod
    def start(cls, chain: str, origin: str) -> ChainCheck:
        check = cls(chain, origin, CompactRange(0, 0), genesis_hash(origin), 0)
        check.roots[0] = EMPTY_ROOT
        return check

    @classmethod
    def resume(cls, chain: str, origin: str, sequence: int, seal: Seal) -> ChainCheck:
        """Continue after sealed segment ``sequence`` whose seal is ``seal``."""
        tree = CompactRange(0, seal.end_index, seal.frontier)
        return cls(chain, origin, tree, seal.last_block_hash, sequence + 1)

    @classmethod
    def resume_after(cls, chain: str, origin: str, tombstone: Tombstone) -> ChainCheck:
        """Continue after the segments a tombstone stands for."""
        tree = CompactRange(0, tombstone.end_index, tombstone.frontier)
        return cls(chain, origin, tree, tombstone.last_block_hash, tombstone.last_sequence + 1)

    def apply_tombstones(self, before_sequence: int | None = None) -> None:
        """Step over deleted segments that come next (up to ``before_sequence``), by tombstone.

        The tombstone's compact range extends the tree exactly as the deleted leaves did, and
        its hashes of the chain join the blocks before and after the gap.
        """
        while self.next_sequence in self.tombstones and (
            before_sequence is None or self.next_sequence < before_sequence
        ):
            tombstone = self.tombstones[self.next_sequence]
            if tombstone.last_sequence < tombstone.first_sequence:
                raise IntegrityError("a tombstone names an empty range of segments")
            where = {
                "chain": self.chain,
                "tombstone": f"{tombstone.first_sequence}-{tombstone.last_sequence}",
            }
            if self.sealed_open:
                raise IntegrityError(
                    "deleted segments follow a segment that is not sealed", location=where
                )
            if tombstone.first_index != self.size or not hmac.compare_digest(
                tombstone.prev_hash, self.last_hash
            ):
                raise IntegrityError(
                    "a tombstone does not join the chain where it stands: the chain around "
                    "deleted segments was changed",
                    location=where,
                )
            deleted = tombstone.range()
            stride_nodes: list[tuple[int, int, builtins.bytes]] = []
            self.tree.merge(deleted, stride_nodes if self.nodes is not None else None)
            if self.tree.hashes != tombstone.frontier:
                raise IntegrityError("a tombstone's frontier does not match", location=where)
            if self.nodes is not None:
                self.nodes.deleted(deleted, stride_nodes)
            self.last_hash = tombstone.last_block_hash
            self.next_sequence = tombstone.last_sequence + 1
            self.roots[tombstone.end_index] = self.tree.root()
            self.tombstoned.append((tombstone.first_index, tombstone.end_index))

    @property
    def size(self) -> int:
        return self.tree.end

    def root(self) -> builtins.bytes:
        return self.tree.root()

    def feed(self, scan: SegmentScan) -> None:
        """Check one more segment; raises ``IntegrityError`` naming the first problem."""
        where: dict[str, object] = {"chain": self.chain, "segment": scan.sequence}
        self.apply_tombstones(scan.sequence)
        if scan.sequence in self.pending and any(
            t.first_sequence <= scan.sequence <= t.last_sequence < self.next_sequence
            for t in self.tombstones.values()
        ):
            # A sweep (its signed journal names this segment) stored the tombstone and was
            # stopped before deleting the segment: the tombstone already stands for it, and the
            # next write-open deletes it. Without such a journal it is an error below.
            self.pending_deletion += 1
            return
        if self.sealed_open:
            raise IntegrityError(
                "a segment that is not sealed is followed by another segment: a segment's "
                "seal was removed or the segment was truncated",
                location={"chain": self.chain, "segment": scan.sequence - 1},
            )
        if scan.sequence < self.next_sequence:
            raise IntegrityError(
                f"segment {scan.sequence} is back although a signed tombstone says it was "
                "deleted (restored from a backup?)",
                location=where,
            )
        if scan.sequence != self.next_sequence:
            raise IntegrityError(
                f"segment {self.next_sequence} is missing (found {scan.sequence} next) and no "
                "signed tombstone stands for it: it was deleted by hand, or a sweep was "
                "stopped before storing its tombstone (then `auditlog sweep --apply`, or any "
                "write-open, finishes it)",
                location=where,
            )
        self.next_sequence += 1
        self.segments += 1
        self.bytes += scan.size
        if scan.first_index == -1:  # a torn file header: the segment was being created
            self.sealed_open = True
            return
        if scan.first_index != self.size:
            raise IntegrityError(
                f"segment starts at index {scan.first_index} but the chain so far ends at "
                f"{self.size}: a segment was removed, duplicated or reordered",
                location=where,
            )
        block_index: list[tuple[int, int]] = []
        for ordinal, block in enumerate(scan.blocks):
            self._feed_block(block, {**where, "block": ordinal, "offset": block.offset})
            block_index.append((block.header.first_index, block.offset))
        if scan.seal is None:
            self.sealed_open = True
            return
        self._check_seal(scan, block_index, where)

    def _feed_block(self, block: ParsedBlock, where: dict[str, object]) -> None:
        header = block.header
        where = {**where, "index": header.first_index}
        if header.first_index != self.size:
            raise IntegrityError(
                f"block starts at index {header.first_index}, expected {self.size}: a block "
                "was removed, duplicated or reordered",
                location=where,
            )
        if not hmac.compare_digest(header.prev_hash, self.last_hash):
            raise IntegrityError(
                "block does not name the previous block's hash: the hash chain is broken "
                "(a block was removed, inserted, reordered, or segments were swapped)",
                location=where,
            )
        if header.tree_size != header.first_index + header.count:
            raise IntegrityError("block's tree size does not match its count", location=where)
        if header.min_time > header.max_time:
            raise IntegrityError("block's time range is inverted", location=where)
        if header.min_time % TIME_GRANULE_US or header.max_time % TIME_GRANULE_US:
            raise IntegrityError("block's time range is not in whole minutes", location=where)
        leaves = bytes(block.leaves)
        stride_nodes: list[tuple[int, int, builtins.bytes]] | None = (
            [] if self.nodes is not None else None
        )
        # Roots asked for inside the block (a checkpoint held by someone else may fall there).
        cuts = sorted(s for s in self.wanted if header.first_index < s < header.tree_size)
        if cuts:
            done = 0
            for size in cuts:
                cut = (size - header.first_index) * 32
                self.tree.extend_joined(leaves[done:cut], stride_nodes)
                self.roots[size] = self.tree.root()
                done = cut
            self.tree.extend_joined(leaves[done:], stride_nodes)
            root = self.tree.root()
        else:
            # The common case in one C call: the tree extended by the block's leaves, its new
            # root and the stride nodes for the tiles.
            frontier, root, found = extend_tree(
                self.tree.end, b"".join(self.tree.hashes), leaves, stride_nodes is not None
            )
            self.tree = CompactRange(0, header.tree_size, list(chunks(frontier, 32)))
            if stride_nodes is not None:
                stride_nodes = found
        self.roots[header.tree_size] = root
        if not hmac.compare_digest(root, header.tree_root):
            raise IntegrityError(
                "the Merkle root recomputed from the leaves differs from the block header's: "
                "a leaf was changed",
                location=where,
            )
        if self.nodes is not None and stride_nodes is not None:
            self.nodes.block(header.first_index, leaves, stride_nodes)
        self.last_hash = block.block_hash
        self.blocks += 1
        self.records += header.count
        self.periods.add(header.period)

    def _check_seal(
        self, scan: SegmentScan, block_index: list[tuple[int, int]], where: dict[str, object]
    ) -> None:
        seal = scan.seal
        assert seal is not None
        where = {**where, "seal": True}
        expected = (
            len(scan.blocks),
            scan.first_index,
            self.size,
            self.last_hash,
            self.root(),
            tuple(self.tree.hashes),
            tuple(sorted({b.header.period for b in scan.blocks})),
            tuple(block_index),
        )
        if not scan.blocks or expected != seal.description():
            raise IntegrityError("the segment's seal does not describe its blocks", location=where)
