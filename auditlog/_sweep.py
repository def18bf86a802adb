"""Planning and applying retention sweeps: journaled, idempotent, crash-safe.

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
planted one is refused, never carried out.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgpack

from auditlog import note
from auditlog._fs import atomic_replace, fsync_dir, secure_delete
from auditlog._testhooks import crashpoint
from auditlog.errors import ConfigurationError, IntegrityError, NoteError, RetentionError
from auditlog.merkle import CompactRange
from auditlog.retention import (
    ChainSweepPlan,
    LegalHold,
    RetentionPolicy,
    SweepPlan,
    period_bounds,
    subject_token,
)
from auditlog.segment.format import BLOCK_HEADER, ENTRY_PREFIX, FILE_HEADER
from auditlog.segment.scan import list_segments, scan_segment, segment_path
from auditlog.segment.tombstone import Tombstone, TombstoneStore
from auditlog.segment.writer import datetime_to_micros

if TYPE_CHECKING:
    from auditlog.log import AuditLog

_JOURNAL_FORMAT: Final = "auditlog-sweep-journal"
_JOURNAL_VERSION: Final = 1


@dataclass(frozen=True)
class _SegmentHead:
    sequence: int
    path: Path
    newest_period: int | None  # the period of its first block: no block in it is newer


def _heads(segments_dir: Path) -> list[_SegmentHead]:
    """Each segment's newest period from its first block header: one small read per segment.

    Segments roll when a newer period arrives, so the first block of a segment carries its
    newest period; later blocks can only be late records of older periods.
    """
    heads = []
    for sequence, path in list_segments(segments_dir):
        with path.open("rb") as handle:
            head = handle.read(FILE_HEADER.size + ENTRY_PREFIX.size + BLOCK_HEADER.size)
        period = None
        if len(head) == FILE_HEADER.size + ENTRY_PREFIX.size + BLOCK_HEADER.size:
            fields = BLOCK_HEADER.unpack_from(head, FILE_HEADER.size + ENTRY_PREFIX.size)
            period = fields[6]
        heads.append(_SegmentHead(sequence, path, period))
    return heads


def plan_chain(
    log: AuditLog,
    chain: str,
    policy: RetentionPolicy | None,
    holds: list[LegalHold],
    now: datetime,
    only_periods: Iterable[int] | None,
) -> ChainSweepPlan:
    """What sweeping ``chain`` at ``now`` would do (reads headers, seals and keyring only)."""
    plan = ChainSweepPlan(chain=chain, policy=policy)
    if policy is None:
        if only_periods:
            raise RetentionError(
                f"chain {chain!r} has no retention policy, so nothing of it may be deleted; "
                "set one with set_retention / `auditlog retention set`"
            )
        return plan
    directory = log.path / "chains" / chain
    period_seconds = log.config.period_seconds
    keyring = log._keyring(chain)
    shredded = set(keyring.shredded)
    periods = set(keyring.periods) | shredded
    requested = None if only_periods is None else set(only_periods)
    active_holds = [h for h in holds if h.active(now)]
    expired: set[int] = set()
    for period in sorted(periods):
        if period in shredded:
            plan.already_shredded.append(period)
            expired.add(period)
            continue
        if requested is not None and period not in requested:
            plan.kept_periods.append(period)
            continue
        floor_ends = policy.floor_ends(period, period_seconds)
        if now < floor_ends:
            if requested is not None:
                raise RetentionError(
                    f"period {period} of chain {chain!r} is inside the retention floor "
                    f"(kept at least {policy.keep_at_least} after its end, until "
                    f"{floor_ends.isoformat()}); it cannot be deleted, even by hand"
                )
            plan.floor_periods.append(period)
            continue
        if requested is None and now < policy.ceiling_passes(period, period_seconds):
            plan.kept_periods.append(period)
            continue
        start, end = period_bounds(period, period_seconds)
        covering = [h for h in active_holds if h.covers(chain, start, end)]
        cases = [h.case_id for h in covering if _hold_binds(log, chain, h, period)]
        if cases:
            plan.held_periods[period] = cases
            continue
        plan.shred_periods.append(period)
        expired.add(period)
    heads = _heads(directory / "segments")
    for position, head in enumerate(heads):
        if head.newest_period is None or head.newest_period not in expired:
            continue
        last = position == len(heads) - 1
        data = head.path.read_bytes()
        scan = scan_segment(data, head.path, head.sequence, chain=chain, allow_torn=last)
        segment_periods = {b.header.period for b in scan.blocks}
        if segment_periods <= expired:
            plan.delete_segments.append(head.sequence)
            if scan.seal is None:
                plan.seal_open_segment = True
    return plan


def _hold_binds(log: AuditLog, chain: str, hold: LegalHold, period: int) -> bool:
    """A hold on every subject binds; one on some subjects binds if any of them has a record."""
    if not hold.subject_tokens:
        return True
    key = log._hold_key()
    wanted = set(hold.subject_tokens)
    # Only segments whose newest period is this one or a little later can hold its records
    # (late records go at most ``late_bound_seconds`` back).
    late = -(-log.config.late_bound_seconds // log.config.period_seconds) + 1
    heads = _heads(log.path / "chains" / chain / "segments")
    sequences = {
        h.sequence
        for h in heads
        if h.newest_period is not None and period <= h.newest_period <= period + late
    }
    for record in log._records_of_period(chain, period, sequences):
        if subject_token(key, record.subject) in wanted:
            return True
    return False


def _journal_path(log: AuditLog, chain: str) -> Path:
    return log.path / "chains" / chain / "sweep.journal"


def apply_chain(log: AuditLog, plan: ChainSweepPlan, now: datetime, actor: str) -> None:
    """Carry out a chain's plan through its journal."""
    if plan.empty:
        return
    writer = log._writer(plan.chain)
    if plan.seal_open_segment:
        writer.seal_open_segment()
    tombstones = _tombstones_for(log, plan, now)
    journal = {
        "format": _JOURNAL_FORMAT,
        "version": _JOURNAL_VERSION,
        "sweep_id": "sweep-" + secrets.token_hex(6),
        "now": datetime_to_micros(now),
        "actor": actor,
        "delete_segments": plan.delete_segments,
        "shred_periods": plan.shred_periods,
        "tombstones": [t.text() for t in tombstones],
    }
    # The journal is signed with the log's key: a journal planted by someone who can write
    # files but holds no key must not get records deleted or keys shredded on the next open.
    journal["signature"] = note.sign(_journal_text(log, plan.chain, journal), log._signer())
    atomic_replace(_journal_path(log, plan.chain), msgpack.packb(journal))
    crashpoint("sweep-journal-written")
    finish_journal(log, plan.chain)


def _tombstones_for(log: AuditLog, plan: ChainSweepPlan, now: datetime) -> list[Tombstone]:
    """One tombstone per run of consecutive deleted segments, from their own bytes."""
    directory = log.path / "chains" / plan.chain / "segments"
    runs: list[list[int]] = []
    for sequence in sorted(plan.delete_segments):
        if runs and runs[-1][-1] == sequence - 1:
            runs[-1].append(sequence)
        else:
            runs.append([sequence])
    origin = log.chain_origin(plan.chain)
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
                leaves = bytes(block.leaves)
                deleted.extend_joined(leaves)
        periods = sorted({b.header.period for scan in scans for b in scan.blocks})
        tombstones.append(
            Tombstone(
                origin=origin,
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


def _journal_text(log: AuditLog, chain: str, journal: dict[str, object]) -> str:
    """What the journal's signature covers: its origin and a digest of everything it orders."""
    body = {k: v for k, v in journal.items() if k != "signature"}
    digest = hashlib.sha256(msgpack.packb(body)).hexdigest()
    return f"auditlog-sweep-journal/v1\n{log.chain_origin(chain)}\n{digest}\n"


def pending_segments(log: AuditLog, chain: str) -> set[int]:
    """Segments an interrupted sweep's signed journal is yet to delete (empty if none)."""
    path = _journal_path(log, chain)
    try:
        journal = msgpack.unpackb(path.read_bytes())
        signed_text = note.open_note(str(journal.get("signature", "")), [log.verifier_key])
    except (FileNotFoundError, ValueError, NoteError, AttributeError):
        return set()
    if signed_text != _journal_text(log, chain, journal):
        return set()
    return {int(s) for s in journal["delete_segments"]}


def finish_journal(log: AuditLog, chain: str) -> bool:
    """Finish an interrupted (or just planned) sweep of ``chain``; False if none was pending."""
    path = _journal_path(log, chain)
    try:
        journal = msgpack.unpackb(path.read_bytes())
    except FileNotFoundError:
        return False
    if journal.get("format") != _JOURNAL_FORMAT or journal.get("version") != _JOURNAL_VERSION:
        raise IntegrityError(f"{path} is not a sweep journal of a known version")
    try:
        signed_text = note.open_note(str(journal.get("signature", "")), [log.verifier_key])
    except NoteError:
        signed_text = None
    if signed_text != _journal_text(log, chain, journal):
        raise IntegrityError(
            f"{path.name} of chain {chain!r} is not signed by this log: nothing of it was "
            "carried out; remove it if no sweep of yours was interrupted",
            location={"chain": chain, "journal": path.name},
        )
    directory = log.path / "chains" / chain
    sweep_id = journal["sweep_id"]
    now = datetime.fromtimestamp(journal["now"] / 1_000_000, UTC)
    segments = journal["delete_segments"]
    periods = journal["shred_periods"]
    tombstones = [Tombstone.from_text(text) for text in journal["tombstones"]]
    log._announce_sweep(chain, sweep_id, now, segments, periods, tombstones, journal["actor"])
    crashpoint("sweep-announced")
    store = TombstoneStore(directory / "tombstones", log.chain_origin(chain), log.verifier_key)
    for tombstone in tombstones:
        store.save(tombstone, log._signer())
        crashpoint("sweep-tombstone-stored")
    for sequence in segments:
        segment = segment_path(directory / "segments", sequence)
        if segment.exists():
            os.chmod(segment, 0o600)
            segment.unlink()
            fsync_dir(segment.parent)
        crashpoint("sweep-segment-deleted")
    keyring = log._keyring(chain)
    for period in periods:
        dictionary = directory / "dicts" / f"{period:010d}.zdict"
        secure_delete(dictionary)
        crashpoint("sweep-dictionary-destroyed")
        keyring.shred(period, datetime_to_micros(now))
        log._forget_period(chain, period)
        crashpoint("sweep-key-shredded")
    secure_delete(path)
    crashpoint("sweep-finished")
    return True


def applicable_chains(log: AuditLog, chains: Iterable[str] | None) -> list[str]:
    names = list(chains) if chains is not None else log.chains()
    unknown = sorted(set(names) - set(log.chains()))
    if unknown:
        raise ConfigurationError(f"no such chains: {unknown}")
    return names


def plan_sweep(
    log: AuditLog,
    now: datetime,
    chains: Iterable[str] | None,
    periods: Mapping[str, Iterable[int]] | None,
    holds: list[LegalHold],
) -> SweepPlan:
    plans = {}
    for chain in applicable_chains(log, chains):
        only = None if periods is None else periods.get(chain, ())
        plans[chain] = plan_chain(log, chain, log.retention(chain), holds, now, only)
    return SweepPlan(now=now, chains=plans)
