"""The chain writer: append, group commit, segment roll and seal (recovery on open: ``recovery``).

One ``ChainWriter`` per chain and process, holding the chain's lock file for its lifetime (a
second writer, in this process or another, gets ``LogLockedError``). ``append_batch`` assigns
indexes and computes leaves at once; ``enqueue`` (one record) only assigns the index and queues
the record, which is encoded and hashed with the rest of its queue when drained (``pending``).
``flush`` turns the buffered records into one block per period run, adds its leaves to the
Merkle tree, writes it with a single ``write`` and ``fdatasync``s it. Only then do the records'
receipts report ``durable``. ``flush_writers`` flushes many chains with one disk wait: every
chain writes its blocks, then all ``fdatasync`` at once.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, floordiv
from typing import TYPE_CHECKING

from auditlog._fast import concat_each, leaf_hashes, prefix_each
from auditlog._fs import discard_leftovers, make_private_dir
from auditlog.clock import Clock, SystemClock, future_limit
from auditlog.codec import encode_records
from auditlog.crypto.keys import ChainKeyring, PeriodKeys
from auditlog.errors import AuditLogError, LateRecordError, RecordValidationError, RollbackError
from auditlog.segment.check import ChainCheck
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.segment.files import ChainFiles, acquire_chain_lock
from auditlog.segment.format import (
    frame_nonces,
)
from auditlog.segment.frames import DictionaryStore, origin_prefix
from auditlog.segment.pending import (
    Durability,
    LeafSlot,
    Pending,
    has_late,
    micros_of,
    period_runs,
)
from auditlog.segment.recovery import RecoveryReport, check_tail, cut_torn_tail, recover_tiles
from auditlog.segment.sink import OpenSegment, SegmentSink
from auditlog.segment.tail import SegmentTail
from auditlog.segment.tiles import TileStore
from auditlog.segment.tombstone import TombstoneStore
from auditlog.segment.training import DictionaryTrainer

if TYPE_CHECKING:
    from auditlog.records import Record

__all__ = ["ChainSettings", "ChainWriter", "Durability", "check_batch", "flush_writers"]


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
    train_in_background: bool = True


def check_batch(writer: ChainWriter, records: Sequence[Record]) -> list[int]:
    """``writer.append_batch``'s checks of ``records``, nothing buffered (a caller spreading a
    batch over chains or blocks checks every part first); returns their times, for
    ``append_batch(times=...)``."""
    times = micros_of(records)
    writer.append_batch(records, check_only=True, times=times)
    return times


_U64 = struct.Struct(">Q")


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
        self._drain_lock = threading.Lock()  # drains, and append_batch, keep index order
        self._trainer = DictionaryTrainer(
            self._dictionaries,
            settings.dictionary_samples,
            settings.dictionary_bytes,
            self._install_dictionary,
            background=settings.train_in_background,
        )
        self._pending = Pending()
        self._queue: list[Record] = []
        self._queue_times: list[int] = []
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
        check, scan = check_tail(self.files, self.chain, self.origin, self._tombstones)
        _refuse_a_cut_then_clean(self.files, self.chain, check.size)
        if scan is not None and (scan.torn_bytes or scan.first_index == -1):
            self.recovery = cut_torn_tail(scan, self.chain, check.size)
        self._finish_recovery(check, scan)

    def _finish_recovery(self, check: ChainCheck, scan: SegmentTail | None) -> None:
        # The tree of what is on disk; appends only count, the tree grows as blocks are written.
        self._appended = check.size
        self._high_water = 0
        self.durability = Durability(check.size)
        self._slot = LeafSlot(check.size, self._drain)
        recover_tiles(self.tiles, self.files, self.chain, check.size, tombstones=check.tombstones)
        next_sequence = check.next_sequence if scan is None else scan.sequence + 1
        segment = None
        if scan is not None and scan.first_index == -1:
            next_sequence = scan.sequence  # an empty segment, removed: made again
        elif scan is not None:
            if scan.blocks:
                self._high_water = max(b.header.max_time for b in scan.blocks)
            if scan.seal is None:
                segment = OpenSegment(
                    sequence=scan.sequence,
                    path=scan.path,
                    fd=os.open(scan.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC),
                    first_index=scan.first_index,
                    size=scan.good_size,
                    records=scan.record_count,
                    period=max((b.header.period for b in scan.blocks), default=0),
                    periods={b.header.period for b in scan.blocks},
                    block_index=[(b.header.first_index, b.offset) for b in scan.blocks],
                )
        settings = self.settings
        self._sink = SegmentSink(
            self.files.segments,
            self.tiles,
            (settings.max_segment_bytes, settings.max_segment_records),
            self._clock,
            fsync=self._fsync,
            tree=check.tree,
            last_hash=check.last_hash,
            next_sequence=next_sequence,
            segment=segment,
            on_seal=self._on_seal,
            state_lock=self._state_lock,
            unvouched=scan.unvouched if scan is not None else None,
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
        times = micros_of(records) if times is None else times
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
        if check_only:
            with self._append_lock:
                self._check_usable()
                if check_late and has_late(times, self._high_water, self._late_bound_us):
                    raise self._late()
                return self._appended, []
        canonical = encode_records(records)
        with self._drain_lock:
            while True:
                # Queued records come first: their indexes were given out before these.
                self._drain_locked()
                with self._append_lock:
                    if not self._queue:  # else one was queued meanwhile: drain again
                        return self._buffer(canonical, periods, times, newest, check_late)

    def _buffer(
        self,
        canonical: list[bytes],
        periods: list[int],
        times: list[int],
        newest: int,
        check_late: bool,
    ) -> tuple[int, list[bytes]]:
        """append_batch's buffering, under the drain and append locks, the queue empty."""
        self._check_usable()
        if check_late and has_late(times, self._high_water, self._late_bound_us):
            raise self._late()
        newest = max(self._high_water, newest)
        first = self._appended
        leaves = self._leaves(first, canonical, periods)
        self._appended += len(leaves)
        if check_late:  # the log's own events must not push records out as late
            self._high_water = newest
        self._pending.add(canonical, leaves, periods, times)
        # The next queued record's slot starts after these.
        self._slot = LeafSlot(self._appended, self._drain)
        return first, leaves

    def _late(self) -> LateRecordError:
        return LateRecordError(
            f"a record of chain {self.chain!r} is more than {self.settings.late_bound_seconds} s "
            "older than the newest record; such late records are refused so that sealed periods "
            "stay sealed: write it to a chain for back-filled records, or raise "
            "late_bound_seconds"
        )

    def enqueue(self, record: Record, moment: int) -> tuple[int, LeafSlot]:
        """Queue one record (``moment``: its time in microseconds) under the checks of
        ``append_batch``; returns its index and the slot that will hold its leaf."""
        if moment > self._future_limit_us:
            skew, limit = self.settings.max_future_seconds, self._future_limit_us
            self._future_limit_us = future_limit(self._clock, skew, moment, limit)
        if moment < self._high_water - self._late_bound_us:
            raise self._late()  # before a key is made for it (checked again below, locked)
        period = moment // self._period_us
        if period != self._queue_period:
            if moment < 0 or period > _MAX_PERIOD:
                self.append_batch([record], check_only=True, times=[moment])  # raises, as for one
            # Refused now if the period was shredded (KeyShreddedError), not when drained; its
            # key is made now if it is new.
            self._keyring.get_or_create(period)
            self._queue_period = period
        with self._append_lock:
            self._check_usable()
            if moment < self._high_water - self._late_bound_us:
                raise self._late()
            index = self._appended
            self._appended = index + 1
            if moment > self._high_water:
                self._high_water = moment
            self._queue.append(record)
            self._queue_times.append(moment)
            return index, self._slot

    def _drain(self) -> None:
        with self._drain_lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        """Encode and hash the queued records as one batch, into the buffer (drain lock held)."""
        with self._append_lock:
            queue, times, slot = self._queue, self._queue_times, self._slot
            if not queue:
                return
            self._queue, self._queue_times = [], []
            self._slot = LeafSlot(slot.first + len(queue), self._drain)
        try:
            canonical = encode_records(queue)
            periods = list(map(floordiv, times, repeat(self._period_us)))
            leaves = self._leaves(slot.first, canonical, periods)
        except BaseException as exc:
            # Their indexes were given out: the chain cannot go on without them.
            self._fail(exc)
            raise
        slot.leaves = leaves
        with self._append_lock:
            self._pending.add(canonical, leaves, periods, times)

    # The newest time append_batch takes without reading the clock (see future_limit).
    _future_limit_us = -1
    # The period of the last record queued, whose key is known to exist and not be shredded.
    _queue_period = -1

    def _leaves(self, first: int, canonical: list[bytes], periods: list[int]) -> list[bytes]:
        leaves: list[bytes] = []
        for start, end in period_runs(periods, len(periods)):
            period = periods[start]
            keys = self._keyring.get_or_create(period)
            salts = keys.leaf_salts(first + start, end - start)
            # SHA-256(0x00 || salt || record) of each record, the loop in C.
            leaves.extend(leaf_hashes(salts, canonical[start:end]))
            self._trainer.sample(keys, canonical, start, end)
        return leaves

    @property
    def pending(self) -> int:
        """Records appended and not yet written (queued or buffered)."""
        return len(self._pending.canonical) + len(self._queue)

    def _fail(self, error: BaseException) -> None:
        self._failed = error
        self.durability.fail(error)

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
            if self._write_unsynced(sync=True):
                self._finish_flush()
        return self.durability.size

    def _write_unsynced(self, *, sync: bool) -> bool:
        """Write the blocks of what is buffered, ``fdatasync``ing them only if ``sync`` (else
        ``flush_writers`` syncs them with other chains'); False if there was nothing. The
        flush lock is held, and until ``_finish_flush``."""
        self._drain()
        with self._append_lock:
            self._check_usable()
            pending = self._pending
            if not pending.canonical:
                return False
            self._pending = Pending()
            first = self._sink.tree.end
        try:
            for start, end in period_runs(pending.periods, self.settings.block_max_records):
                self._write_block(first + start, pending, start, end, sync)
        except BaseException as exc:
            self._fail(exc)
            raise
        self._written_end = first + len(pending.canonical)
        return True

    def _sync_unsynced(self) -> None:
        try:
            self._sink.sync()
        except BaseException as exc:
            self._fail(exc)
            raise

    def _finish_flush(self) -> None:
        """The written blocks are on disk: their receipts say so, the tiles follow."""
        self.durability.advance(self._written_end)
        self._sink.write_tiles()

    def _write_block(self, first: int, pending: Pending, start: int, end: int, sync: bool) -> None:
        period = pending.periods[start]
        keys = self._keyring.get_or_create(period)
        count = end - start
        # A large block waits for a training job already running (see ``training``).
        settings = self.settings
        large = count >= min(settings.dictionary_samples, settings.block_max_records // 2)
        dict_id = self._trainer.dictionary_for(keys, wait=large)
        codec = self._dictionaries.codec(keys, dict_id)
        block_salt = os.urandom(16)
        aead = keys.frame_aead(block_salt)
        leaves = pending.leaves[start:end]
        # frame_aad(prefix, index, leaf) and AES-GCM of each record, the loops in C.
        indexes = map(_U64.pack, range(first, first + count))
        aads = concat_each(prefix_each(self._origin_prefix, indexes), leaves)
        compressed = codec.compress_many(pending.canonical[start:end])
        frames = list(map(aead.encrypt, frame_nonces(count), compressed, aads))
        if len(frames) != count:  # map stops at its shortest input: never silently short
            raise AssertionError(f"encrypted {len(frames)} frames of a block of {count}")
        times = pending.times[start:end]
        self._sink.write_block(first, period, dict_id, block_salt, leaves, frames, times, sync=sync)

    def _install_dictionary(self, keys: PeriodKeys, dictionary: bytes) -> int:
        """Store a trained dictionary and tell the head (from the trainer, perhaps in its
        thread); nothing for a period shredded meanwhile."""
        with self._state_lock():
            period = keys.period
            if self._trainer.cancelled(period) or period in self._keyring.shredded:
                return 0
            dict_id = self._dictionaries.save(keys, dictionary)
            if self._on_dictionary is not None:
                self._on_dictionary(period)
            return dict_id

    @property
    def open_sequence(self) -> int | None:
        """The sequence number of the open segment, if one is open."""
        segment = self._sink.segment
        return segment.sequence if segment is not None else None

    def seal_open_segment(self) -> None:
        """Flush, then seal the open segment (if it holds anything) so it can be deleted."""
        self.flush()
        with self._flush_lock:
            segment = self._sink.segment
            if segment is not None and segment.records:
                self._sink.seal(segment)

    def settle(self) -> None:
        """Finish dictionary training: wait for the background job, train what is due."""
        self._trainer.wait()
        for period in self._trainer.due():
            if period not in self._keyring.shredded:
                self._trainer.train_now(self._keyring.get_or_create(period))

    def forget_period(self, period: int) -> None:
        """Drop what this writer holds in memory of a shredded period (samples, dictionary)."""
        self._queue_period = -1
        self._trainer.forget(period)

    def head(self) -> tuple[int, bytes]:
        """(size, root) of what is durably written, after flushing what is buffered."""
        self.flush()
        with self._flush_lock:
            self._sink.vouch()  # the tree is about to be signed
            return self._sink.tree.end, self._sink.tree.root()

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Flush what is buffered and release the chain's lock. The open segment stays open."""
        try:
            self.settle()
            if self._failed is None:
                self.flush()
        finally:
            self._sink.close()
            os.close(self._lock_fd)


_SYNC_POOL: ThreadPoolExecutor | None = None
_SYNC_POOL_LOCK = threading.Lock()


def _sync_pool() -> ThreadPoolExecutor:
    global _SYNC_POOL
    with _SYNC_POOL_LOCK:
        if _SYNC_POOL is None:
            _SYNC_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="auditlog-sync")
        return _SYNC_POOL


def flush_writers(writers: Sequence[ChainWriter]) -> None:
    """Flush many chains with one disk wait: each writes its blocks, then every chain's
    ``fdatasync`` runs at once (they release the GIL, and the file system commits them
    together), then every chain's receipts become durable.

    The chains' flush locks are taken in the order of their names, so that two callers never
    wait on each other.
    """
    if len(writers) <= 1:
        for writer in writers:
            writer.flush()
        return
    ordered = sorted(writers, key=attrgetter("chain"))
    written: list[ChainWriter] = []
    locked: list[ChainWriter] = []
    try:
        for writer in ordered:
            writer._flush_lock.acquire()
            locked.append(writer)
            if writer._write_unsynced(sync=False):
                written.append(writer)
        syncing = [w for w in written if w._sink.unsynced_fd is not None]
        _sync_all(syncing)
        for writer in written:
            writer._finish_flush()
    finally:
        for writer in locked:
            writer._flush_lock.release()


def _sync_all(writers: list[ChainWriter]) -> None:
    """``fdatasync`` every writer's written blocks at once: all but one in the pool's threads."""
    futures: list[Future[None]] = []
    try:
        pool = _sync_pool()
        futures = [pool.submit(writer._sync_unsynced) for writer in writers[1:]]
    except RuntimeError:
        pass  # the interpreter is exiting (a flush at exit): the rest are synced one by one
    for writer in writers if not futures else writers[:1]:
        writer._sync_unsynced()
    wait(futures)  # every sync finishes before any failure is raised
    for future in futures:
        future.result()
