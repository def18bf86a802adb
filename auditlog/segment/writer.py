"""The chain writer: append, group commit, segment roll and seal (recovery on open: ``recovery``).

One ``ChainWriter`` per chain and process, holding the chain's lock file for its lifetime (a
second writer, in this process or another, gets ``LogLockedError``). Appends assign indexes
and compute leaves at once, so receipts carry their leaf; ``flush`` turns the buffered records
into one block per period run, adds its leaves to the Merkle tree, writes it with a single
``write`` and ``fdatasync``s it. Only then do the records' receipts report ``durable``.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby, repeat
from operator import attrgetter, floordiv, sub
from pathlib import Path
from typing import TYPE_CHECKING

import zstandard

from auditlog._fast import concat_each, leaf_hashes, prefix_each
from auditlog._fs import create_exclusive, discard_leftovers, make_private_dir, write_all
from auditlog.clock import Clock, SystemClock, datetime_to_micros, future_limit
from auditlog.codec import encode_records, train_dictionary
from auditlog.crypto.keys import ChainKeyring, PeriodKeys
from auditlog.errors import AuditLogError, LateRecordError, RecordValidationError, RollbackError
from auditlog.segment.blocks import pack_block
from auditlog.segment.check import ChainCheck
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.segment.files import ChainFiles, acquire_chain_lock
from auditlog.segment.format import (
    TIME_GRANULE_US,
    BlockHeader,
    Seal,
    block_entry_size,
    file_header,
    frame_nonces,
)
from auditlog.segment.frames import DictionaryStore, origin_prefix
from auditlog.segment.recovery import RecoveryReport, check_tail, cut_torn_tail, recover_tiles
from auditlog.segment.scan import segment_path
from auditlog.segment.tail import SegmentTail, vouch
from auditlog.segment.tiles import TileStore
from auditlog.segment.tombstone import TombstoneStore

if TYPE_CHECKING:
    from auditlog.records import Record

__all__ = ["ChainSettings", "ChainWriter", "Durability", "check_batch"]


_MAX_PERIOD = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class ChainSettings:
    """How a chain's writer shapes its output (see ``auditlog.LogConfig``)."""

    period_seconds: int = 86_400
    max_segment_bytes: int = 64 << 20
    max_segment_records: int = 1_000_000
    block_max_records: int = 4096
    late_bound_seconds: int = 86_400
    dictionary_samples: int = 1000
    dictionary_bytes: int = 16 << 10
    max_future_seconds: int = 300


class Durability:
    """Shared by a chain's receipts: how many of the chain's records are on disk."""

    __slots__ = ("_cond", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._cond = threading.Condition()

    def advance(self, size: int) -> None:
        with self._cond:
            self.size = size
            self._cond.notify_all()

    def wait(self, index: int, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.size > index, timeout)


def _period_runs(periods: list[int], limit: int) -> list[tuple[int, int]]:
    """(start, end) of each run of consecutive records of one period, cut to ``limit`` records.

    ``periods`` is not empty. ``groupby`` finds the runs in C, where a loop in Python would cost
    bytecode per record; the common case, a single run, is decided by one ``list.count`` call.
    """
    count = len(periods)
    if count <= limit and periods.count(periods[0]) == count:
        return [(0, count)]
    runs: list[tuple[int, int]] = []
    start = 0
    for _, run in groupby(periods):
        stop = start + len(list(run))
        runs.extend((cut, min(cut + limit, stop)) for cut in range(start, stop, limit))
        start = stop
    return runs


def check_batch(writer: ChainWriter, records: Sequence[Record]) -> list[int]:
    """``writer.append_batch``'s checks of ``records``, nothing buffered (a caller spreading a
    batch over chains or blocks checks every part first); returns their times, for
    ``append_batch(times=...)``."""
    times = _micros_of(records)
    writer.append_batch(records, check_only=True, times=times)
    return times


def _has_late(times: list[int], high_water: int, bound: int) -> bool:
    """Whether a record comes more than ``bound`` after the newest one before it."""
    if min(times) >= high_water - bound:
        return False  # the common case, decided without a loop
    newest = high_water
    for moment in times:
        if moment < newest - bound:
            return True
        newest = max(newest, moment)
    return False


_U64 = struct.Struct(">Q")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OCCURRED_AT = attrgetter("occurred_at")


def _micros_of(records: Sequence[Record]) -> list[int]:
    """Each record's ``occurred_at`` as integer UTC microseconds since the Unix epoch.

    The loop runs in C: aware datetimes subtract exactly, and records hold UTC already.
    """
    since_epoch = map(sub, map(_OCCURRED_AT, records), repeat(_EPOCH))
    return list(map(floordiv, since_epoch, repeat(_MICROSECOND)))


@dataclass
class _Pending:
    """Records appended but not yet written: parallel lists, cheaper than an object each."""

    canonical: list[bytes]
    leaves: list[bytes]
    periods: list[int]
    times: list[int]


@dataclass
class _OpenSegment:
    sequence: int
    path: Path
    fd: int
    first_index: int
    size: int
    records: int
    period: int  # the newest period written into this segment
    periods: set[int]
    block_index: list[tuple[int, int]]


def _discard_leftovers(files: ChainFiles) -> None:
    """What interrupted replacements left in the chain's directories (the chain lock is
    held): an old copy may hold redacted frames or replaced keys."""
    for directory in (files.directory, files.segments, files.dicts, files.tombstones):
        discard_leftovers(directory)
    for directory in (files.checkpoints, files.redactions, files.tiles):
        discard_leftovers(directory)


def _refuse_a_cut_then_clean(files: ChainFiles, chain: str, size: int) -> None:
    """A chain shorter than its own signed checkpoint was cut by someone, not by a crash (a
    checkpoint is stored once its records are durable): refused before anything changes.
    Else what interrupted replacements left is destroyed, before recovery cuts or rebuilds."""
    stored = CheckpointStore(files.checkpoints).sizes()
    if stored and stored[-1] > size:
        raise RollbackError(
            f"chain {chain!r} has {size} records but its own signed checkpoint says it had "
            f"{stored[-1]}: records were cut off (sizes {size} < {stored[-1]}). Nothing was "
            "written; restore the missing segments from a backup",
            location={"chain": chain, "size": size, "checkpoint": stored[-1]},
        )
    _discard_leftovers(files)


class ChainWriter:
    """Appends to one chain. Thread-safe; flushes are serialized."""

    def __init__(
        self,
        files: ChainFiles,
        chain: str,
        origin: str,
        keyring: ChainKeyring,
        settings: ChainSettings,
        *,
        fsync: bool = True,
        clock: Clock | None = None,
        on_seal: Callable[[int, bytes], None] | None = None,
        on_dictionary: Callable[[int], None] | None = None,
        verifier_key: str | None = None,
        state_lock: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        """``on_seal`` and ``on_dictionary`` hear of a seal and of a stored dictionary;
        ``state_lock``, if given, is held around each of these changes and its hook, so that
        whoever reads the chain's state under it never sees one half done."""
        self.chain = chain
        self._on_seal = on_seal
        self._on_dictionary = on_dictionary
        self._state_lock = state_lock or nullcontext
        self._clock = clock or SystemClock()
        self.origin = origin
        self.files = files
        self.settings = settings
        self._keyring = keyring
        self._fsync = fsync
        self._segments_dir = files.segments
        self._dictionaries = DictionaryStore(files.dicts, origin)
        self.tiles = TileStore(files.tiles)
        self._tombstones = TombstoneStore(files.tombstones, origin, verifier_key)
        self._origin_prefix = origin_prefix(origin)
        self._period_us = settings.period_seconds * 1_000_000
        self._late_bound_us = settings.late_bound_seconds * 1_000_000
        self._append_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._failed: BaseException | None = None
        self._samples: dict[int, list[bytes]] = {}
        self._dict_ids: dict[int, int] = {}
        self._pending = _Pending([], [], [], [])
        make_private_dir(self._segments_dir)
        self._lock_fd = acquire_chain_lock(files, chain)
        try:
            self.recovery: RecoveryReport | None = None
            self._recover()
        except BaseException:
            os.close(self._lock_fd)
            raise

    # -- recovery -------------------------------------------------------------------------

    def _recover(self) -> None:
        self._segment: _OpenSegment | None = None
        check, scan = check_tail(self.files, self.chain, self.origin, self._tombstones)
        _refuse_a_cut_then_clean(self.files, self.chain, check.size)
        if scan is None:
            self._next_sequence = check.next_sequence
            self._finish_recovery(check, None)
            return
        if scan.torn_bytes or scan.first_index == -1:
            self.recovery = cut_torn_tail(scan, self.chain, check.size)
        self._next_sequence = scan.sequence + 1
        self._finish_recovery(check, scan)

    def _finish_recovery(self, check: ChainCheck, scan: SegmentTail | None) -> None:
        self._unvouched = scan.unvouched if scan is not None else None
        # The tree of what is on disk; appends only count, the tree grows as blocks are written.
        self._tree = check.tree
        self._appended = check.size
        self._last_hash = check.last_hash
        self._high_water = 0
        self.durability = Durability(check.size)
        recover_tiles(self.tiles, self.files, self.chain, check.size, tombstones=check.tombstones)
        if scan is None or scan.first_index == -1:
            if scan is not None:
                self._next_sequence = scan.sequence
            return
        if scan.blocks:
            self._high_water = max(b.header.max_time for b in scan.blocks)
        if scan.seal is not None:
            return
        fd = os.open(scan.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._segment = _OpenSegment(
            sequence=scan.sequence,
            path=scan.path,
            fd=fd,
            first_index=scan.first_index,
            size=scan.good_size,
            records=scan.record_count,
            period=max((b.header.period for b in scan.blocks), default=0),
            periods={b.header.period for b in scan.blocks},
            block_index=[(b.header.first_index, b.offset) for b in scan.blocks],
        )

    # -- appending ------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Records appended so far, durable or not."""
        return self._appended

    def append_batch(
        self,
        records: Sequence[Record],
        *,
        check_late: bool = True,
        check_only: bool = False,
        times: list[int] | None = None,
    ) -> tuple[int, list[bytes]]:
        """Buffer ``records`` in order (``times``: their times, if known); returns the index of
        the first and their leaves. The whole batch is refused, none of it buffered, if a record
        is dated before 1970 or over ``max_future_seconds`` ahead of the clock, or over
        ``late_bound_seconds`` before one ahead of it. ``check_only``: see ``check_batch``;
        ``check_late=False``: for the log's own events (neither bound applies)."""
        if not records:
            return self.size, []
        times = _micros_of(records) if times is None else times
        periods = list(map(floordiv, times, repeat(self._period_us)))
        if min(times) < 0 or max(periods) > _MAX_PERIOD:
            raise RecordValidationError(
                "occurred_at: must lie between 1970-01-01 and the last period the format can "
                "name; records of other times cannot be kept: fix the record's time",
                fields=("occurred_at",),
            )
        newest = max(times)
        if check_late and newest > self._future_limit_us:
            skew, limit = self.settings.max_future_seconds, self._future_limit_us
            self._future_limit_us = future_limit(self._clock, skew, newest, limit)
        canonical = [] if check_only else encode_records(records)
        with self._append_lock:
            self._check_usable()
            if check_late and _has_late(times, self._high_water, self._late_bound_us):
                raise LateRecordError(
                    f"a record of chain {self.chain!r} is more than "
                    f"{self.settings.late_bound_seconds} s older than the newest record; such late "
                    "records are refused so that sealed periods stay sealed: write it to a chain "
                    "for back-filled records, or raise late_bound_seconds"
                )
            if check_only:
                return self._appended, []
            newest = max(self._high_water, newest)
            first = self._appended
            leaves = self._leaves(first, canonical, periods)
            self._appended += len(leaves)
            if check_late:  # the log's own events must not push records out as late
                self._high_water = newest
            pending = self._pending
            pending.canonical.extend(canonical)
            pending.leaves.extend(leaves)
            pending.periods.extend(periods)
            pending.times.extend(times)
            return first, leaves

    # The newest time append_batch takes without reading the clock (see future_limit).
    _future_limit_us = -1

    def _leaves(self, first: int, canonical: list[bytes], periods: list[int]) -> list[bytes]:
        leaves: list[bytes] = []
        for start, end in _period_runs(periods, len(periods)):
            period = periods[start]
            keys = self._keyring.get_or_create(period)
            salts = keys.leaf_salts(first + start, end - start)
            # SHA-256(0x00 || salt || record) of each record, the loop in C.
            leaves.extend(leaf_hashes(salts, canonical[start:end]))
            self._sample(period, canonical, start, end)
        return leaves

    def _sample(self, period: int, canonical: list[bytes], start: int, end: int) -> None:
        """Keep the first records of a period to train its dictionary (in memory only)."""
        if period in self._dict_ids:
            return
        samples = self._samples.setdefault(period, [])
        wanted = self.settings.dictionary_samples - len(samples)
        if wanted > 0:
            samples.extend(canonical[start : min(end, start + wanted)])

    @property
    def pending(self) -> int:
        return len(self._pending.canonical)

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise AuditLogError(
                f"chain {self.chain!r} stopped accepting records after a write failed "
                f"({self._failed!r}); close the log and open it again: recovery keeps every "
                "record that was flushed"
            )

    # -- flushing -------------------------------------------------------------------------

    def flush(self) -> int:
        """Write and sync every buffered record; returns the durable size of the chain."""
        with self._flush_lock:
            with self._append_lock:
                self._check_usable()
                pending = self._pending
                if not pending.canonical:
                    return self.durability.size
                self._pending = _Pending([], [], [], [])
                first = self._tree.end
            try:
                self._write_pending(first, pending)
            except BaseException as exc:
                self._failed = exc
                raise
            return self.durability.size

    def _write_pending(self, first: int, pending: _Pending) -> None:
        for start, end in _period_runs(pending.periods, self.settings.block_max_records):
            self._write_block(first + start, pending, start, end)
        self.durability.advance(first + len(pending.canonical))

    def _write_block(self, first: int, pending: _Pending, start: int, end: int) -> None:
        period = pending.periods[start]
        keys = self._keyring.get_or_create(period)
        dict_id = self._dictionary_for(keys)
        codec = self._dictionaries.codec(keys, dict_id)
        block_salt = os.urandom(16)
        aead = keys.frame_aead(block_salt)
        prefix = self._origin_prefix
        leaves = pending.leaves[start:end]
        canonical = pending.canonical[start:end]
        count = end - start
        # frame_aad(prefix, index, leaf) and AES-GCM of each record, the loops in C.
        indexes = map(_U64.pack, range(first, first + count))
        aads = concat_each(prefix_each(prefix, indexes), leaves)
        frames = list(map(aead.encrypt, frame_nonces(count), codec.compress_many(canonical), aads))
        if len(frames) != count:  # map stops at its shortest input: never silently short
            raise AssertionError(f"encrypted {len(frames)} frames of a block of {count}")
        # Roll the segment before the tree moves on: a seal records the tree as it stood at
        # the end of its own last block.
        entry_size = block_entry_size(count, sum(map(len, frames)))
        segment = self._segment_for(period, entry_size, count, first)
        tree = self._tree
        # The leaves are joined once, for the tree, the block and the tiles alike.
        joined = b"".join(leaves)
        stride_nodes: list[tuple[int, int, bytes]] = []
        tree.extend_joined(joined, stride_nodes)
        times = pending.times[start:end]
        header = BlockHeader(
            count=count,
            first_index=first,
            tree_size=first + count,
            period=period,
            dictionary_id=dict_id,
            # Header times are coarsened to whole minutes: with small blocks exact times in
            # the clear would reveal when each record's event happened.
            min_time=min(times) // TIME_GRANULE_US * TIME_GRANULE_US,
            max_time=-(-max(times) // TIME_GRANULE_US) * TIME_GRANULE_US,
            block_salt=block_salt,
            prev_hash=self._last_hash,
            tree_root=tree.root(),
        )
        entry, block_hash = pack_block(header, joined, frames)
        offset = segment.size
        write_all(segment.fd, entry)
        if self._fsync:
            os.fdatasync(segment.fd)
        segment.size += len(entry)
        segment.records += count
        segment.period = max(segment.period, period)
        segment.periods.add(period)
        segment.block_index.append((first, offset))
        self._last_hash = block_hash
        self.tiles.write(first, joined, stride_nodes)

    def _dictionary_for(self, keys: PeriodKeys) -> int:
        period = keys.period
        dict_id = self._dict_ids.get(period)
        if dict_id is not None:
            return dict_id
        stored = self._dictionaries.stored_id(period)
        if stored is not None:
            self._dict_ids[period] = stored
            self._samples.pop(period, None)
            return stored
        samples = self._samples.get(period, [])
        if len(samples) < self.settings.dictionary_samples:
            return 0
        try:
            dictionary = train_dictionary(samples, self.settings.dictionary_bytes)
        except zstandard.ZstdError:  # zstd refuses degenerate samples: go on without one
            self._samples[period] = []
            self._dict_ids[period] = 0
            return 0
        with self._state_lock():
            dict_id = self._dictionaries.save(keys, dictionary)
            if self._on_dictionary is not None:
                self._on_dictionary(period)
        self._dict_ids[period] = dict_id
        del self._samples[period]
        return dict_id

    # -- segments -------------------------------------------------------------------------

    def _segment_for(self, period: int, entry_bytes: int, records: int, first: int) -> _OpenSegment:
        segment = self._segment
        settings = self.settings
        if (
            segment is not None
            and segment.records
            and (
                period > segment.period
                or segment.size + entry_bytes > settings.max_segment_bytes
                or segment.records + records > settings.max_segment_records
            )
        ):
            self._seal(segment)
            segment = None
        if segment is None:
            segment = self._create_segment(first, period)
        return segment

    def _create_segment(self, first: int, period: int) -> _OpenSegment:
        sequence = self._next_sequence
        path = segment_path(self._segments_dir, sequence)
        header = file_header(sequence, first)
        create_exclusive(path, header)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._next_sequence += 1
        self._segment = _OpenSegment(
            sequence=sequence,
            path=path,
            fd=fd,
            first_index=first,
            size=len(header),
            records=0,
            period=period,
            periods=set(),
            block_index=[],
        )
        return self._segment

    def _seal(self, segment: _OpenSegment) -> None:
        self._unvouched = vouch(self._unvouched)  # before the tree is first sealed or signed
        with self._state_lock():
            self._write_seal(segment)

    def _write_seal(self, segment: _OpenSegment) -> None:
        tree = self._tree
        seal = Seal(
            block_count=len(segment.block_index),
            first_index=segment.first_index,
            end_index=tree.end,
            sealed_at=datetime_to_micros(self._clock.now()),
            last_block_hash=self._last_hash,
            tree_root=tree.root(),
            frontier=tuple(tree.hashes),
            periods=tuple(sorted(segment.periods)),
            block_index=tuple(segment.block_index),
        )
        write_all(segment.fd, seal.pack())
        os.fsync(segment.fd)
        os.close(segment.fd)
        os.chmod(segment.path, 0o400)  # sealed segments are immutable; make accidents harder
        self._segment = None
        if self._on_seal is not None:
            self._on_seal(seal.end_index, seal.tree_root)

    @property
    def open_sequence(self) -> int | None:
        """The sequence number of the open segment, if one is open."""
        return self._segment.sequence if self._segment is not None else None

    def seal_open_segment(self) -> None:
        """Flush, then seal the open segment (if it holds anything) so it can be deleted."""
        self.flush()
        with self._flush_lock:
            if (segment := self._segment) is not None and segment.records:
                self._seal(segment)

    def forget_period(self, period: int) -> None:
        """Drop what this writer holds in memory of a shredded period (samples, dictionary)."""
        self._samples.pop(period, None)
        self._dict_ids.pop(period, None)
        self._dictionaries.forget(period)

    def head(self) -> tuple[int, bytes]:
        """(size, root) of what is durably written, after flushing what is buffered."""
        self.flush()
        with self._flush_lock:
            self._unvouched = vouch(self._unvouched)
            return self._tree.end, self._tree.root()

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Flush what is buffered and release the chain's lock. The open segment stays open."""
        try:
            if self._failed is None:
                self.flush()
        finally:
            if self._segment is not None:
                os.close(self._segment.fd)
                self._segment = None
            os.close(self._lock_fd)
