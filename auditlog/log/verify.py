"""Verifying a whole log: every chain, then every checkpoint against the recomputed trees.

Keyless: every byte against the block hash chain, leaves against the Merkle roots in the
headers, seals and segment linkage — no key is needed or read. Keyed: also decrypt every
frame and recompute every leaf from the plaintext record. Both hold every stored checkpoint
(and, given a ``TrustedState``, every checkpoint trusted before) against the recomputed tree.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing import get_context

from auditlog.crypto.signed import StateSigner
from auditlog.errors import AuditLogError, ForkError, IntegrityError, NoteError, RollbackError
from auditlog.log.chains import Chains
from auditlog.log.head import HeadStore
from auditlog.log.key_material import KeyMaterial
from auditlog.log.opening import events_now, locked_if_writable, raise_for
from auditlog.log.results import VerifyReport
from auditlog.log.retention.journal import pending_sweeps
from auditlog.log.state import compare
from auditlog.log.verify_workers import (
    ChainFailure,
    ChainTask,
    default_executor,
    run_chain_task,
    unwrap_all,
)
from auditlog.note import Checkpoint, signatures_canonical
from auditlog.proofs import TrustedState, open_checkpoint, require_not_rolled_back
from auditlog.segment.reader import ChainReport
from auditlog.storage.layout import EVENTS_CHAIN

__all__ = ["Progress", "verify_log"]

Progress = Callable[[int], None]
"""Called with the number of bytes just checked."""


def verify_log(
    chains: Chains,
    keys: KeyMaterial,
    pending_segments: Callable[[str, str], set[int]],
    *,
    keyless: bool,
    progress: Progress | None,
    trusted: TrustedState | None,
    verifier_key: str,
    executor: Executor | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Check every chain; raise ``IntegrityError`` at the first problem, naming its place.

    ``pending_segments(chain, verifier_key)`` names the segments an interrupted sweep's signed
    journal is yet to delete. On success ``trusted`` is advanced to the newest stored
    checkpoint of each chain. Chains are verified on ``executor`` if given, else on a process
    pool of ``workers`` processes (default: one per core, for a log large enough to gain from
    it; 1 verifies in this process): see ``verify_workers``. The error raised is the one a
    verification in this process raises.
    """
    if not keyless:
        keys.unlock()  # with keys, signatures are checked with the key derived from them
    layout = chains.layout
    names = chains.names()
    if layout.chain(EVENTS_CHAIN).directory.is_dir():
        names.append(EVENTS_CHAIN)
    owned = None
    if executor is None and workers != 1 and len(names) > 1:
        total = sum(chains.reader(chain).total_bytes() for chain in names)
        if workers is None:
            executor = owned = default_executor(len(names), total)
        else:
            executor = owned = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
    try:
        if executor is None:
            reports = _verify_here(
                chains, keys, pending_segments, names, keyless, progress, trusted, verifier_key
            )
        else:
            reports = _verify_on(
                executor,
                chains,
                keys,
                pending_segments,
                names,
                keyless,
                progress,
                trusted,
                verifier_key,
            )
    finally:
        if owned is not None:
            owned.shutdown(cancel_futures=True)
    if trusted is not None:
        prefix = chains.origin + "/"
        for origin in trusted.checkpoints:
            chain = origin.removeprefix(prefix)
            if origin.startswith(prefix) and chain not in reports:
                raise RollbackError(
                    f"chain {chain!r} was trusted before but is gone from the log: it was deleted; "
                    "restore it from a backup, and do not trust this copy until then",
                    location={"origin": origin},
                )
    head = check_head(chains, keys, verifier_key)
    events = reports.pop(EVENTS_CHAIN, None)
    return VerifyReport(keyless=keyless, chains=reports, events=events, head_generation=head)


@dataclass
class _ChainPlan:
    """What the parent reads of a chain before its segments: checkpoints (listed first: a
    writer stores one only after its data is durable, so each listed must be covered by what
    is read next) and the trusted checkpoint."""

    chain: str
    origin: str
    signed_notes: list[tuple[int, str]]
    wanted: set[int]
    known: Checkpoint | None

    @classmethod
    def of(
        cls, chains: Chains, chain: str, trusted: TrustedState | None, verifier_key: str
    ) -> _ChainPlan:
        origin = chains.origin_of(chain)
        store = chains.checkpoints(chain)
        signed_notes = [(size, store.get(size)) for size in store.sizes()]
        wanted = {size for size, _ in signed_notes}
        known = _trusted_checkpoint(trusted, origin, verifier_key)
        if known is not None:
            wanted.add(known.size)
        return cls(chain, origin, signed_notes, wanted, known)

    def merge(
        self, chains: Chains, report: ChainReport, trusted: TrustedState | None, key: str
    ) -> None:
        """Hold the chain's checkpoints against its verified report; advance ``trusted``."""
        latest = _check_checkpoints(chains, self.chain, report, key, trusted, self.signed_notes)
        if trusted is not None and latest is not None:
            signed, newest = latest
            if self.known is None or newest.size >= self.known.size:
                trusted.update(self.origin, signed)


def _verify_here(
    chains: Chains,
    keys: KeyMaterial,
    pending_segments: Callable[[str, str], set[int]],
    names: list[str],
    keyless: bool,
    progress: Progress | None,
    trusted: TrustedState | None,
    verifier_key: str,
) -> dict[str, ChainReport]:
    """Every chain in turn, in this process."""
    reports = {}
    for chain in names:
        keyring = None if keyless else keys.keyring(chain)
        plan = _ChainPlan.of(chains, chain, trusted, verifier_key)
        report = chains.reader(chain).verify(
            keyring,
            progress,
            chains.tombstones(chain, verifier_key),
            chains.redactions(chain, verifier_key).indexes(),
            plan.wanted,
            pending_segments(chain, verifier_key),
        )
        plan.merge(chains, report, trusted, verifier_key)
        reports[chain] = report
    return reports


def _verify_on(
    executor: Executor,
    chains: Chains,
    keys: KeyMaterial,
    pending_segments: Callable[[str, str], set[int]],
    names: list[str],
    keyless: bool,
    progress: Progress | None,
    trusted: TrustedState | None,
    verifier_key: str,
) -> dict[str, ChainReport]:
    """Every chain on ``executor``, merged here in chain order.

    What the parent reads of a chain (keyring, checkpoints, tombstones, notes) may raise; such
    an error is kept and raised at that chain's turn, after the errors of the chains before
    it, as verifying in turn would.
    """
    plans: list[tuple[_ChainPlan, Future[ChainReport | ChainFailure]] | AuditLogError] = []
    for chain in names:
        try:
            keyring = None if keyless else keys.keyring(chain)
            plan = _ChainPlan.of(chains, chain, trusted, verifier_key)
            reader = chains.reader(chain)
            task = ChainTask(
                files=reader.files,
                chain=chain,
                origin=reader.origin,
                period_seconds=chains.config.period_seconds,
                tombstones=chains.tombstones(chain, verifier_key),
                redactions=chains.redactions(chain, verifier_key).indexes(),
                wanted=plan.wanted,
                pending=pending_segments(chain, verifier_key),
            )
            if keyring is not None:
                data_keys, failures = unwrap_all(keyring)
                task = replace(
                    task,
                    data_keys=data_keys,
                    shredded=set(keyring.shredded),
                    key_failures=failures,
                )
        except AuditLogError as exc:
            plans.append(exc)
            continue
        future = executor.submit(run_chain_task, task)
        if progress is not None:
            future.add_done_callback(partial(_report_progress, progress))
        plans.append((plan, future))
    reports = {}
    for planned in plans:
        if isinstance(planned, AuditLogError):
            raise planned
        plan, future = planned
        result = future.result()
        if isinstance(result, ChainFailure):
            raise result.rebuild()
        plan.merge(chains, result, trusted, verifier_key)
        reports[plan.chain] = result
    return reports


def _report_progress(progress: Progress, future: Future[ChainReport | ChainFailure]) -> None:
    """Tell ``progress`` the bytes of a chain verified by a worker (called as it finishes)."""
    if not future.cancelled() and future.exception() is None:
        result = future.result()
        if isinstance(result, ChainReport):
            progress(result.bytes)


def _trusted_checkpoint(
    trusted: TrustedState | None, origin: str, verifier_key: str
) -> Checkpoint | None:
    """The checkpoint ``trusted`` holds for ``origin``, checked with the log's key."""
    if trusted is None:
        return None
    try:
        return trusted.trusted(origin, verifier_key)
    except NoteError as exc:
        raise IntegrityError(
            f"the checkpoint trusted for {origin} does not verify with this log's key ({exc}): "
            "the log was re-signed with another key or replaced. Do not trust this copy: "
            "restore the log from a backup, or verify with --key set to the key you pinned",
            location={"origin": origin},
        ) from None


def check_head(chains: Chains, keys: KeyMaterial, verifier_key: str) -> int:
    """Hold the directory against the log's signed head (under the log lock, so that no change
    is half made while it is read); returns the head's generation."""
    layout = chains.layout
    signer = StateSigner(chains.origin, verifier_key)
    with locked_if_writable(layout):  # a copy on read-only media verifies too
        head = HeadStore(layout, verifier_key).require(chains.origin)
        events = events_now(layout, chains, head, verifier_key)
        differences = compare(
            layout,
            head,
            signer,
            events.size,
            events.root_at_head,
            pending_sweeps(chains, verifier_key),
        )
    raise_for(differences, what="the log does not match its signed head")
    if differences:
        raise IntegrityError(
            "the log's signed head is behind its files ("
            + "; ".join(d.what for d in differences[:5])
            + "): a writer stopped between a change and signing the head, or the head was put "
            "back from an older copy. Open the log for writing once: it checks the files and "
            "signs the head again, or refuses with the reason",
            location=dict(differences[0].location),
        )
    return head.generation


def _check_checkpoints(
    chains: Chains,
    chain: str,
    report: ChainReport,
    key: str,
    trusted: TrustedState | None,
    signed_notes: list[tuple[int, str]],
) -> tuple[str, Checkpoint] | None:
    """Hold the chain's recomputed tree against every checkpoint.

    Returns the newest stored checkpoint, as signed and as opened, or None if none is stored.
    """
    origin = chains.origin_of(chain)
    newest: tuple[str, Checkpoint] | None = None
    signed_notes = list(signed_notes)
    if trusted is not None and origin in trusted.checkpoints:
        signed_notes.append((-1, trusted.checkpoints[origin]))
    for stored_size, signed in signed_notes:
        where: dict[str, object] = {"chain": chain, "checkpoint": stored_size}
        if stored_size >= 0 and not signatures_canonical(signed):
            raise IntegrityError(
                "a checkpoint file's signature is not in canonical base64: the file was changed; "
                "restore it from a backup",
                location=where,
            )
        try:
            checkpoint = open_checkpoint(signed, key, origin)
        except NoteError as exc:
            raise IntegrityError(
                f"a checkpoint does not verify: {exc}. The log's checkpoints are not signed by "
                "the key you trust: the log was re-signed or replaced, or the wrong key was "
                "given. Do not trust this copy: check the key against the one you pinned, and "
                "restore the log from a backup",
                location=where,
            ) from None
        if stored_size >= 0:
            if checkpoint.size != stored_size:
                raise IntegrityError("a checkpoint file names another tree size", location=where)
            newest = (signed, checkpoint)
        require_not_rolled_back(origin, checkpoint, report.size)
        root = report.roots.get(checkpoint.size)
        if root is None and any(a < checkpoint.size < b for a, b in report.tombstoned):
            continue  # inside a deleted range: no root to hold it against any more
        if root is None:
            raise IntegrityError(
                f"no root of size {checkpoint.size} could be computed for a checkpoint",
                location=where,
            )
        if root != checkpoint.root_hash:
            evidence = ""
            if stored_size < 0 and trusted is not None:
                # What the log presents now: its own signed checkpoint of that size if it
                # has one, else the root recomputed from its leaves.
                presented = dict(signed_notes).get(checkpoint.size) or (
                    f"(no checkpoint of size {checkpoint.size} stored; the log's leaves give "
                    f"root {base64.b64encode(root).decode()})\n"
                )
                evidence = f"; evidence kept in {trusted.record_fork(origin, presented)}"
            raise ForkError(
                f"chain {chain!r} at size {checkpoint.size} has another root than a signed "
                f"checkpoint of that size: the log was rewritten or forked{evidence}",
                location={**where, "size": checkpoint.size, "chain_size": report.size},
            )
    return newest
