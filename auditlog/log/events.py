"""The log's own chain of events, ``_log``: every change the log makes to itself (its creation,
a chain added, a policy, a hold, a sweep, a key rotation, a redaction, a repair), in order.

Events are records of the ``log`` kind, encrypted and hash-chained like any other, and covered by
the events chain's own checkpoints. Users cannot append them (``AuditLog.append`` refuses the
``log`` kind). An event that changes a signed state file names the file's new generation and
digest (``LogEvent.state``), and every event is appended under the log lock together with the
head that binds it, so a head or a state file put back from an older copy is caught against the
events.

The events chain is written by whichever handle makes a change, a writer opened and closed
around each event under the log lock, so that several processes writing other chains can all
record their changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from auditlog.codec import decode_record
from auditlog.log.chains import Chains
from auditlog.log.head import file_digest
from auditlog.log.key_material import KeyMaterial
from auditlog.log.state import LogState
from auditlog.records import LOG_SUBJECT, LogEvent, LogEventType
from auditlog.storage.layout import EVENTS_CHAIN

__all__ = ["EventLog", "state_claim"]


def state_claim(relative: str, generation: int, path: Path) -> str:
    """The ``state`` of an event that changed the signed file at ``path``."""
    return f"{relative} {generation} {file_digest(path)}"


class EventLog:
    """Appends to and reads the events chain of one log handle."""

    def __init__(self, chains: Chains, keys: KeyMaterial, state: LogState) -> None:
        self._chains = chains
        self._keys = keys
        self._state = state

    def record(
        self,
        event: LogEventType,
        when: datetime,
        detail: str,
        *,
        chain: str,
        actor: str | None = None,
        state: str | None = None,
    ) -> int:
        """Append one event (durable on return) and sign the head that binds it; returns its
        index in the events chain."""
        record = LogEvent(
            occurred_at=when,
            subject=LOG_SUBJECT,
            service=LOG_SUBJECT,
            event=event,
            chain=chain,
            detail=detail,
            actor=actor,
            state=state,
        )
        with self._chains.layout.log_lock(), self._chains.events_writer() as writer:
            # The head of now goes with the event: a head found one event behind must be it.
            record = record.model_copy(update={"head": self._state.head.current().generation})
            # The log's own events happen when they happen, whatever the chain's last time.
            index, _ = writer.append_batch([record], check_late=False)
            writer.flush()
            size, root = writer.head()
            self._state.bind_events(size, root)
        return index

    def tail(self, count: int) -> Iterator[LogEvent]:
        """The newest events, up to ``count`` (passing over those of shredded periods)."""
        if not self._chains.layout.chain(EVENTS_CHAIN).directory.is_dir():
            return
        reader = self._chains.reader(EVENTS_CHAIN)
        for _, canonical in reader.tail(self._keys.keyring(EVENTS_CHAIN), count):
            record = decode_record(canonical)
            if isinstance(record, LogEvent):
                yield record

    def read(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, LogEvent]]:
        """The events with indexes in [start, end), with their indexes."""
        reader = self._chains.reader(EVENTS_CHAIN)
        keyring = self._keys.keyring(EVENTS_CHAIN)
        for index, canonical in reader.read(keyring, start, end):
            record = decode_record(canonical)
            if isinstance(record, LogEvent):
                yield index, record
