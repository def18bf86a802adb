"""Planning a sweep: which periods are past the ceiling and not held, and which segments hold
nothing else and so can go. A plan reads segment heads, seals and keyrings; it changes nothing
(``journal`` carries it out)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from auditlog.codec import decode_record
from auditlog.errors import RetentionError
from auditlog.log.chains import Chains
from auditlog.log.key_material import KeyMaterial
from auditlog.log.retention.holds import subject_token
from auditlog.retention import (
    ChainSweepPlan,
    LegalHold,
    RetentionPolicy,
    SweepPlan,
    period_bounds,
)
from auditlog.segment.format import FIRST_BLOCK_HEAD_BYTES, first_block_period
from auditlog.segment.scan import list_segments, scan_segment

__all__ = ["deletion_blocked", "plan_sweep"]


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
            period = first_block_period(handle.read(FIRST_BLOCK_HEAD_BYTES))
        heads.append(_SegmentHead(sequence, path, period))
    return heads


def plan_sweep(
    chains: Chains,
    keys: KeyMaterial,
    policies: Mapping[str, RetentionPolicy],
    holds: list[LegalHold],
    now: datetime,
    names: Iterable[str],
    periods: Mapping[str, Iterable[int]] | None,
) -> SweepPlan:
    """What sweeping ``names`` at ``now`` would do; ``periods`` asks for periods by hand."""
    plans = {}
    for chain in names:
        only = None if periods is None else periods.get(chain, ())
        plans[chain] = _plan_chain(chains, keys, chain, policies.get(chain), holds, now, only)
    return SweepPlan(now=now, chains=plans)


def _plan_chain(
    chains: Chains,
    keys: KeyMaterial,
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
                "set one with log.retention.set_policy / `auditlog retention set`"
            )
        return plan
    period_seconds = chains.config.period_seconds
    keyring = keys.keyring(chain)
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
        cases = [h.case_id for h in covering if _hold_binds(chains, keys, chain, h, period)]
        if cases:
            plan.held_periods[period] = cases
            continue
        plan.shred_periods.append(period)
        expired.add(period)
    heads = _heads(chains.layout.chain(chain).segments)
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


def deletion_blocked(
    chains: Chains,
    keys: KeyMaterial,
    chain: str,
    period: int,
    policy: RetentionPolicy | None,
    holds: list[LegalHold],
    now: datetime,
) -> str | None:
    """Why the records of ``period`` of ``chain`` may not be deleted at ``now`` (no policy,
    inside the floor, under a binding hold), or None if they may."""
    if policy is None:
        return f"chain {chain!r} has no retention policy"
    floor_ends = policy.floor_ends(period, chains.config.period_seconds)
    if now < floor_ends:
        return f"period {period} of chain {chain!r} is inside the retention floor ({floor_ends})"
    start, end = period_bounds(period, chains.config.period_seconds)
    for hold in holds:
        covers = hold.active(now) and hold.covers(chain, start, end)
        if covers and _hold_binds(chains, keys, chain, hold, period):
            return f"period {period} of chain {chain!r} is under legal hold {hold.hold_id}"
    return None


def _hold_binds(
    chains: Chains, keys: KeyMaterial, chain: str, hold: LegalHold, period: int
) -> bool:
    """A hold on every subject binds; one on some subjects binds if any of them has a record."""
    if not hold.subject_tokens:
        return True
    key = keys.hold_key()
    wanted = set(hold.subject_tokens)
    config = chains.config
    # Only segments whose newest period is this one or a little later can hold its records
    # (late records go at most ``late_bound_seconds`` back).
    late = -(-config.late_bound_seconds // config.period_seconds) + 1
    heads = _heads(chains.layout.chain(chain).segments)
    sequences = {
        h.sequence
        for h in heads
        if h.newest_period is not None and period <= h.newest_period <= period + late
    }
    reader = chains.reader(chain)
    keyring = keys.keyring(chain)
    for _, canonical in reader.records_of_period(keyring, period, sequences):
        if subject_token(key, decode_record(canonical).subject) in wanted:
            return True
    return False
