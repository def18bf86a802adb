"""Opening a log for writing: hold the directory against its signed head before writing.

Every difference is either what a crash between a change and the head that binds it leaves —
a signed state file newer than the head, a signed tombstone, redaction note or checkpoint the
head does not count yet, the events chain ahead of the head — which the writer checks and then
binds by signing the next head (and an event saying so); or it is tampering or a rollback,
which stops the open with an error naming every difference, before anything is written.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from auditlog._fs import discard_leftovers
from auditlog._statefile import decode_state
from auditlog.crypto.providers import PassphraseKeyProvider
from auditlog.errors import IntegrityError, RollbackError, StateFileError
from auditlog.log.chains import Chains
from auditlog.log.events import EventLog
from auditlog.log.head import HeadStore, LogHead
from auditlog.log.key_material import KeyMaterial
from auditlog.log.retention.journal import pending_sweeps
from auditlog.log.state import (
    Difference,
    LogState,
    compare,
    sealed_differences,
    snapshot,
    state_model,
)
from auditlog.merkle import EMPTY_ROOT
from auditlog.records import LogEventType
from auditlog.segment.reader import ChainReader
from auditlog.storage.layout import EVENTS_CHAIN, LogLayout

__all__ = [
    "EventsNow",
    "check_sealed",
    "events_now",
    "locked_if_writable",
    "raise_for",
    "reconcile_head",
]


@dataclass(frozen=True, slots=True)
class EventsNow:
    """The events chain as its segments say, checked without keys."""

    size: int
    root: bytes
    root_at_head: bytes | None
    """Its root at the size the head names; None if it is shorter."""


def events_now(layout: LogLayout, chains: Chains, head: LogHead, verifier_key: str) -> EventsNow:
    """The events chain's size and root now, and its root at the head's size."""
    files = layout.chain(EVENTS_CHAIN)
    if not files.directory.is_dir():
        return EventsNow(0, EMPTY_ROOT, EMPTY_ROOT if head.events_size == 0 else None)
    reader = ChainReader(files, EVENTS_CHAIN, chains.origin_of(EVENTS_CHAIN), 86_400)
    report = reader.verify(
        None,
        tombstones=chains.tombstones(EVENTS_CHAIN, verifier_key),
        redactions=chains.redactions(EVENTS_CHAIN, verifier_key).indexes(),
        wanted_roots={head.events_size},
    )
    return EventsNow(report.size, report.root, report.roots.get(head.events_size))


def raise_for(differences: list[Difference], *, what: str) -> None:
    """Raise for the differences that are not benign: ``RollbackError`` if one is a rollback."""
    bad = [d for d in differences if not d.benign]
    if not bad:
        return
    kind = RollbackError if any(d.rollback for d in bad) else IntegrityError
    listed = "; ".join(d.what for d in bad[:8])
    if len(bad) > 8:
        listed += f"; and {len(bad) - 8} more"
    raise kind(
        f"{what}: {listed}. Nothing was written. Restore the files named from a backup; if the "
        "whole log was rolled back, only a checkpoint kept outside it (a trusted state, a "
        "witness) can tell which copy is newer",
        location=dict(bad[0].location),
    )


@contextmanager
def locked_if_writable(layout: LogLayout) -> Iterator[None]:
    """The log lock, unless the directory cannot be written (a copy on read-only media:
    then no writer can change it meanwhile either)."""
    with ExitStack() as stack:
        try:
            stack.enter_context(layout.log_lock())
        except OSError as exc:
            if not isinstance(exc, PermissionError) and exc.errno != errno.EROFS:
                raise
        yield


def check_sealed(layout: LogLayout, heads: HeadStore, chains: Chains, chain: str) -> None:
    """What a reader checks before it reads a chain: the signed head is there, of this log,
    and the chain's sealed segments agree with it (so a shortened one is refused, never read
    short)."""
    with locked_if_writable(layout):
        head = heads.require(chains.origin)
        differences = sealed_differences(layout, head, chain)
    raise_for(differences, what="the log does not match its signed head")


def reconcile_head(
    layout: LogLayout,
    keys: KeyMaterial,
    state: LogState,
    events: EventLog,
    chains: Chains,
    now: Callable[[], datetime],
) -> None:
    """Check the directory against its signed head; bind what a crash left unbound."""
    with layout.log_lock():
        for directory in (layout.root, layout.keys):
            discard_leftovers(directory)  # e.g. a root key sealed under an old passphrase
        provider = keys.provider()
        if isinstance(provider, PassphraseKeyProvider):
            provider.discard_staged_remnant()  # zeroed by a rotation's commit, not removed
        head = state.head.require(chains.origin)
        now_events = events_now(layout, chains, head, keys.verifier_key)
        signer = keys.state_signer()
        differences = compare(
            layout,
            head,
            signer,
            now_events.size,
            now_events.root_at_head,
            pending_sweeps(chains, keys.verifier_key),
        )
        raise_for(differences, what="the log does not match its signed head")
        if not differences:
            return
        if now_events.size > head.events_size:
            _check_event_claims(layout, events, head)
        if any(d.location.get("file") == "keys/hold.key" for d in differences):
            keys.hold_key()  # a rewrapped hold key must still unwrap under the root key
        state.head.write(
            replace(
                snapshot(layout, head),
                generation=head.generation + 1,
                events_size=now_events.size,
                events_root=now_events.root,
            )
        )
        events.record(
            LogEventType.RECOVERED,
            now(),
            "head signed again after an interrupted change: "
            + "; ".join(d.what for d in differences[:8]),
            chain=EVENTS_CHAIN,
        )


def _check_event_claims(layout: LogLayout, events: EventLog, head: LogHead) -> None:
    """The event past the head was appended under a head no newer than this one, and the
    state file it names is no older now."""
    for index, event in events.read(head.events_size):
        if event.head is not None and event.head > head.generation:
            raise RollbackError(
                f"the log's head is generation {head.generation}, but event {index} of its "
                f"events chain was appended under generation {event.head}: the head (and what "
                "it binds) was put back from an older copy; restore the log from a backup",
                location={"file": "head.note", "event": index},
            )
        if event.state is None:
            continue
        path, generation_text, _digest = event.state.split(" ")
        model = state_model(path)
        target = layout.root / path
        if model is None or not target.exists():
            continue
        try:
            current = decode_state(target.read_bytes(), target, model).generation
        except StateFileError:
            continue  # compare() already reported what is wrong with the file
        if current < int(generation_text):
            raise RollbackError(
                f"{path} is generation {current}, but event {index} of the log's events chain "
                f"made it generation {generation_text}: the file (and the head) were put back "
                "from an older copy; restore them from a backup",
                location={"file": path, "event": index},
            )
