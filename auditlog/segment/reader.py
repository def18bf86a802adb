"""Reading a chain: keyless and keyed verification, and decrypting records by index range.

Verification holds the tiles beside the segments against the tree it recomputes, in the same
pass: they are derived data, but a proof built from them must not be the first to notice.
"""

from __future__ import annotations

import builtins
import fcntl
import os
from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from auditlog.clock import datetime_to_micros
from auditlog.codec import unpack_fields
from auditlog.crypto.keys import ChainKeyring, PeriodKeys
from auditlog.errors import IntegrityError
from auditlog.segment.blocks import ParsedBlock
from auditlog.segment.check import ChainCheck
from auditlog.segment.files import ChainFiles
from auditlog.segment.format import ENTRY_BLOCK, ENTRY_SEAL, MAGIC, EntryHead, Tombstone
from auditlog.segment.frames import DictionaryStore, decrypt_block
from auditlog.segment.index import SegmentIndex, SegmentLayout, read_indexed_block
from auditlog.segment.record_check import records_verify
from auditlog.segment.scan import (
    SegmentScan,
    entry_heads,
    list_segments,
    read_block,
    read_file_header,
    scan_segment,
)
from auditlog.segment.tiles import TileCheck, TileStore

__all__ = ["ChainReader", "ChainReport", "RecordKeys"]

Progress = Callable[[int], None]


class RecordKeys(Protocol):
    """What keyed verification asks of a chain's keys: a ``ChainKeyring``, or the unwrapped
    keys a verification worker holds."""

    @property
    def shredded(self) -> Container[int]:
        """The periods whose key was shredded."""

    def get(self, period: int) -> PeriodKeys:
        """The keys of ``period``; raises if there are none."""


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What verifying one chain found: its size, root and shape."""

    chain: str
    records: int
    blocks: int
    segments: int
    bytes: int
    root: builtins.bytes
    torn_tail_bytes: int
    sealed_segments: int
    roots: dict[int, builtins.bytes] = field(default_factory=dict, repr=False)
    """The tree root after every block (and of the empty tree), by tree size."""
    size: int = 0
    """The tree size: records present plus records deleted by sweeps."""
    tombstoned: tuple[tuple[int, int], ...] = ()
    """Index ranges [first, end) deleted by sweeps, stood for by signed tombstones."""
    shredded_records: int = 0
    """Records present whose period key was shredded (checked without keys only)."""


def _micros_of(value: object) -> int:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise IntegrityError("a stored record has no valid occurred_at")
    return datetime_to_micros(value)


@contextmanager
def _writer_absent(files: ChainFiles, holding_lock: bool) -> Iterator[bool]:
    """Whether no writer holds the chain's lock; while it is true, none can start.

    Taken only when the tail of the tiles is unsettled, for the moment a re-read takes: a
    shared lock, so a writer opening right then is refused as if another writer held it. A lock
    file that cannot be opened (no permission) counts as held: nothing is then concluded.
    """
    if holding_lock:
        yield True
        return
    try:
        fd = os.open(files.lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield True  # no writer ever opened this chain here (a copy of the log)
        return
    except PermissionError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            absent = False
        else:
            absent = True
        yield absent
    finally:
        os.close(fd)


# A block is read whole (its hash checked) unless fewer than 1/_FEW of its records are wanted.
_FEW = 8


class ChainReader:
    """Reads one chain's segments; never takes the writer's lock, never changes a file."""

    def __init__(
        self,
        files: ChainFiles,
        chain: str,
        origin: str,
        period_seconds: int,
        index: SegmentIndex | None = None,
        dictionaries: DictionaryStore | None = None,
    ) -> None:
        """``index``: what the log handle learned of the chain's segments before (a fresh one
        if not given); ``dictionaries``: the handle's store of the chain's dictionaries, whose
        codecs it keeps while the keys they were opened with are cached."""
        self.files = files
        self.index = index if index is not None else SegmentIndex()
        self.chain = chain
        self.origin = origin
        self._period_us = period_seconds * 1_000_000
        self._segments_dir = files.segments
        self.dictionaries = dictionaries or DictionaryStore(files.dicts, origin)

    def segment_files(self) -> list[tuple[int, Path]]:
        return list_segments(self._segments_dir)

    def total_bytes(self) -> int:
        return sum(path.stat().st_size for _, path in self.segment_files())

    def scans(self, sequences: set[int] | None = None) -> Iterator[SegmentScan]:
        """Every segment (or those ``sequences``), parsed and self-hash-checked.

        Only the chain's last segment may end torn.
        """
        files = self.segment_files()
        for position, (sequence, path) in enumerate(files):
            if sequences is not None and sequence not in sequences:
                continue
            last = position == len(files) - 1
            yield scan_segment(path.read_bytes(), path, sequence, chain=self.chain, allow_torn=last)

    def decrypt(
        self,
        block: ParsedBlock,
        keyring: ChainKeyring,
        where: dict[str, object],
        *,
        positions: range | None = None,
        skip_redacted: bool = False,
    ) -> Iterator[tuple[int, bytes]]:
        """(index, canonical record) of a block's frames, with its period's key and dictionary.

        ``where`` names the block in the location of any error.
        """
        keys = keyring.get(block.header.period)
        codec = self.dictionaries.codec(keys, block.header.dictionary_id, where)
        return decrypt_block(
            block, keys, codec, self.origin, where, positions=positions, skip_redacted=skip_redacted
        )

    def end(self, files: list[tuple[int, Path]]) -> tuple[int, bool]:
        """Where the chain of ``files`` ends, and whether its newest segment is sealed.

        Only entry prefixes are read: the end comes from the newest segment that says.
        """
        newest_sealed = False
        for position, (_, path) in enumerate(reversed(files)):
            heads = entry_heads(path)
            if position == 0:
                newest_sealed = bool(heads) and heads[-1].kind == ENTRY_SEAL
            blocks = [h for h in heads if h.kind == ENTRY_BLOCK]
            if blocks:
                return blocks[-1].first_index + blocks[-1].count, newest_sealed
            header = read_file_header(path)
            if header is not None and header.magic == MAGIC:
                return header.first_index, newest_sealed  # a new segment with no block yet
        return 0, newest_sealed

    def verify(
        self,
        keyring: RecordKeys | None,
        progress: Progress | None = None,
        tombstones: dict[int, Tombstone] | None = None,
        redactions: set[int] | None = None,
        wanted_roots: set[int] | None = None,
        pending_segments: set[int] | None = None,
        *,
        holding_lock: bool = False,
    ) -> ChainReport:
        """Check the whole chain and its tiles; with a keyring, also decrypt and re-hash every
        record.

        Deleted segments are stepped over by their (signature-checked) tombstones; blocks of
        shredded periods are checked without keys only, and counted. Damage to the tiles is
        raised only once the chain itself has verified, so an error about the tiles
        (``tiles.is_tile_damage``) means the segments are intact. ``holding_lock`` says the
        caller holds the chain's writer lock, so no writer can be behind an unsettled tail.
        """
        check = ChainCheck.start(self.chain, self.origin)
        check.tombstones = dict(tombstones or {})
        check.wanted = set(wanted_roots or ())
        check.pending = set(pending_segments or ())
        tiles = check.nodes = TileCheck(TileStore(self.files.tiles), self.chain)
        try:
            return self._verify(
                check, tiles, keyring, progress, redactions or set(), holding_lock=holding_lock
            )
        finally:
            tiles.close()

    def _verify(
        self,
        check: ChainCheck,
        tiles: TileCheck,
        keyring: RecordKeys | None,
        progress: Progress | None,
        allowed: set[int],
        *,
        holding_lock: bool,
    ) -> ChainReport:
        torn = 0
        torn_new = False  # the last segment is a torn new one (its header never made it)
        sealed = 0
        shredded = 0
        for scan in self.scans():
            check.feed(scan)
            for ordinal, block in enumerate(scan.blocks):
                for position in block.redacted:
                    if block.header.first_index + position not in allowed:
                        raise IntegrityError(
                            "a record's frame is missing but no redaction signed by the log "
                            "names it: it was erased by someone else",
                            location={
                                "chain": self.chain,
                                "segment": scan.sequence,
                                "block": ordinal,
                                "index": block.header.first_index + position,
                            },
                        )
            torn = scan.torn_bytes
            torn_new = scan.first_index == -1
            sealed += scan.seal is not None
            if keyring is not None:
                for ordinal, block in enumerate(scan.blocks):
                    if block.header.period in keyring.shredded:
                        shredded += block.header.count
                        continue
                    self._verify_frames(scan, ordinal, block, keyring)
            if progress is not None:
                progress(scan.size)
        check.apply_tombstones()
        # A chain shorter than a size asked for is a rollback, which the caller's check of the
        # checkpoints reports: that says more than what the tiles hold beyond the chain.
        if all(size <= check.size for size in check.wanted) and tiles.finish(check.size):
            with _writer_absent(self.files, holding_lock) as absent:
                if absent:
                    end, _ = self.end(self.segment_files())
                    tiles.settle(max(check.size, end), torn=torn > 0 or torn_new)
        return ChainReport(
            chain=self.chain,
            records=check.records,
            blocks=check.blocks,
            segments=check.segments,
            bytes=check.bytes,
            root=check.root(),
            torn_tail_bytes=torn,
            sealed_segments=sealed,
            roots=check.roots,
            size=check.size,
            tombstoned=tuple(check.tombstoned),
            shredded_records=shredded,
        )

    def _verify_frames(
        self, scan: SegmentScan, ordinal: int, block: ParsedBlock, keyring: RecordKeys
    ) -> None:
        header = block.header
        where: dict[str, object] = {
            "chain": self.chain,
            "segment": scan.sequence,
            "block": ordinal,
            "offset": block.offset,
        }
        keys = keyring.get(header.period)
        codec = self.dictionaries.codec(keys, header.dictionary_id, where)
        if records_verify(block, keys, codec, self.origin, self._period_us):
            return
        # Something is wrong: find the first record at fault, in record order, and name it.
        for index, canonical in decrypt_block(
            block, keys, codec, self.origin, where, skip_redacted=True
        ):
            try:
                fields = unpack_fields(canonical)
                moment = _micros_of(fields.get("occurred_at"))
            except (ValueError, IntegrityError):
                raise IntegrityError(
                    "record is not a well-formed canonical record",
                    location={**where, "index": index},
                ) from None
            if not header.min_time <= moment <= header.max_time:
                raise IntegrityError(
                    "record time lies outside its block's time range",
                    location={**where, "index": index},
                )
            if moment // self._period_us != header.period:
                raise IntegrityError(
                    "record belongs to another period than its block",
                    location={**where, "index": index},
                )

    def records_of_period(
        self, keyring: ChainKeyring, period: int, sequences: set[int] | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """(index, canonical record) of every readable record of ``period`` (in the segments
        ``sequences``, if given), in order."""
        for scan in self.scans(sequences):
            for ordinal, block in enumerate(scan.blocks):
                if block.header.period != period:
                    continue
                where: dict[str, object] = {
                    "chain": self.chain,
                    "segment": scan.sequence,
                    "block": ordinal,
                }
                yield from self.decrypt(block, keyring, where, skip_redacted=True)

    def first_indexes(self) -> list[tuple[int, int, Path]]:
        """(first index, sequence, path) of every segment, from the file headers alone."""
        out = []
        for sequence, path in self.segment_files():
            header = read_file_header(path)
            if header is not None:
                out.append((header.first_index, sequence, path))
        return out

    def tail(self, keyring: ChainKeyring, count: int) -> Iterator[tuple[int, bytes]]:
        """The readable records among the last ``count`` of the newest segment (O(1) reads).

        Shredded periods and redacted records are passed over, not raised.
        """
        files = self.segment_files()
        if not files:
            return
        sequence, path = files[-1]
        blocks = [h for h in entry_heads(path) if h.kind == ENTRY_BLOCK]
        wanted: list[EntryHead] = []
        for head in reversed(blocks):
            wanted.insert(0, head)
            if sum(h.count for h in wanted) >= count:
                break
        for head in wanted:
            block = read_block(path, head, chain=self.chain, sequence=sequence)
            if block.header.period in keyring.shredded:
                continue
            where: dict[str, object] = {"chain": self.chain, "segment": sequence}
            yield from self.decrypt(block, keyring, where, skip_redacted=True)

    def read(
        self, keyring: ChainKeyring, start: int, end: int | None
    ) -> Iterator[tuple[int, bytes]]:
        """(index, canonical record) for indexes in [start, end), in order.

        The blocks are found through the handle's ``SegmentIndex`` (a sealed segment's seal, the
        open segment's entries): O(log n) work a read once a segment is known, and a range is
        streamed block by block. A segment with a later one must be sealed and reach the next
        one's first record (``_require_whole``): a read is never silently short.
        """
        limit = end if end is not None else 1 << 64
        files = self.segment_files()
        index = self.index
        index.prune({sequence for sequence, _ in files})
        position = self._locate(files, start)
        wanted = start  # the first index not yet yielded
        relearned: set[int] = set()
        while position < len(files) and wanted < limit:
            sequence, path = files[position]
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                layout = index.layout(sequence, fd)
                if (
                    layout.first_index > wanted
                    and position > 0
                    and wanted == start
                    and sequence not in relearned
                ):
                    # Learned before, the segment's first index now lies past the one asked
                    # for: the file was replaced; find the segment again from fresh headers.
                    relearned.add(sequence)
                    index.forget(sequence)
                    position = self._locate(files, start, fresh=True)
                    continue
                last = position + 1 == len(files)
                hopped_to = layout.hopped_to
                if (
                    last
                    and wanted >= layout.end
                    and hopped_to not in (None, os.fstat(fd).st_size)
                    and sequence not in relearned
                ):
                    # Bytes past the last entry the hop could follow: look at the file again.
                    relearned.add(sequence)
                    index.forget(sequence)
                    continue
                if not last:
                    self._require_whole(layout, files, position)
                for ordinal in layout.blocks(wanted, limit):
                    where: dict[str, object] = {
                        "chain": self.chain,
                        "segment": sequence,
                        "block": ordinal,
                        "offset": layout.offsets[ordinal],
                    }
                    # A few records of a block are authenticated one by one (AEAD and leaf);
                    # hashing the whole block for them would cost O(block) a read.
                    first, stop = layout.span(ordinal)[2:]
                    few = (min(limit, stop) - max(wanted, first)) * _FEW < stop - first
                    try:
                        block = read_indexed_block(fd, layout, ordinal, where, whole=not few)
                    except IntegrityError:
                        if sequence in relearned:
                            raise
                        relearned.add(sequence)  # the index may be stale: learn it once more
                        index.forget(sequence)
                        break
                    header = block.header
                    lo = max(wanted, header.first_index) - header.first_index
                    hi = min(limit, header.tree_size) - header.first_index
                    yield from self.decrypt(block, keyring, where, positions=range(lo, hi))
                    wanted = header.first_index + hi
                else:
                    position += 1
                    wanted = max(wanted, min(layout.end, limit))
            finally:
                os.close(fd)

    def _locate(self, files: list[tuple[int, Path]], start: int, *, fresh: bool = False) -> int:
        """The position in ``files`` of the segment that holds ``start``, by first indexes:
        the last one that begins at or before it (the first one if none does)."""
        if fresh:
            for sequence, _ in files:
                self.index.forget(sequence)
        chosen = 0
        for position, (sequence, path) in enumerate(files):
            first = self.index.first_index(sequence, path)
            if first is None:
                continue
            if first > start:
                break
            chosen = position
        return chosen

    def _require_whole(
        self, layout: SegmentLayout, files: list[tuple[int, Path]], position: int
    ) -> None:
        """A segment with a later one is sealed and ends where the next begins: one shortened
        (or cut inside) is an error, never a short read."""
        sequence = layout.sequence
        following, path = files[position + 1]
        next_first = None
        if following == sequence + 1:
            # The next present segment's first record, if it is the very next segment (a sweep
            # may have deleted those in between), read afresh.
            header = read_file_header(path)
            next_first = header.first_index if header is not None else -1
        if not layout.sealed or (next_first is not None and layout.end != next_first):
            raise IntegrityError(
                f"segment {sequence} of chain {self.chain!r} is not whole: it is not sealed, or "
                "its records do not reach the next segment's first record; it was shortened or "
                "cut. Run `auditlog verify` and restore the segment from a backup",
                location={"chain": self.chain, "segment": sequence},
            )
