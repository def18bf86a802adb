"""Repair: cut damaged blocks off the open tail of a chain, keeping the cut bytes as evidence,
and rebuild tiles that do not verify.

Only the last segment of a chain is ever cut, from the first damaged entry to its end, and
never below a signed checkpoint. Damage in a sealed segment is not repairable here: restore
that segment from a backup. A torn tail is not damage: opening for writing cuts it. Tiles are
derived data: when they do not verify (or after a cut) they are written again from the segments
and tombstones.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from auditlog._fs import create_exclusive, make_private_dir
from auditlog.errors import IntegrityError
from auditlog.log.manifest import load_manifest
from auditlog.log.results import RepairReport
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.segment.files import ChainFiles, acquire_chain_lock
from auditlog.segment.format import ENTRY_BLOCK
from auditlog.segment.reader import ChainReader
from auditlog.segment.recovery import rebuild_tiles
from auditlog.segment.redaction import RedactionStore
from auditlog.segment.scan import entry_heads, list_segments
from auditlog.segment.tiles import TileStore, is_tile_damage
from auditlog.segment.tombstone import TombstoneStore
from auditlog.storage.layout import LogLayout

__all__ = ["repair_chain", "repair_detail", "repair_log"]


def repair_log(root: Path, chain: str | None, now: datetime) -> list[RepairReport]:
    """Cut the damaged open tail of ``chain`` (default: every chain) of the log at ``root``."""
    layout = LogLayout(root)
    manifest = load_manifest(layout)
    reports = []
    for name in [chain] if chain else layout.chain_names():
        origin = f"{manifest.origin}/{name}"
        report = repair_chain(layout.chain(name), name, origin, now, manifest.checkpoint_key)
        if report is not None:
            reports.append(report)
    return reports


def repair_detail(report: RepairReport) -> str:
    """The detail of a repair's event."""
    return (
        f"cut {report.bytes_cut} bytes from segment {report.segment} of chain {report.chain} at "
        f"offset {report.offset}; records from index {report.first_lost_index} on were lost; "
        f"the bytes are kept in {report.quarantine.name}"
    )


def repair_chain(
    files: ChainFiles, chain: str, origin: str, now: datetime, verifier_key: str
) -> RepairReport | None:
    """Cut the damaged tail of one chain, and rebuild its tiles after a cut or if they do not
    verify, holding its writer lock; the cut made, or None."""
    # Hold the writer lock throughout: cutting a file a live writer appends to would corrupt it.
    lock = acquire_chain_lock(files, chain)
    try:
        tombstones = TombstoneStore(files.tombstones, origin, verifier_key).load()
        redactions = RedactionStore(files.redactions, origin, verifier_key).indexes()
        # The whole chain and its tiles are checked (keyless), so damage anywhere is found;
        # only damage in the last segment can be cut. Tile damage is raised only once the
        # segments verified.
        reader = ChainReader(files, chain, origin, period_seconds=86_400)
        try:
            reader.verify(None, tombstones=tombstones, redactions=redactions, holding_lock=True)
            return None
        except IntegrityError as exc:
            cut = None if is_tile_damage(exc) else _cut_damaged_tail(files, chain, now, exc)
        rebuild_tiles(TileStore(files.tiles), files, chain, tombstones)
        return cut
    finally:
        os.close(lock)


def _cut_damaged_tail(
    files: ChainFiles, chain: str, now: datetime, error: IntegrityError
) -> RepairReport:
    """Cut the last segment at the damaged entry ``error`` names, keeping the bytes."""
    segments = list_segments(files.segments)
    sequence, path = segments[-1] if segments else (-1, files.segments)
    damage = error.location
    offset = damage.get("offset")
    if damage.get("segment") != sequence or not isinstance(offset, int):
        raise IntegrityError(
            f"{error}; this damage is not in the chain's open tail, so repair cannot cut it: "
            "restore the damaged segment from a backup",
            location=damage,
        )
    first_lost = damage.get("index")
    lost_from: int | None
    if isinstance(first_lost, int):
        lost_from = first_lost
    else:  # the damaged entry's own index is unreadable: everything after the last good block
        good = [h for h in entry_heads(path) if h.kind == ENTRY_BLOCK and h.offset < offset]
        lost_from = good[-1].first_index + good[-1].count if good else None
    covered = CheckpointStore(files.checkpoints).sizes()
    if covered and (lost_from is None or covered[-1] > lost_from):
        raise IntegrityError(
            f"the damaged records (from index {lost_from if lost_from is not None else '?'}) "
            "are covered by a signed checkpoint "
            f"of size {covered[-1]}: cutting them would leave a log that can never verify "
            "against it again; restore the segment from a backup instead",
            location=damage,
        )
    make_private_dir(files.quarantine)
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    quarantine = files.quarantine / f"{sequence:010d}-{offset}-{stamp}.bin"
    # Only the tail being cut is read, not the whole segment (up to max_segment_bytes).
    with path.open("rb") as handle:
        handle.seek(offset)
        cut = handle.read()
    create_exclusive(quarantine, cut)
    os.chmod(path, 0o600)  # a sealed last segment is read-only
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return RepairReport(
        chain=chain,
        segment=sequence,
        offset=offset,
        bytes_cut=len(cut),
        first_lost_index=int(first_lost) if isinstance(first_lost, int) else -1,
        quarantine=quarantine,
    )
