"""The log's state as its signed head binds it: snapshots, re-binding after a change, and the
comparison of the head with what the directory holds.

A change of state (a policy, a hold, a key, a sweep, a redaction, a seal, a dictionary, a
checkpoint) is written first, then bound: ``LogState.bind_chain`` / ``bind_files`` re-read what
changed and sign the next head, under the log lock. ``compare`` lists every difference between
a head and the directory; ``Difference.benign`` tells the differences a crash between the two
steps can leave (a newer signed file, a signed file not yet bound) from those only tampering
or a rollback makes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from auditlog._fs import is_zeroed
from auditlog._statefile import StateFile, decode_state
from auditlog.crypto.keys import KeyringFile
from auditlog.crypto.signed import SignedState, StateSigner
from auditlog.errors import AuditLogError, StateFileError
from auditlog.log.head import (
    BoundFile,
    ChainHead,
    HeadStore,
    LogHead,
    bound_chain_files,
    chain_snapshot,
    file_digest,
)
from auditlog.log.holds_file import HOLDS_PATH, HoldsFile
from auditlog.log.manifest import MANIFEST_PATH, Manifest
from auditlog.segment.format import FILE_HEADER
from auditlog.segment.scan import list_segments
from auditlog.segment.tombstone import tombstone_range
from auditlog.storage.layout import EVENTS_CHAIN, LogLayout

__all__ = ["Difference", "LogState", "all_chains", "compare", "snapshot", "state_model"]

# The signed state files the head binds with their generation, by how to find their model.
_STATE_MODELS: dict[str, type[SignedState]] = {MANIFEST_PATH: Manifest, HOLDS_PATH: HoldsFile}


def state_model(path: str) -> type[SignedState] | None:
    if path.endswith("/keyring") and path.startswith("chains/"):
        return KeyringFile
    return _STATE_MODELS.get(path)


def _key_files(layout: LogLayout) -> list[Path]:
    return [p for p in (layout.root_key, layout.checkpoint_key, layout.hold_key) if p.exists()]


def all_chains(layout: LogLayout) -> list[str]:
    """Every chain directory of the log, the events chain included."""
    chains = layout.chain_names()
    if layout.chain(EVENTS_CHAIN).directory.is_dir():
        chains.append(EVENTS_CHAIN)
    return chains


def _generation(path: Path, model: type[StateFile]) -> int | None:
    """A signed state file's generation as the file says (its signature is not checked)."""
    try:
        doc = decode_state(path.read_bytes(), path, model)
    except StateFileError:
        return None
    return doc.generation if isinstance(doc, SignedState) else None


def _bound(layout: LogLayout, path: Path) -> BoundFile:
    relative = layout.relative(path)
    model = state_model(relative)
    generation = _generation(path, model) if model is not None else None
    return BoundFile(file_digest(path), generation)


_KEYRINGS: dict[Path, tuple[tuple[int, int, int, int], BoundFile, tuple[int, ...]]] = {}
_KEYRINGS_LOCK = threading.Lock()


def _keyring_state(path: Path, *, fresh: bool) -> tuple[BoundFile, tuple[int, ...]] | None:
    """A keyring's binding and shredded periods as the file says (its signature is checked by
    its loader, not here); without ``fresh``, remembered while the file is unchanged."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    key = (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    if not fresh:
        with _KEYRINGS_LOCK:
            cached = _KEYRINGS.get(path)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        keyring = decode_state(data, path, KeyringFile)
        bound = BoundFile(digest, keyring.generation)
        shredded = tuple(sorted(keyring.shredded))
    except StateFileError:
        bound, shredded = BoundFile(digest), ()
    with _KEYRINGS_LOCK:
        if len(_KEYRINGS) > 10_000:
            _KEYRINGS.clear()
        _KEYRINGS[path] = (key, bound, shredded)
    return bound, shredded


def _chain_state(
    layout: LogLayout, chain: str, *, fresh: bool = True
) -> tuple[ChainHead, dict[str, BoundFile]]:
    files = layout.chain(chain)
    bound = bound_chain_files(layout, files, fresh=fresh)
    shredded: tuple[int, ...] = ()
    keyring = _keyring_state(files.keyring, fresh=fresh)
    if keyring is not None:
        bound[layout.relative(files.keyring)], shredded = keyring
    return chain_snapshot(files, shredded), bound


def snapshot(layout: LogLayout, head: LogHead) -> LogHead:
    """``head`` with every chain line and every bound file as the directory holds them now
    (the events chain's size and root are the caller's)."""
    files: dict[str, BoundFile] = {}
    for path in (layout.manifest, layout.holds, *_key_files(layout)):
        if path.exists():
            files[layout.relative(path)] = _bound(layout, path)
    chains: dict[str, ChainHead] = {}
    for chain in all_chains(layout):
        chains[chain], bound = _chain_state(layout, chain)
        files.update(bound)
    return replace(head, chains=chains, files=files)


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the directory differs from its head."""

    what: str
    location: Mapping[str, object]
    benign: bool
    """What a crash between a change and its binding can leave (the head is behind)."""
    rollback: bool = False


def compare(
    layout: LogLayout,
    head: LogHead,
    signer: StateSigner,
    events_size: int,
    events_root_at_head: bytes | None,
    pending_sweeps: Mapping[str, tuple[set[int], set[int], set[str]]] | None = None,
) -> list[Difference]:
    """Every difference between ``head`` and the directory.

    ``signer`` checks the signature of a state file that is newer than the head.
    ``events_size`` is the events chain's size now and ``events_root_at_head`` its root at the
    head's size (None if it is shorter). ``pending_sweeps`` maps a chain with an unfinished,
    signed sweep to (its segments to delete, its periods to shred, its tombstone files), which
    may be half done.
    """
    pending = pending_sweeps or {}
    found: list[Difference] = []
    now = snapshot(layout, head)
    for chain in sorted(set(head.chains) | set(now.chains)):
        where = {"chain": chain}
        if chain not in now.chains:
            found.append(
                Difference(
                    f"chain {chain!r} is gone, though the log's signed head names it",
                    where,
                    benign=False,
                    rollback=True,
                )
            )
            continue
        if chain not in head.chains:
            # A crash between making a chain and naming it in the head leaves it empty; one
            # with records, checkpoints or keys was made elsewhere and planted.
            empty = _holds_nothing(layout, chain, now)
            found.append(
                Difference(
                    f"chain {chain!r} is not in the log's signed head"
                    + ("" if empty else ", yet holds records or keys: it was planted"),
                    where,
                    benign=empty,
                )
            )
            continue
        found += _compare_chain(layout, chain, head, now, pending)
    found += _compare_files(layout, head, now, signer, pending)
    found += _compare_events(head, events_size, events_root_at_head)
    return found


def _compare_chain(
    layout: LogLayout,
    chain: str,
    head: LogHead,
    now: LogHead,
    pending: Mapping[str, tuple[set[int], set[int], set[str]]],
) -> list[Difference]:
    found = []
    where = {"chain": chain}
    signed, disk = head.chains[chain], now.chains[chain]
    if disk.checkpoints < signed.checkpoints or (
        signed.newest_checkpoint and disk.newest_checkpoint < signed.newest_checkpoint
    ):
        found.append(
            Difference(
                f"chain {chain!r} stores {disk.checkpoints} signed checkpoints (newest of size "
                f"{disk.newest_checkpoint}); the log's head says {signed.checkpoints} (newest "
                f"{signed.newest_checkpoint}): checkpoints were deleted",
                {**where, "checkpoints": disk.checkpoints},
                benign=False,
                rollback=True,
            )
        )
    elif disk.checkpoints > signed.checkpoints:
        found.append(
            Difference(f"chain {chain!r} has checkpoints the head does not count", where, True)
        )
    segments = list_segments(layout.chain(chain).segments)
    deleting = pending[chain][0] if chain in pending else set()
    swept = _tombstoned(chain, now)
    found += _resurrected(chain, segments, swept, deleting)
    if chain in pending:
        # A sweep half done: its own segments may be gone or not; no other may be missing.
        on_disk = {sequence for sequence, _ in segments}
        lost = [
            sequence
            for sequence in range(signed.sealed_through + 1)
            if sequence not in on_disk and sequence not in swept and sequence not in deleting
        ]
        if lost:
            found.append(
                Difference(
                    f"sealed segments {lost[:8]} of chain {chain!r} are missing, and no "
                    "tombstone or unfinished sweep accounts for them: they were deleted",
                    {**where, "segment": lost[0]},
                    benign=False,
                )
            )
    # A redaction rewrites sealed segments after storing its signed note: a note the head
    # does not bind yet means the head is behind a redaction.
    prefix = f"chains/{chain}/redactions/"
    redacting = any(p.startswith(prefix) and p not in head.files for p in now.files)
    if chain not in pending:
        found += _sealed_bytes(chain, signed, segments, benign=redacting)
    if disk.sealed_through > signed.sealed_through:
        found.append(Difference(f"chain {chain!r} sealed segments after its head", where, True))
    return found


class _Swept:
    """Sequence ranges, inclusive."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = ranges

    def __contains__(self, sequence: object) -> bool:
        return isinstance(sequence, int) and any(
            first <= sequence <= last for first, last in self.ranges
        )


def _holds_nothing(layout: LogLayout, chain: str, now: LogHead) -> bool:
    """Whether a chain's directory is as a crash right after making it leaves it."""
    line = now.chains[chain]
    prefix = f"chains/{chain}/"
    return (
        line.checkpoints == 0
        and line.sealed_through < 0
        and not any(path.startswith(prefix) for path in now.files)
        and all(
            path.stat().st_size <= FILE_HEADER.size
            for _, path in list_segments(layout.chain(chain).segments)
        )
    )


def _swept(names: Iterable[str]) -> _Swept:
    """The segments tombstones of these file names say were deleted (their contents and
    signatures are checked against the head and by verification)."""
    return _Swept([r for r in map(tombstone_range, names) if r is not None])


def _tombstoned(chain: str, now: LogHead) -> _Swept:
    """The segments the tombstones on disk say were deleted, from their file names."""
    prefix = f"chains/{chain}/tombstones/"
    return _swept(path[len(prefix) :] for path in now.files if path.startswith(prefix))


def _resurrected(
    chain: str, segments: list[tuple[int, Path]], swept: _Swept, deleting: set[int]
) -> list[Difference]:
    """A segment inside a tombstone's range that no unfinished sweep is deleting."""
    return [
        Difference(
            f"segment {sequence} of chain {chain!r} is inside the range of a signed tombstone: "
            "a segment a sweep deleted was put back",
            {"chain": chain, "segment": sequence},
            benign=False,
            rollback=True,
        )
        for sequence, _ in segments
        if sequence in swept and sequence not in deleting
    ]


def _sealed_bytes(
    chain: str, line: ChainHead, segments: list[tuple[int, Path]], *, benign: bool
) -> list[Difference]:
    """The sealed segments up to the head's ``sealed`` one hold the bytes it says."""
    present = sum(path.stat().st_size for seq, path in segments if seq <= line.sealed_through)
    if present == line.sealed_bytes:
        return []
    return [
        Difference(
            f"the sealed segments of chain {chain!r} up to segment {line.sealed_through} "
            f"hold {present} bytes; the log's head says {line.sealed_bytes}: a sealed "
            "segment was shortened, lengthened, deleted or put back",
            {"chain": chain, "segment": line.sealed_through},
            benign=benign,
        )
    ]


def _compare_files(
    layout: LogLayout,
    head: LogHead,
    now: LogHead,
    signer: StateSigner,
    pending: Mapping[str, tuple[set[int], set[int], set[str]]],
) -> list[Difference]:
    found = []
    for path in sorted(set(head.files) | set(now.files)):
        where = {"file": path}
        signed, disk = head.files.get(path), now.files.get(path)
        chain = path.split("/")[1] if path.startswith("chains/") else ""
        if signed is not None and disk is None:
            if chain in pending and _pending_explains_missing(path, pending[chain]):
                continue
            if path.endswith("/sweep.journal"):
                # Removed last, once every step is done: the head is behind a finished sweep.
                # (Removed by someone else, the rest of the sweep is undone, nothing deleted;
                # whatever the sweep did deletes stays checked against its tombstones.)
                found.append(Difference(f"{path} was removed by a finished sweep", where, True))
                continue
            found.append(
                Difference(
                    f"{path} is missing, though the log's signed head binds it: it was deleted",
                    where,
                    benign=False,
                    rollback=True,
                )
            )
        elif signed is None and disk is not None:
            if chain in pending and path.rsplit("/", 1)[-1] in pending[chain][2]:
                continue  # a tombstone an unfinished, signed sweep stored
            found.append(
                Difference(f"{path} is not bound by the log's signed head", where, benign=True)
            )
        elif signed is not None and disk is not None and signed.digest != disk.digest:
            if path.endswith("/sweep.journal") and is_zeroed(layout.root / path):
                found.append(Difference(f"{path} was being removed by a sweep", where, True))
                continue
            changed = _changed(layout, path, signed, disk, signer)
            if chain in pending and changed.benign and path.endswith("/keyring"):
                continue  # the keyring an unfinished, signed sweep shreds periods in
            found.append(changed)
    return found


def _pending_explains_missing(path: str, sweep: tuple[set[int], set[int], set[str]]) -> bool:
    _, periods, _ = sweep
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".zdict") and name[:10].isdigit() and int(name[:10]) in periods


def _changed(
    layout: LogLayout, path: str, signed: BoundFile, disk: BoundFile, signer: StateSigner
) -> Difference:
    where = {"file": path}
    model = state_model(path)
    if model is None or signed.generation is None or disk.generation is None:
        return Difference(
            f"{path} is not the file the log's signed head binds: it was changed or replaced",
            where,
            benign=path.startswith("keys/"),  # a key rewrapped before the head was re-signed
        )
    if disk.generation < signed.generation:
        return Difference(
            f"{path} is generation {disk.generation}, older than the generation "
            f"{signed.generation} the log's signed head binds: an older copy was put back",
            where,
            benign=False,
            rollback=True,
        )
    if disk.generation == signed.generation:
        return Difference(
            f"{path} is not the file of its generation the log's signed head binds",
            where,
            benign=False,
        )
    try:
        signer.check(
            decode_state((layout.root / path).read_bytes(), layout.root / path, model), path
        )
    except AuditLogError:
        return Difference(f"{path} is newer than the head but not signed by the log", where, False)
    return Difference(f"{path} is newer than the log's signed head", where, benign=True)


def _compare_events(
    head: LogHead, events_size: int, events_root_at_head: bytes | None
) -> list[Difference]:
    where = {"chain": EVENTS_CHAIN}
    if events_size < head.events_size:
        return [
            Difference(
                f"the log's events chain holds {events_size} events; its signed head says "
                f"{head.events_size}: events were cut off",
                where,
                benign=False,
                rollback=True,
            )
        ]
    if events_root_at_head is not None and events_root_at_head != head.events_root:
        return [
            Difference(
                "the log's events chain at the size its head names has another root: the "
                "events were rewritten",
                where,
                benign=False,
            )
        ]
    if events_size > head.events_size + 1:
        # Each event is appended and bound under one hold of the log lock: a crash leaves the
        # head at most one event behind. More is an older head put back.
        return [
            Difference(
                f"the log's signed head names {head.events_size} events; its events chain holds "
                f"{events_size}: the head is {events_size - head.events_size} events behind, so "
                "it was put back from an older copy",
                where,
                benign=False,
                rollback=True,
            )
        ]
    if events_size > head.events_size:
        return [Difference("the log's events chain is ahead of its signed head", where, True)]
    return []


def _names(directory: Path, suffix: str) -> list[str]:
    try:
        return [name for name in os.listdir(directory) if name.endswith(suffix)]
    except FileNotFoundError:
        return []


def sealed_differences(layout: LogLayout, head: LogHead, chain: str) -> list[Difference]:
    """What a reader checks on open, cheaply (no digest, no key): the chain's sealed segments
    hold the bytes its head line says, and none lies inside a tombstone's range. A chain with
    an unfinished sweep or redaction (a writer at work, or a crash) is left to verification."""
    line = head.chains.get(chain)
    files = layout.chain(chain)
    if line is None:
        return []
    journal = head.files.get(layout.relative(files.sweep_journal))
    if (
        journal is not None
        and files.sweep_journal.exists()
        and file_digest(files.sweep_journal) == journal.digest
    ):
        return []  # a sweep the head knows of is under way, or was stopped: verify decides
    prefix = f"chains/{chain}/"
    notes = {f"{prefix}redactions/{name}" for name in _names(files.redactions, ".note")}
    if notes - set(head.files):
        return []
    segments = list_segments(files.segments)
    swept = _swept(_names(files.tombstones, ".tomb"))
    return [
        *_resurrected(chain, segments, swept, set()),
        *_sealed_bytes(chain, line, segments, benign=False),
    ]


class LogState:
    """Binds a log handle's changes into the signed head."""

    def __init__(self, layout: LogLayout, head: HeadStore) -> None:
        self.layout = layout
        self.head = head

    def bind_chain(self, chain: str) -> LogHead:
        """Sign a head whose line, keyring and files of ``chain`` are as on disk now."""

        def change(current: LogHead) -> LogHead:
            line, bound = _chain_state(self.layout, chain, fresh=False)
            prefix = f"chains/{chain}/"
            files = {p: b for p, b in current.files.items() if not p.startswith(prefix)}
            files.update(bound)
            return replace(current, chains={**current.chains, chain: line}, files=files)

        return self.head.update(change)

    def bind_files(self, paths: Iterable[Path]) -> LogHead:
        """Sign a head that binds ``paths`` (log-level files) as they are now; a missing one
        is unbound."""

        def change(current: LogHead) -> LogHead:
            files = dict(current.files)
            for path in paths:
                relative = self.layout.relative(path)
                if path.exists():
                    files[relative] = _bound(self.layout, path)
                else:
                    files.pop(relative, None)
            return replace(current, files=files)

        return self.head.update(change)

    def bind_events(self, size: int, root: bytes) -> LogHead:
        """Sign a head that names the events chain at (size, root)."""
        return self.head.update(lambda h: replace(h, events_size=size, events_root=root))
