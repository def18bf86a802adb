"""Appending records to a log's chains, flushing them, and background group commit.

Records go to the chain named like their kind unless ``chain=`` says otherwise. A record is
buffered by its chain's writer and durable once its block is flushed: by ``flush()``, by a full
block, or — with ``GroupCommit`` — by a background thread that writes what waited for
``max_delay`` as one block per chain.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from auditlog.errors import AuditLogError
from auditlog.log.chains import Chains
from auditlog.log.config import GroupCommit, LogConfig
from auditlog.log.results import AppendResult, Receipt
from auditlog.records import Record
from auditlog.segment.writer import ChainWriter

__all__ = ["Appender"]


class Appender:
    """Appends to the chains of one log handle."""

    def __init__(self, chains: Chains, config: LogConfig, group_commit: GroupCommit | None) -> None:
        self._chains = chains
        self._config = config
        self._group_commit = group_commit
        self._flusher: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flusher_error: BaseException | None = None

    def start(self) -> None:
        """Start background group commit, if the handle was opened with it."""
        if self._group_commit is not None:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="auditlog-group-commit", daemon=True
            )
            self._flusher.start()

    def append(self, record: Record, chain: str | None) -> Receipt:
        writer = self._chains.writer(chain or record.kind)
        index, leaves = writer.append_batch([record])
        receipt = Receipt(writer.chain, index, leaves[0], writer.durability)
        self._after_append(writer)
        return receipt

    def append_many(
        self, records: Iterable[Record], chain: str | None, *, flush: bool
    ) -> AppendResult:
        batch = self._config.block_max_records
        ranges: dict[str, list[range]] = {}
        count = 0
        buffered: dict[str, list[Record]] = {}
        for record in records:
            name = chain or record.kind
            group = buffered.setdefault(name, [])
            group.append(record)
            count += 1
            if len(group) >= batch:
                self._append_group(name, group, ranges)
                group.clear()
        for name, group in buffered.items():
            if group:
                self._append_group(name, group, ranges)
        if flush:
            for name in ranges:
                self._chains.writer(name).flush()
        return AppendResult(count=count, ranges=ranges, durable=flush)

    def _append_group(
        self, chain: str, group: list[Record], ranges: dict[str, list[range]]
    ) -> None:
        writer = self._chains.writer(chain)
        first, _ = writer.append_batch(group)
        chain_ranges = ranges.setdefault(chain, [])
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
        for writer in self._chains.open_writers():
            writer.flush()

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
                for writer in self._chains.open_writers():
                    if writer.pending:
                        writer.flush()
            except BaseException as exc:  # noqa: BLE001 - surfaced on the next flush/close
                self._flusher_error = exc
                return

    def _raise_flusher_error(self) -> None:
        if self._flusher_error is not None:
            raise AuditLogError(
                f"background group commit failed ({self._flusher_error!r}); records appended "
                "since the last durable receipt may not be on disk: close and reopen the log"
            ) from self._flusher_error

    def stop(self) -> None:
        """Stop background flushing; raise what it failed with, if it failed."""
        if self._flusher is not None:
            self._stop.set()
            self._wake.set()
            self._flusher.join()
            self._flusher = None
        self._raise_flusher_error()
