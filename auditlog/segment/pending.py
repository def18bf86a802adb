"""What a chain writer holds between an append and the disk: queued and buffered records, the
leaves receipts wait for, and how many records are durable.

An ``append`` of one record only queues it (its index is given at once, under the append lock);
the queue is drained — encoded and hashed as one batch, as ``append_many`` does — by whoever
needs it next: the flush that writes it, a receipt asking for its leaf, or ``append_many``
keeping the order of indexes. That is how records appended one at a time from many threads cost
little more than their share of a batch (issue 12).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby, repeat
from operator import attrgetter, floordiv, sub
from typing import TYPE_CHECKING

from auditlog.errors import AuditLogError

if TYPE_CHECKING:
    from auditlog.records import Record

__all__ = ["Durability", "LeafSlot", "Pending", "has_late", "micros_of", "period_runs"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OCCURRED_AT = attrgetter("occurred_at")


class Durability:
    """Shared by a chain's receipts: how many of the chain's records are on disk.

    ``flush``, if set, is what a receipt's ``wait_durable`` calls when nobody else will flush
    (no background group commit): the first waiter writes the batch of every thread waiting,
    the others find their records durable when it is done — the group commit of database WALs.
    """

    __slots__ = ("_cond", "failed", "flush", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.failed: BaseException | None = None
        self.flush: Callable[[], object] | None = None
        self._cond = threading.Condition()

    def advance(self, size: int) -> None:
        with self._cond:
            self.size = size
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """The chain stopped writing: waiters are woken and told, rather than left waiting."""
        with self._cond:
            self.failed = error
            self._cond.notify_all()

    def wait(self, index: int, timeout: float | None) -> bool:
        if self.size > index:
            return True
        flush = self.flush
        if flush is not None and self.failed is None:
            flush()
        with self._cond:
            done = self._cond.wait_for(lambda: self.size > index or self.failed, timeout)
            if self.size > index:
                return True
            if self.failed is not None:
                raise AuditLogError(
                    f"record {index} will not become durable: its chain stopped writing after "
                    f"a failure ({self.failed!r}); close the log and open it again (recovery "
                    "keeps every record that was flushed), then append the record again"
                ) from self.failed
            return bool(done)


class LeafSlot:
    """The leaves of one drained batch of queued records, for their receipts."""

    __slots__ = ("_drain", "first", "leaves")

    def __init__(self, first: int, drain: Callable[[], object]) -> None:
        self.first = first
        self.leaves: list[bytes] | None = None
        self._drain = drain

    def leaf(self, index: int) -> bytes:
        """The leaf of record ``index``, draining the queue that holds it if it has not been."""
        if self.leaves is None:
            self._drain()
        if self.leaves is None:
            raise AuditLogError(
                f"the leaf of record {index} was never computed: its chain stopped writing "
                "after a failure; close the log and open it again"
            )
        return self.leaves[index - self.first]


@dataclass
class Pending:
    """Records encoded but not yet written: parallel lists, cheaper than an object each."""

    canonical: list[bytes] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    periods: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)

    def add(
        self, canonical: list[bytes], leaves: list[bytes], periods: list[int], times: list[int]
    ) -> None:
        self.canonical.extend(canonical)
        self.leaves.extend(leaves)
        self.periods.extend(periods)
        self.times.extend(times)


def period_runs(periods: list[int], limit: int) -> list[tuple[int, int]]:
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


def has_late(times: list[int], high_water: int, bound: int) -> bool:
    """Whether a record comes more than ``bound`` after the newest one before it."""
    if min(times) >= high_water - bound:
        return False  # the common case, decided without a loop
    newest = high_water
    for moment in times:
        if moment < newest - bound:
            return True
        newest = max(newest, moment)
    return False


def micros_of(records: Sequence[Record]) -> list[int]:
    """Each record's ``occurred_at`` as integer UTC microseconds since the Unix epoch.

    The loop runs in C: aware datetimes subtract exactly, and records hold UTC already.
    """
    since_epoch = map(sub, map(_OCCURRED_AT, records), repeat(_EPOCH))
    return list(map(floordiv, since_epoch, repeat(_MICROSECOND)))
