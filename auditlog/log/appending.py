"""Appending records to a log's chains, flushing them, and background group commit.

Records go to the chain named like their kind unless ``chain=`` says otherwise. A record is
buffered by its chain's writer and durable once its block is flushed: by ``flush()``, by a full
block, or — with ``GroupCommit`` — by a background thread that writes what waited for
``max_delay`` as one block per chain.

Only records of the users' kinds are taken: a ``log`` record is the log's own event, written by
``events`` straight to the events chain's writer, never through here. Nothing acknowledged is
lost: what is still buffered when the interpreter exits normally is flushed then, and a handle
garbage-collected with records buffered flushes them with a ``ResourceWarning``.
"""

from __future__ import annotations

import atexit
import sys
import threading
import warnings
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import attrgetter, sub

from auditlog.clock import Clock, datetime_to_micros, future_limit, micros_to_datetime
from auditlog.errors import AuditLogError, ConfigurationError, RecordValidationError
from auditlog.log.chains import Chains
from auditlog.log.config import GroupCommit, LogConfig
from auditlog.log.results import AppendResult, Receipt
from auditlog.records import RECORD_TYPES, LogEvent, Record, RecordKind
from auditlog.segment.writer import ChainWriter, check_batch, flush_writers

__all__ = ["Appender"]

# The models a user may append: every kind but the log's own.
_USER_TYPES = tuple(model for kind, model in RECORD_TYPES.items() if kind is not RecordKind.LOG)
_USER_TYPE_SET = frozenset(_USER_TYPES)

_OCCURRED_AT = attrgetter("occurred_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = timedelta(0)
_MICROSECOND = timedelta(microseconds=1)
_LAST_MICROS = datetime_to_micros(datetime.max.replace(tzinfo=UTC))

# Every handle that may hold buffered records, for the flush at exit.
_LIVE: weakref.WeakSet[Appender] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """Flush what every live handle still buffers when the interpreter exits normally."""
    for appender in list(_LIVE):
        appender.flush_pending("at exit")
        # What could not be flushed was reported; the handle is not to warn again while the
        # interpreter tears down (its modules may be gone by then).
        _LIVE.discard(appender)
        appender._exited = True


def _check_user_records(records: list[Record], *, many: bool) -> None:
    """``RecordValidationError`` unless every item is a record of a user's kind.

    Decided by one C-level pass over the types in the common case; the loop that names the
    first item at fault runs only when there is one.
    """
    if set(map(type, records)) <= _USER_TYPE_SET:
        return
    for index, record in enumerate(records):
        field = f"records[{index}]" if many else "record"
        if isinstance(record, LogEvent):
            raise RecordValidationError(
                f"{field}: records of kind 'log' are the log's own events, which only the log "
                "writes; append the event as another kind (e.g. an Activity)",
                fields=(field,),
            )
        if not isinstance(record, _USER_TYPES):
            raise RecordValidationError(
                f"{field}: a {type(record).__name__} is not a record: pass a record model "
                "(ChatMessage, CallRecord, ...), or parse_record(dict) to make one from a "
                "mapping or a JSON document",
                fields=(field,),
            )


def _check_chain(chain: object) -> None:
    if chain is not None and not isinstance(chain, str):
        raise ConfigurationError(
            f"chain must be a chain id (a str) or None, not {type(chain).__name__}"
        )


class Appender:
    """Appends to the chains of one log handle."""

    def __init__(
        self,
        chains: Chains,
        config: LogConfig,
        group_commit: GroupCommit | None,
        *,
        clock: Clock | None = None,
    ) -> None:
        """``clock`` is the log's: with it, a record dated too far ahead is refused before any
        chain is opened for it (each chain's writer refuses it too, once open)."""
        self._chains = chains
        self._config = config
        self._group_commit = group_commit
        self._clock = clock
        self._future_limit = -1  # see clock.future_limit
        # The same limit as a datetime, compared without converting; no limit without a clock.
        self._accept_until = _EPOCH if clock is not None else datetime.max.replace(tzinfo=UTC)
        self._flusher: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flusher_error: BaseException | None = None
        self._exited = False
        _LIVE.add(self)

    def start(self) -> None:
        """Start background group commit, if the handle was opened with it."""
        if self._group_commit is not None:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="auditlog-group-commit", daemon=True
            )
            self._flusher.start()

    def append(self, record: Record, chain: str | None) -> Receipt:
        if type(record) not in _USER_TYPE_SET:
            _check_user_records([record], many=False)
        _check_chain(chain)
        occurred_at = record.occurred_at
        if not _EPOCH <= occurred_at <= self._accept_until:
            self._check_times(occurred_at, occurred_at)
        writer = self._chains.writer(chain or record.kind)
        # Queued: encoded and hashed with the rest of the queue when it is drained, so that
        # appends from many threads cost about what their share of one batch does.
        index, slot = writer.enqueue(record, (occurred_at - _EPOCH) // _MICROSECOND)
        durability = writer.durability
        if self._group_commit is None and durability.flush is None:
            durability.flush = writer.flush  # wait_durable leads a group commit itself
        receipt = Receipt(writer.chain, index, slot, durability)
        self._after_append(writer)
        return receipt

    def append_many(
        self, records: Iterable[Record], chain: str | None, *, flush: bool
    ) -> AppendResult:
        """Append every record, or none: each is checked (its type and kind, its time against
        the chain's bounds) before any is buffered, so the records are held in memory first.
        """
        _check_chain(chain)
        batch = records if type(records) is list else list(records)
        _check_user_records(batch, many=True)
        if batch:
            # As integers: comparing aware datetimes is several times slower.
            since = list(map(sub, map(_OCCURRED_AT, batch), repeat(_EPOCH)))
            oldest, newest = min(since), max(since)
            if oldest < _ZERO or newest > self._accept_until - _EPOCH:
                self._check_times(_EPOCH + oldest, _EPOCH + newest)
        groups: dict[str, list[Record]] = {}
        for record in batch:
            groups.setdefault(chain or record.kind, []).append(record)
        # Every chain's writer is opened, and every part checked, before anything is buffered.
        writers = {name: self._chains.writer(name) for name in groups}
        size = self._config.block_max_records
        times: dict[str, list[int]] = {}
        if len(groups) > 1 or len(batch) > size:
            for name, group in groups.items():
                times[name] = check_batch(writers[name], group)
        ranges: dict[str, list[range]] = {}
        for name, group in groups.items():
            known = times.get(name)
            for start in range(0, len(group), size):
                part = None if known is None else known[start : start + size]
                self._append_group(writers[name], group[start : start + size], ranges, part)
        if flush:
            flush_writers([writers[name] for name in ranges])
        return AppendResult(count=len(batch), ranges=ranges, durable=flush)

    def _check_times(self, oldest: datetime, newest: datetime) -> None:
        """Refuse a batch dated before 1970 or too far ahead of the clock before any chain is
        opened for it: opening a new chain's writer adds the chain to the log."""
        if oldest < _EPOCH:
            raise RecordValidationError(
                "occurred_at: a record is dated before 1970-01-01, which the log cannot keep: "
                "fix the record's time",
                fields=("occurred_at",),
            )
        if self._clock is None or newest <= self._accept_until:
            return
        skew = self._config.max_future_seconds
        limit = future_limit(self._clock, skew, datetime_to_micros(newest), self._future_limit)
        self._future_limit = limit
        self._accept_until = micros_to_datetime(min(limit, _LAST_MICROS))

    def _append_group(
        self,
        writer: ChainWriter,
        group: list[Record],
        ranges: dict[str, list[range]],
        times: list[int] | None = None,
    ) -> None:
        first, _ = writer.append_batch(group, times=times)
        chain_ranges = ranges.setdefault(writer.chain, [])
        if chain_ranges and chain_ranges[-1].stop == first:
            chain_ranges[-1] = range(chain_ranges[-1].start, first + len(group))
        else:
            chain_ranges.append(range(first, first + len(group)))
        self._after_append(writer)

    def _after_append(self, writer: ChainWriter) -> None:
        if self._group_commit is None:
            if writer.pending >= self._config.block_max_records:
                writer.flush()
            return
        if writer.pending >= self._group_commit.max_records:
            writer.flush()
        else:
            self._wake.set()

    def flush(self) -> None:
        """Write and sync every buffered record of every chain."""
        self._raise_flusher_error()
        flush_writers(self._chains.open_writers())

    def _flush_loop(self) -> None:
        # Sleeps until an append leaves records waiting, gives later appends ``max_delay`` to
        # join them, then writes one block per chain: the group commit.
        assert self._group_commit is not None
        delay = self._group_commit.max_delay
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._stop.wait(delay)
            self._wake.clear()
            try:
                flush_writers([w for w in self._chains.open_writers() if w.pending])
            except BaseException as exc:  # noqa: BLE001 - surfaced on the next flush/close
                self._flusher_error = exc
                return

    def _raise_flusher_error(self) -> None:
        if self._flusher_error is not None:
            raise AuditLogError(
                f"background group commit failed ({self._flusher_error!r}); records appended "
                "since the last durable receipt may not be on disk: close and reopen the log"
            ) from self._flusher_error

    def pending(self) -> dict[str, int]:
        """How many records each chain still buffers (chains buffering none are left out)."""
        return {w.chain: w.pending for w in self._chains.open_writers() if w.pending}

    def flush_pending(self, when: str) -> None:
        """Flush what is buffered, if anything; a failure is written to standard error, for
        ``when`` (at exit, or at garbage collection) nobody is there to catch it."""
        pending = self.pending()
        if not pending:
            return
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - reported, for nobody can catch it here
            sys.stderr.write(
                f"auditlog: {sum(pending.values())} records buffered for chains "
                f"{', '.join(sorted(pending))} could not be flushed {when}: {exc}\n"
            )

    def __del__(self) -> None:
        # A handle dropped without close(): like an unclosed file, flush and warn.
        pending = {} if self._exited else self.pending()
        if pending:
            counts = ", ".join(f"{n} in chain {name!r}" for name, n in sorted(pending.items()))
            warnings.warn(
                f"an AuditLog was garbage-collected with {sum(pending.values())} records not yet "
                f"flushed ({counts}); they are flushed now, but close the log (or open it in a "
                "with block) so that their receipts are durable and a failure can be seen",
                ResourceWarning,
                stacklevel=2,
            )
            self.flush_pending("at garbage collection")

    def stop(self) -> None:
        """Stop background flushing; raise what it failed with, if it failed."""
        _LIVE.discard(self)
        if self._flusher is not None:
            self._stop.set()
            self._wake.set()
            self._flusher.join()
            self._flusher = None
        self._raise_flusher_error()
