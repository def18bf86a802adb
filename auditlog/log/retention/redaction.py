"""Erasing one subject's records where the law allows it: their frames go, their leaves stay.

Blocks keep their hashes, so every root, checkpoint and proof of other records stays valid. A
signed redaction note (stored before any frame is removed) names the erased indexes, so that
verification can tell a redaction from an erasure by someone without the key; a ``log`` record
says who, when and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from auditlog._testhooks import crashpoint
from auditlog.clock import datetime_to_micros
from auditlog.codec import decode_record
from auditlog.errors import RetentionError
from auditlog.log.chains import Chains
from auditlog.log.events import EventLog
from auditlog.log.key_material import KeyMaterial
from auditlog.log.state import LogState
from auditlog.records import LogEventType
from auditlog.retention import RetentionPolicy
from auditlog.segment.redaction import rewrite_segment
from auditlog.segment.scan import segment_path

__all__ = ["redact_subject"]


def redact_subject(
    chains: Chains,
    keys: KeyMaterial,
    events: EventLog,
    state: LogState,
    policies: Mapping[str, RetentionPolicy],
    subject: str,
    *,
    reason: str,
    actor: str,
    when: datetime,
    legal_basis: str | None,
    names: Iterable[str],
) -> dict[str, list[int]]:
    """Redact every readable record of ``subject`` in the chains ``names``; returns the
    redacted indexes per chain (chains without such records are left out)."""
    done: dict[str, list[int]] = {}
    period_seconds = chains.config.period_seconds
    for chain in names:
        writer = chains.writer(chain)
        writer.flush()
        matches = _find_subject(chains, keys, chain, subject)
        if not matches:
            continue
        policy = policies.get(chain)
        in_floor = policy is not None and any(
            when < policy.floor_ends(p, period_seconds) for _, _, _, p in matches
        )
        if in_floor and not legal_basis:
            raise RetentionError(
                f"records of this subject in chain {chain!r} are inside the retention floor; "
                "erasing them needs legal_basis=... naming the provision that overrides it"
            )
        if any(sequence == writer.open_sequence for sequence, _, _, _ in matches):
            writer.seal_open_segment()
            crashpoint("redaction-segment-sealed")
        by_segment: dict[int, dict[int, set[int]]] = {}
        for sequence, first, position, _ in matches:
            by_segment.setdefault(sequence, {}).setdefault(first, set()).add(position)
        segments_dir = chains.layout.chain(chain).segments
        indexes = sorted(first + position for _, first, position, _ in matches)
        # The signed note first: a crash before the rewrite leaves a note naming frames
        # still present (harmless); never a missing frame without a note.
        chains.redactions(chain).save(indexes, datetime_to_micros(when), keys.signer())
        crashpoint("redaction-note-stored")
        # Logged before any frame goes: a redaction killed half-way is never unlogged (one
        # killed before its rewrites is found again, and logged again, when run again).
        override = f"; inside the retention floor, on legal basis {legal_basis}" if in_floor else ""
        events.record(
            LogEventType.REDACTION,
            when,
            f"redacted {len(indexes)} records of chain {chain} (indexes {_ranges(indexes)}): "
            f"{reason}{override}",
            chain=chain,
            actor=actor,
        )
        crashpoint("redaction-recorded")
        for sequence, redactions in by_segment.items():
            rewrite_segment(segment_path(segments_dir, sequence), sequence, chain, redactions)
            crashpoint("redaction-segment-rewritten")
        done[chain] = indexes
        with chains.layout.log_lock():
            state.bind_chain(chain)
            crashpoint("redaction-head-bound")
    return done


def _find_subject(
    chains: Chains, keys: KeyMaterial, chain: str, subject: str
) -> list[tuple[int, int, int, int]]:
    """(segment, block first index, position, period) of every readable record of subject."""
    reader = chains.reader(chain)
    keyring = keys.keyring(chain)
    found = []
    for scan in reader.scans():
        for ordinal, block in enumerate(scan.blocks):
            header = block.header
            if header.period in keyring.shredded:
                continue
            where: dict[str, object] = {"chain": chain, "segment": scan.sequence, "block": ordinal}
            for index, canonical in reader.decrypt(block, keyring, where, skip_redacted=True):
                if decode_record(canonical).subject == subject:
                    position = index - header.first_index
                    found.append((scan.sequence, header.first_index, position, header.period))
    return found


def _ranges(indexes: list[int]) -> str:
    """Indexes as compact ranges: 3-5, 9."""
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][1] == index - 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)
