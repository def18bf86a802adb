"""``AuditLog``: the safe, high-level recipe — create or open a log, append, read, verify.

The facade holds a log handle's parts together and hands out the sub-APIs: ``log.keys``
(``keys.Keys``), ``log.proofs`` (``proofs.Proofs``) and ``log.retention``
(``retention.Retention``). The work is done in the modules named there and in ``appending``,
``reading``, ``verify`` and ``repair``; docs/architecture.md follows one record, one verify and
one sweep through them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from auditlog.clock import Clock, SystemClock
from auditlog.crypto.keys import DEFAULT_CACHE_SECONDS
from auditlog.crypto.providers import KeyProvider
from auditlog.log._deprecated import DeprecatedMethods
from auditlog.log.appending import Appender
from auditlog.log.chains import Chains
from auditlog.log.config import GroupCommit, LogConfig
from auditlog.log.creation import build_log, move_into
from auditlog.log.events import EventLog
from auditlog.log.head import HeadStore
from auditlog.log.key_material import KeyMaterial
from auditlog.log.keys import Keys
from auditlog.log.manifest import MANIFEST_PATH, Manifest, ManifestRef, load_manifest
from auditlog.log.migration import MigrationReport, migrate_state, migration_event
from auditlog.log.opening import check_sealed, reconcile_head
from auditlog.log.proofs import Proofs
from auditlog.log.reading import log_stats, read_records
from auditlog.log.repair import repair_detail, repair_log
from auditlog.log.results import AppendResult, LogStats, Receipt, RepairReport, VerifyReport
from auditlog.log.retention import Retention
from auditlog.log.retention.journal import pending_segments
from auditlog.log.state import LogState, all_chains
from auditlog.log.verify import Progress, verify_log
from auditlog.proofs import TrustedState
from auditlog.records import LogEvent, LogEventType, Record
from auditlog.segment.recovery import RecoveryReport
from auditlog.storage.layout import EVENTS_CHAIN, LogLayout

__all__ = ["AuditLog"]


class AuditLog(DeprecatedMethods):
    """An audit log on a local directory: the safe, high-level recipe.

    Use ``AuditLog.create`` once, then ``AuditLog.open``; both return context managers. Records
    go to the chain named like their kind unless ``chain=`` says otherwise.
    """

    keys: Keys
    """The log's keys: ``status()``, ``rotate_root_key(...)``, ``change_passphrase(...)``."""
    proofs: Proofs
    """Checkpoints and proofs: ``sign_checkpoints()``, ``prove_inclusion(...)``, ..."""
    retention: Retention
    """Policies, holds, sweeps and redaction: ``set_policy(...)``, ``sweep(...)``, ..."""

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        *,
        provider: KeyProvider | None,
        passphrase: str | None,
        mode: Literal["write", "read"],
        chains: Sequence[str] | None,
        group_commit: GroupCommit | None,
        fsync: bool,
        clock: Clock | None,
        key_cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> None:
        """Use ``AuditLog.create`` or ``AuditLog.open``."""
        self.path = path
        self._clock = clock or SystemClock()
        self._closed = False
        layout = LogLayout(path)
        writable = mode == "write"
        self._keys = KeyMaterial(
            layout,
            manifest.origin,
            manifest.key_provider,
            manifest.checkpoint_key,
            provider,
            passphrase,
            cache_seconds=key_cache_seconds,
        )
        if writable:
            # Trust from keys: the verifier key is derived from the unwrapped signing key, and
            # the manifest must name it (a wrong passphrase fails here, not at the first append).
            self._keys.unlock()
        signer = self._keys.state_signer()
        signer.check(manifest, MANIFEST_PATH)
        heads = HeadStore(
            layout, self._keys.verifier_key, self._keys.signer() if writable else None
        )
        self._state = LogState(layout, heads)
        self._manifest = ManifestRef(layout, manifest, signer)
        self._chains = Chains(
            layout,
            manifest.origin,
            manifest.config,
            self._keys,
            self._keys.verifier_key,
            writable=writable,
            allowed=chains,
            fsync=fsync,
            clock=self._clock,
        )
        self._events = EventLog(self._chains, self._keys, self._state)
        self.proofs = Proofs(self._chains, self._keys, self._state, writable=writable)
        self.keys = Keys(
            self._chains,
            self._keys,
            self._manifest,
            self._events,
            self._state,
            self._clock.now,
            writable=writable,
        )
        self.retention = Retention(
            self._chains, self._keys, self._manifest, self._events, self._state, self._clock.now
        )
        self._wire_hooks()
        self._appender = Appender(self._chains, manifest.config, group_commit, clock=self._clock)
        if writable:
            try:
                # Journals first: a write-open refused for one writes nothing at all.
                self.retention.check_interrupted_sweeps()
                reconcile_head(
                    layout, self._keys, self._state, self._events, self._chains, self._clock.now
                )
                for chain in self._chains.selected():
                    self._chains.writer(chain)
            except BaseException:
                self._chains.close()
                raise
            self._appender.start()
        self._heads = heads
        self._read_checked: set[str] = set()

    def _wire_hooks(self) -> None:
        state, events, chains, now = self._state, self._events, self._chains, self._clock.now

        def sealed(chain: str, size: int, root: bytes) -> None:
            self.proofs.store_checkpoint(chain, size, root)
            state.bind_chain(chain)

        def created(chain: str) -> None:
            with chains.layout.log_lock():
                state.bind_chain(chain)
                events.record(LogEventType.CHAIN, now(), f"chain {chain} added", chain=chain)

        chains.on_seal = sealed
        chains.on_dictionary = lambda chain, _period: state.bind_chain(chain)
        chains.on_created = created
        # A sweep killed half-way is finished before anything else is written to the chain.
        chains.on_open = self.retention.finish_interrupted_sweep
        self._keys.on_keyring_store = lambda chain, _doc: state.bind_chain(chain)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        passphrase: str | None = None,
        key_provider: KeyProvider | None = None,
        config: LogConfig | None = None,
        group_commit: GroupCommit | None = None,
        fsync: bool = True,
        clock: Clock | None = None,
        scrypt_n: int | None = None,
    ) -> AuditLog:
        """Create a new, empty log at ``path`` (which must not exist or be empty).

        Without ``key_provider``, a random root key is made and stored wrapped by the
        passphrase (``passphrase=`` or ``AUDITLOG_PASSPHRASE``) in ``keys/root.key``.
        ``scrypt_n`` lowers the passphrase-stretching cost: for tests only. The log is built
        aside and moved into place complete: a failed create leaves nothing behind.
        """
        root = Path(path)
        aside, provider = build_log(
            root,
            passphrase=passphrase,
            key_provider=key_provider,
            config=config or LogConfig(),
            clock=clock,
            scrypt_n=scrypt_n,
        )
        try:
            with cls.open(aside, key_provider=provider, clock=clock, fsync=fsync) as building:
                building._events.record(
                    LogEventType.CREATED,
                    building._clock.now(),
                    f"log {building.log_id} created, origin {building.origin}",
                    chain=EVENTS_CHAIN,
                )
        except BaseException:
            shutil.rmtree(aside, ignore_errors=True)
            raise
        provider = move_into(aside, root, provider)
        return cls.open(
            root,
            passphrase=passphrase,
            key_provider=provider,
            group_commit=group_commit,
            fsync=fsync,
            clock=clock,
        )

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        passphrase: str | None = None,
        key_provider: KeyProvider | None = None,
        mode: Literal["write", "read"] = "write",
        chains: Sequence[str] | None = None,
        group_commit: GroupCommit | None = None,
        fsync: bool = True,
        clock: Clock | None = None,
        key_cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> AuditLog:
        """Open an existing log.

        ``mode="write"`` takes each selected chain's lock (``chains=None``: every chain),
        cuts torn tails left by a crash (see ``recovery``) and refuses damaged tails with
        ``IntegrityError``. ``mode="read"`` takes no lock and changes nothing; keys are then
        unlocked only when a keyed operation needs them, so ``verify(keyless=True)`` works
        without a passphrase. ``key_cache_seconds`` bounds how long an unwrapped data key
        stays in this handle's memory (default 300 s): a period shredded by another handle
        stays readable here until then.
        """
        root = Path(path)
        return cls(
            root,
            load_manifest(LogLayout(root)),
            provider=key_provider,
            passphrase=passphrase,
            mode=mode,
            chains=chains,
            group_commit=group_commit,
            fsync=fsync,
            clock=clock,
            key_cache_seconds=key_cache_seconds,
        )

    @classmethod
    def repair(
        cls,
        path: str | Path,
        *,
        passphrase: str | None = None,
        key_provider: KeyProvider | None = None,
        chain: str | None = None,
        clock: Clock | None = None,
    ) -> list[RepairReport]:
        """Cut damaged blocks off the open tail of chains so they can be written again.

        Only the last segment of a chain is ever cut, from the first damaged entry to its
        end; the cut bytes are kept in ``chains/<chain>/quarantine/`` as evidence. Damage in a
        sealed segment is not repairable here: restore that segment from a backup.
        """
        root = Path(path)
        reports = repair_log(root, chain, (clock or SystemClock()).now())
        if reports:
            # Opening for writing now succeeds (it binds the quarantined bytes into the head);
            # it also proves the repaired chain verifies against the log's own key.
            with cls.open(
                root, passphrase=passphrase, key_provider=key_provider, clock=clock
            ) as log:
                for report in reports:
                    log._events.record(
                        LogEventType.REPAIR,
                        log._clock.now(),
                        repair_detail(report),
                        chain=report.chain,
                    )
        return reports

    @classmethod
    def migrate(
        cls,
        path: str | Path,
        *,
        passphrase: str | None = None,
        key_provider: KeyProvider | None = None,
        clock: Clock | None = None,
        progress: Progress | None = None,
    ) -> MigrationReport:
        """Migrate a log of format v1 (auditlog 0.1) to format v2, once, with its keys.

        Every record is verified with keys first; then the keyrings, holds and manifest are
        signed, the log's keys rewrapped for v2, the first head signed and the events chain
        started with a ``migrated`` event. No segment is rewritten. Killed half-way, running it
        again finishes it. ``ConfigurationError`` if the log is of format v2 already.
        ``progress`` is called with the bytes of segments verified as they are.
        """
        root = Path(path)
        report, provider = migrate_state(
            root, provider=key_provider, passphrase=passphrase, progress=progress
        )
        with cls.open(root, key_provider=provider, clock=clock) as log:
            now = log._clock.now()
            log._events.record(
                LogEventType.MIGRATED, now, migration_event(report, now), chain=EVENTS_CHAIN
            )
        return report

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what the log is ------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """The log's name in checkpoints: chain ``c`` has origin ``<origin>/c``."""
        return self._manifest.current.origin

    @property
    def config(self) -> LogConfig:
        return self._manifest.current.config

    @property
    def log_id(self) -> str:
        return self._manifest.current.log_id

    @property
    def verifier_key(self) -> str:
        """The log's public checkpoint key (C2SP note verifier key). Give it to outsiders."""
        return self._manifest.current.checkpoint_key

    @property
    def recovery(self) -> list[RecoveryReport]:
        """What opening for writing cut from torn tails a crash left (empty if nothing)."""
        return self._chains.recovery

    def chains(self) -> list[str]:
        """The chains that exist on disk, sorted."""
        return self._chains.names()

    def chain_origin(self, chain: str) -> str:
        """The origin of a chain's tree and checkpoints: ``<log origin>/<chain>``."""
        return self._chains.origin_of(chain)

    # -- writing --------------------------------------------------------------------------

    def append(self, record: Record, *, chain: str | None = None) -> Receipt:
        """Buffer one record and return its receipt (not durable until a flush)."""
        return self._appender.append(record, chain)

    def append_many(
        self, records: Iterable[Record], *, chain: str | None = None, flush: bool = True
    ) -> AppendResult:
        """Append records in order (a block at a time); durable on return when ``flush``."""
        return self._appender.append_many(records, chain, flush=flush)

    def flush(self) -> None:
        """Write and sync every buffered record of every chain."""
        self._appender.flush()

    def close(self) -> None:
        """Flush every chain, stop background flushing and release the chain locks."""
        if self._closed:
            return
        self._closed = True
        try:
            self._appender.stop()
        finally:
            self._chains.close()

    # -- reading and verifying ------------------------------------------------------------

    def read(self, chain: str, start: int = 0, end: int | None = None) -> Iterator[Record]:
        """Decrypt and yield the records of ``chain`` with indexes in [start, end)."""
        for _, record in self.read_indexed(chain, start, end):
            yield record

    def read_indexed(
        self, chain: str, start: int = 0, end: int | None = None
    ) -> Iterator[tuple[int, Record]]:
        """Like ``read``, with each record's chain index.

        A reader's first read of a chain holds its sealed segments against the signed head
        (a writer did so when it opened): one shortened or put back is refused, never read.
        """
        if chain not in self._read_checked and not self._chains.writable:
            check_sealed(self._chains.layout, self._heads, self._chains, chain)
            self._read_checked.add(chain)
        return read_records(self._chains, self._keys, chain, start, end)

    def verify(
        self,
        *,
        keyless: bool = False,
        progress: Progress | None = None,
        trusted: TrustedState | None = None,
        verifier_key: str | None = None,
        executor: Executor | None = None,
        workers: int | None = None,
    ) -> VerifyReport:
        """Check every chain; raise ``IntegrityError`` at the first problem, naming its place.
        Keyless: every byte against the hash chain, leaves against the headers' Merkle roots,
        seals and linkage, no key read; keyed (default) also decrypts every frame and recomputes
        every leaf. Both hold every stored checkpoint, and ``trusted``'s (advanced on success),
        against the recomputed tree (``RollbackError``, ``ForkError``). ``verifier_key`` pins the
        log's key. Only flushed records count. Chains run on ``executor``/``workers`` processes.
        """
        chains = self._chains
        return verify_log(
            chains,
            self._keys,
            lambda chain, key: pending_segments(chains, chain, key),
            keyless=keyless,
            progress=progress,
            trusted=trusted,
            verifier_key=verifier_key or self.verifier_key,
            executor=executor,
            workers=workers,
        )

    def events(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, LogEvent]]:
        """The log's own events (policies, holds, sweeps, rotations, redactions, repairs, ...)
        with indexes in [start, end) of the events chain, decrypted, with their indexes."""
        return self._events.read(start, end)

    def total_bytes(self) -> int:
        """Bytes of every segment file (what ``verify`` reads), for progress bars."""
        return sum(self._chains.reader(c).total_bytes() for c in all_chains(self._chains.layout))

    def stats(self) -> LogStats:
        """Record, segment and byte counts per chain (keyless; reads the last segment only)."""
        return log_stats(self._chains)
