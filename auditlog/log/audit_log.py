"""``AuditLog``: the safe, high-level recipe — create or open a log, append, read, verify.

The facade holds a log handle's parts together and hands out the sub-APIs: ``log.keys``
(``keys.Keys``), ``log.proofs`` (``proofs.Proofs``) and ``log.retention``
(``retention.Retention``). The work is done in the modules named there and in ``appending``,
``reading``, ``verify`` and ``repair``; docs/architecture.md follows one record, one verify and
one sweep through them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from auditlog._fs import make_private_dir
from auditlog.clock import Clock, SystemClock
from auditlog.crypto.keys import DEFAULT_CACHE_SECONDS
from auditlog.crypto.providers import KeyProvider, PassphraseKeyProvider
from auditlog.errors import ConfigurationError
from auditlog.log._deprecated import DeprecatedMethods
from auditlog.log.appending import Appender
from auditlog.log.chains import Chains
from auditlog.log.config import GroupCommit, LogConfig
from auditlog.log.events import record_log_event
from auditlog.log.key_material import KeyMaterial
from auditlog.log.keys import Keys
from auditlog.log.manifest import Manifest, ManifestRef, load_manifest, store_new_manifest
from auditlog.log.proofs import Proofs
from auditlog.log.reading import log_stats, read_records
from auditlog.log.repair import repair_chain
from auditlog.log.results import AppendResult, LogStats, Receipt, RepairReport, VerifyReport
from auditlog.log.retention import Retention
from auditlog.log.retention.journal import pending_segments
from auditlog.log.verify import Progress, verify_log
from auditlog.proofs import TrustedState
from auditlog.records import LogEventType, Record
from auditlog.segment.recovery import RecoveryReport
from auditlog.storage.layout import ROOT_KEY_FILE, LogLayout

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
        self._manifest = ManifestRef(layout, manifest)
        writable = mode == "write"
        self._keys = KeyMaterial(
            layout,
            manifest.origin,
            manifest.key_provider,
            provider,
            passphrase,
            cache_seconds=key_cache_seconds,
        )
        self._chains = Chains(
            layout,
            manifest.origin,
            manifest.config,
            self._keys,
            manifest.checkpoint_key,
            writable=writable,
            allowed=chains,
            fsync=fsync,
            clock=self._clock,
        )
        self.proofs = Proofs(self._chains, self._keys, writable=writable)
        self.keys = Keys(
            self._chains, self._keys, self._manifest, self._clock.now, writable=writable
        )
        self.retention = Retention(self._chains, self._keys, self._manifest, self._clock.now)
        self._chains.on_seal = self.proofs.store_checkpoint
        # A sweep killed half-way is finished before anything else is written to the chain.
        self._chains.on_open = self.retention.finish_interrupted_sweep
        self._appender = Appender(self._chains, manifest.config, group_commit)
        if writable:
            self._keys.provider()  # fail now, not at the first append, on a wrong passphrase
            try:
                for chain in self._chains.selected():
                    self._chains.writer(chain)
            except BaseException:
                self._chains.close()
                raise
            self._appender.start()

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
        ``scrypt_n`` lowers the passphrase-stretching cost: for tests only.
        """
        root = Path(path)
        if root.exists() and any(root.iterdir()):
            raise ConfigurationError(f"{root} exists and is not empty; choose a new directory")
        config = config or LogConfig()
        log_id = secrets.token_hex(8)
        origin = config.origin or f"auditlog.local/{log_id}"
        layout = LogLayout(root)
        make_private_dir(layout.chains)
        make_private_dir(layout.keys)
        provider_doc: dict[str, str]
        if key_provider is None:
            kwargs = {} if scrypt_n is None else {"scrypt_n": scrypt_n}
            key_provider = PassphraseKeyProvider.create(layout.root_key, passphrase, **kwargs)
            provider_doc = {"type": "passphrase", "file": ROOT_KEY_FILE}
        else:
            provider_doc = {"type": "external", "key_id": key_provider.key_id}
        verifier_key = KeyMaterial.create_log_keys(layout, key_provider, origin)
        manifest = Manifest(
            log_id=log_id,
            origin=origin,
            created_at=(clock or SystemClock()).now().astimezone(UTC).isoformat(timespec="seconds"),
            key_provider=provider_doc,
            config=config.model_copy(update={"origin": origin}),
            checkpoint_key=verifier_key,
        )
        store_new_manifest(layout, manifest)
        return cls(
            root,
            manifest,
            provider=key_provider,
            passphrase=passphrase,
            mode="write",
            chains=None,
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
        layout = LogLayout(root)
        manifest = load_manifest(layout)
        now = (clock or SystemClock()).now()
        reports = []
        for name in [chain] if chain else layout.chain_names():
            origin = f"{manifest.origin}/{name}"
            report = repair_chain(layout.chain(name), name, origin, now, manifest.checkpoint_key)
            if report is not None:
                reports.append(report)
        if reports:
            # Opening for writing now succeeds; it also proves the repaired chain verifies.
            with cls.open(
                root, passphrase=passphrase, key_provider=key_provider, clock=clock
            ) as log:
                for report in reports:
                    record_log_event(
                        log._chains,
                        report.chain,
                        LogEventType.REPAIR,
                        log._clock.now(),
                        f"cut {report.bytes_cut} bytes from segment {report.segment} at offset "
                        f"{report.offset}; records from index {report.first_lost_index} on were "
                        f"lost; the bytes are kept in {report.quarantine.name}",
                    )
        return reports

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
        """Like ``read``, with each record's chain index."""
        return read_records(self._chains, self._keys, chain, start, end)

    def verify(
        self,
        *,
        keyless: bool = False,
        progress: Progress | None = None,
        trusted: TrustedState | None = None,
        verifier_key: str | None = None,
    ) -> VerifyReport:
        """Check every chain; raise ``IntegrityError`` at the first problem, naming its place.

        Keyless: every byte against the block hash chain, leaves against the Merkle roots in
        the headers, seals and segment linkage — no key is needed or read. Keyed (default):
        also decrypt every frame and recompute every leaf from the plaintext record. Both check
        every stored checkpoint against the recomputed tree (``RollbackError`` if the chain is
        shorter than one, ``ForkError`` if a root differs), and, with ``trusted``, the
        checkpoints a client trusted before; on success ``trusted`` is advanced to the newest
        stored checkpoint. ``verifier_key`` pins the log's public key instead of reading it from
        the manifest (an outsider should pin it). Only records flushed before the call count.
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
        )

    def total_bytes(self) -> int:
        """Bytes of every segment file (what ``verify`` reads), for progress bars."""
        return sum(self._chains.reader(c).total_bytes() for c in self._chains.names())

    def stats(self) -> LogStats:
        """Record, segment and byte counts per chain (keyless; reads the last segment only)."""
        return log_stats(self._chains)
