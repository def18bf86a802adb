"""Carrying out a sweep: journaled, idempotent, crash-safe.

A sweep of one chain, once planned, is written to ``<chain>/sweep.journal`` before anything
changes; then, each step durable before the next and each one safe to repeat:

1. a ``log`` record announcing the sweep is appended to the chain (once: a rerun finds it);
2. one signed tombstone per run of deleted segments is stored;
3. the segments are deleted;
4. the periods' dictionaries are destroyed and their data keys shredded;
5. the journal is removed.

Killed anywhere, the next ``sweep`` (or write-open of the chain) finishes the journal first.
Until then the journal is on disk: that is the only state in which a deleted segment's key
may survive or a shredded key's segment remain. The journal is signed with the log's key, so a
planted one is refused, never carried out; and before any step, every period it would delete is
checked again against the signed policy and holds as they are now — a journal never deletes
what is inside the floor or under a hold, and no tombstone is signed for such a range.
The sweep's events go to the log's events chain; the head is signed again as the keyring
changes and once the sweep is done.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

import msgpack

from auditlog import note
from auditlog._fs import fsync_dir, is_zeroed, secure_delete
from auditlog._statefile import StateFile, decode_state, read_state, write_state
from auditlog._testhooks import crashpoint
from auditlog.clock import datetime_to_micros, micros_to_datetime
from auditlog.errors import AuditLogError, IntegrityError, NoteError, RetentionError
from auditlog.log.chains import Chains
from auditlog.log.events import EventLog, state_claim
from auditlog.log.head import HeadStore
from auditlog.log.key_material import KeyMaterial
from auditlog.log.retention.sweep import deletion_blocked
from auditlog.log.state import LogState
from auditlog.merkle import CompactRange
from auditlog.records import LogEventType
from auditlog.retention import ChainSweepPlan, LegalHold, RetentionPolicy
from auditlog.segment.format import Tombstone
from auditlog.segment.frames import DictionaryStore
from auditlog.segment.scan import scan_segment, segment_path
from auditlog.segment.tombstone import TombstoneStore, tombstone_name
from auditlog.storage.layout import EVENTS_CHAIN

__all__ = [
    "SweepContext",
    "SweepJournal",
    "apply_chain_plan",
    "check_journal",
    "finish_journal",
    "pending_segments",
    "pending_sweeps",
]


class SweepJournal(StateFile):
    """``chains/<chain>/sweep.journal``: a sweep's plan, signed, until it is carried out."""

    FORMAT: ClassVar[str] = "auditlog-sweep-journal"
    VERSION: ClassVar[int] = 1
    ENCODING: ClassVar[Literal["json", "msgpack"]] = "msgpack"
    WHAT: ClassVar[str] = "a sweep journal"
    REMEDY: ClassVar[str] = (
        "nothing of it was carried out; remove it if no sweep of yours was interrupted"
    )

    sweep_id: str
    now: int
    actor: str
    delete_segments: list[int]
    shred_periods: list[int]
    tombstones: list[str]
    signature: str = ""

    def signed_text(self, origin: str) -> str:
        """What the journal's signature covers: its origin and a digest of everything it
        orders (the msgpack map of every field but the signature, in order)."""
        body = self.model_dump(mode="python", exclude={"signature"})
        digest = hashlib.sha256(msgpack.packb(body)).hexdigest()
        return f"auditlog-sweep-journal/v1\n{origin}\n{digest}\n"

    def is_signed(self, origin: str, verifier_key: str) -> bool:
        try:
            return note.open_note(self.signature, [verifier_key]) == self.signed_text(origin)
        except NoteError:
            return False


@dataclass(frozen=True, slots=True)
class SweepContext:
    """What carrying out a sweep needs of the log handle."""

    chains: Chains
    keys: KeyMaterial
    events: EventLog
    state: LogState
    policies: Callable[[], Mapping[str, RetentionPolicy]]
    holds: Callable[[], list[LegalHold]]


def apply_chain_plan(
    context: SweepContext, plan: ChainSweepPlan, now: datetime, actor: str
) -> None:
    """Carry out a chain's plan through its journal."""
    if plan.empty:
        return
    chains, keys = context.chains, context.keys
    writer = chains.writer(plan.chain)
    if plan.seal_open_segment:
        writer.seal_open_segment()
    journal = SweepJournal(
        sweep_id="sweep-" + secrets.token_hex(6),
        now=datetime_to_micros(now),
        actor=actor,
        delete_segments=plan.delete_segments,
        shred_periods=plan.shred_periods,
        tombstones=[t.text() for t in _tombstones_for(chains, plan, now)],
    )
    # The journal is signed with the log's key: a journal planted by someone who can write
    # files but holds no key must not get records deleted or keys shredded on the next open.
    origin = chains.origin_of(plan.chain)
    signature = note.sign(journal.signed_text(origin), keys.signer())
    journal = journal.model_copy(update={"signature": signature})
    with chains.layout.log_lock():
        write_state(chains.layout.chain(plan.chain).sweep_journal, journal)
        crashpoint("sweep-journal-written")
        context.state.bind_chain(plan.chain)  # before any step: see _signed_journal
    finish_journal(context, plan.chain)


def _tombstones_for(chains: Chains, plan: ChainSweepPlan, now: datetime) -> list[Tombstone]:
    """One tombstone per run of consecutive deleted segments, from their own bytes."""
    directory = chains.layout.chain(plan.chain).segments
    runs: list[list[int]] = []
    for sequence in sorted(plan.delete_segments):
        if runs and runs[-1][-1] == sequence - 1:
            runs[-1].append(sequence)
        else:
            runs.append([sequence])
    tombstones = []
    for run in runs:
        scans = []
        for sequence in run:
            path = segment_path(directory, sequence)
            scans.append(
                scan_segment(path.read_bytes(), path, sequence, chain=plan.chain, allow_torn=False)
            )
        first_block = scans[0].blocks[0]
        seal = scans[-1].seal
        if seal is None:
            raise IntegrityError(
                "a segment to delete is not sealed",
                location={"chain": plan.chain, "segment": run[-1]},
            )
        deleted = CompactRange(scans[0].first_index, scans[0].first_index)
        for scan in scans:
            for block in scan.blocks:
                deleted.extend_joined(bytes(block.leaves))
        periods = sorted({b.header.period for scan in scans for b in scan.blocks})
        tombstones.append(
            Tombstone(
                origin=chains.origin_of(plan.chain),
                first_sequence=run[0],
                last_sequence=run[-1],
                first_index=scans[0].first_index,
                end_index=seal.end_index,
                prev_hash=first_block.header.prev_hash,
                last_block_hash=seal.last_block_hash,
                range_hashes=deleted.hashes,
                frontier=seal.frontier,
                periods=tuple(periods),
                deleted_at=datetime_to_micros(now),
            )
        )
    return tombstones


def _signed_journal(chains: Chains, chain: str, verifier_key: str) -> SweepJournal | None:
    """The chain's journal if it is signed by the log and bound by its signed head: then
    its sweep may be half done. A journal the head does not bind was never begun (the head
    binds it before the first step), or was put back from an older copy: it excuses no
    difference, and the next write-open binds it and carries it out again (harmlessly)."""
    path = chains.layout.chain(chain).sweep_journal
    if not path.exists():
        return None
    try:
        raw = path.read_bytes()
        journal = decode_state(raw, path, SweepJournal)
        head = HeadStore(chains.layout, verifier_key).load()
    except AuditLogError:
        return None
    bound = None if head is None else head.files.get(chains.layout.relative(path))
    if bound is None or not hmac.compare_digest(bound.digest, hashlib.sha256(raw).hexdigest()):
        return None
    return journal if journal.is_signed(chains.origin_of(chain), verifier_key) else None


def pending_segments(chains: Chains, chain: str, verifier_key: str) -> set[int]:
    """Segments an interrupted sweep's signed journal is yet to delete (empty if none)."""
    journal = _signed_journal(chains, chain, verifier_key)
    return set() if journal is None else set(journal.delete_segments)


def pending_sweeps(
    chains: Chains, verifier_key: str
) -> dict[str, tuple[set[int], set[int], set[str]]]:
    """Per chain with an unfinished, signed sweep: its segments to delete, its periods to
    shred, and the file names of its tombstones (what may be half done)."""
    found = {}
    for chain in [*chains.names(), EVENTS_CHAIN]:
        journal = _signed_journal(chains, chain, verifier_key)
        if journal is not None:
            tombstones = {Tombstone.from_text(text) for text in journal.tombstones}
            names = {tombstone_name(t.first_sequence, t.last_sequence) for t in tombstones}
            found[chain] = (set(journal.delete_segments), set(journal.shred_periods), names)
    return found


def check_journal(context: SweepContext, chain: str) -> tuple[SweepJournal, list[Tombstone]] | None:
    """The journal of ``chain`` and its tombstones, if there is one to carry out; refused
    (before anything is written) if it is not signed by this log or would delete what must be
    kept now. None if there is none, or only one zeroed by its finished sweep."""
    chains = context.chains
    path = chains.layout.chain(chain).sweep_journal
    if not path.exists() or is_zeroed(path):
        return None
    journal = read_state(path, SweepJournal)
    if not journal.is_signed(chains.origin_of(chain), chains.verifier_key):
        raise IntegrityError(
            f"{path.name} of chain {chain!r} is not signed by this log: nothing of it was "
            "carried out; remove it if no sweep of yours was interrupted",
            location={"chain": chain, "journal": path.name},
        )
    tombstones = [Tombstone.from_text(text) for text in journal.tombstones]
    _recheck(context, chain, journal, tombstones, micros_to_datetime(journal.now))
    return journal, tombstones


def finish_journal(context: SweepContext, chain: str) -> bool:
    """Finish an interrupted (or just planned) sweep of ``chain``; False if none was pending."""
    chains, keys = context.chains, context.keys
    files = chains.layout.chain(chain)
    path = files.sweep_journal
    if not path.exists():
        return False
    if is_zeroed(path):
        # Its sweep was done, and it was being removed: finish that.
        with chains.layout.log_lock():
            secure_delete(path)
            context.state.bind_chain(chain)
        return False
    checked = check_journal(context, chain)
    if checked is None:
        return False
    journal, tombstones = checked
    origin = chains.origin_of(chain)
    now = micros_to_datetime(journal.now)
    _announce(context, chain, journal, now, tombstones)
    crashpoint("sweep-announced")
    store = TombstoneStore(files.tombstones, origin, chains.verifier_key)
    for tombstone in tombstones:
        store.save(tombstone, keys.signer())
        crashpoint("sweep-tombstone-stored")
    for sequence in journal.delete_segments:
        segment = segment_path(files.segments, sequence)
        if segment.exists():
            os.chmod(segment, 0o600)
            segment.unlink()
            fsync_dir(segment.parent)
        crashpoint("sweep-segment-deleted")
    keyring = keys.keyring(chain)
    dictionaries = DictionaryStore(files.dicts, origin)
    writer = chains.open_writer_if_any(chain)
    for period in journal.shred_periods:
        with chains.layout.log_lock():
            # Under the lock a dictionary is stored under: one trained in the background for
            # this period is either stored before (and destroyed here) or never.
            if writer is not None:
                writer.forget_period(period)
            secure_delete(dictionaries.path(period))
        crashpoint("sweep-dictionary-destroyed")
        keyring.shred(period, journal.now)
        crashpoint("sweep-key-shredded")
    with chains.layout.log_lock():
        # The end is recorded before the journal goes (once: a rerun finds it), so that a sweep
        # killed while its journal is removed is not left without it.
        finished = f"{journal.sweep_id}: finished"
        if not any(e.detail.startswith(finished) for e in context.events.tail(16)):
            claim = None
            if files.keyring.exists():
                relative = chains.layout.relative(files.keyring)
                claim = state_claim(relative, keyring.generation, files.keyring)
            context.events.record(
                LogEventType.SWEEP,
                now,
                f"{finished}; keyring of chain {chain} now shreds periods "
                f"{sorted(keyring.shredded) or 'none'}",
                chain=chain,
                actor=journal.actor,
                state=claim,
            )
        crashpoint("sweep-end-recorded")
        secure_delete(path)
        crashpoint("sweep-journal-removed")
        context.state.bind_chain(chain)
    crashpoint("sweep-finished")
    return True


def _recheck(
    context: SweepContext,
    chain: str,
    journal: SweepJournal,
    tombstones: list[Tombstone],
    now: datetime,
) -> None:
    """Refuse a journal that would delete what the signed policy and holds keep now."""
    policy = context.policies().get(chain)
    holds = context.holds()
    keyring = context.keys.keyring(chain)
    shredded = set(keyring.shredded)
    periods = set(journal.shred_periods) | {p for t in tombstones for p in t.periods}
    for period in sorted(periods - shredded):
        reason = deletion_blocked(context.chains, context.keys, chain, period, policy, holds, now)
        if reason is not None:
            raise RetentionError(
                f"the sweep journal of chain {chain!r} asks to delete what must be kept: "
                f"{reason}. Nothing of it was carried out and no tombstone was signed; remove "
                f"{journal.sweep_id}'s journal (chains/{chain}/sweep.journal) and sweep again"
            )
    for tombstone in tombstones:
        if not set(tombstone.periods) <= set(journal.shred_periods) | shredded:
            raise RetentionError(
                f"the sweep journal of chain {chain!r} holds a tombstone for periods it does not "
                "shred: nothing of it was carried out; remove the journal and sweep again"
            )


def _announce(
    context: SweepContext,
    chain: str,
    journal: SweepJournal,
    when: datetime,
    tombstones: list[Tombstone],
) -> None:
    """Append the sweep's event unless a rerun finds it already among the newest events."""
    for record in context.events.tail(16):
        if record.detail.startswith(journal.sweep_id + ":"):
            return
    ranges = ", ".join(f"[{t.first_index}, {t.end_index})" for t in tombstones) or "none"
    segments = journal.delete_segments
    periods = journal.shred_periods
    context.events.record(
        LogEventType.SWEEP,
        when,
        f"{journal.sweep_id}: deleting segments {segments or 'none'} of chain {chain} (indexes "
        f"{ranges}); shredding the keys of periods {periods or 'none'}",
        chain=chain,
        actor=journal.actor,
    )
