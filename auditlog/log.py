"""Layer 6: ``AuditLog`` — chains, append, flush, verify, read, stats, repair.

A log is a directory::

    manifest.json                 format version, origin, configuration (no user data)
    keys/root.key                 the root key, wrapped by the passphrase (default provider)
    chains/<chain>/LOCK           held by the chain's single writer
    chains/<chain>/keyring        the chain's data keys, wrapped by the root key
    chains/<chain>/dicts/         zstd dictionaries, encrypted under their period's key
    chains/<chain>/segments/      append-only segment files (docs/format.md)
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auditlog import merkle
from auditlog._fs import atomic_replace, create_exclusive, make_private_dir
from auditlog._sweep import (
    applicable_chains,
    apply_chain,
    finish_journal,
    pending_segments,
    plan_sweep,
)
from auditlog.checkpoints import (
    CheckpointStore,
    TrustedState,
    create_signing_key,
    load_signing_key,
    open_checkpoint,
    require_not_rolled_back,
    rewrap_signing_key,
    sign_checkpoint,
)
from auditlog.clock import Clock, SystemClock
from auditlog.codec import decode_record
from auditlog.crypto.keys import ChainKeyring
from auditlog.crypto.providers import CombinedKeyProvider, KeyProvider, PassphraseKeyProvider
from auditlog.errors import (
    AuditLogError,
    ConfigurationError,
    ForkError,
    IntegrityError,
    KeyShreddedError,
    NoteError,
    RetentionError,
    RollbackError,
)
from auditlog.note import Checkpoint
from auditlog.proofs import (
    ConsistencyProof,
    InclusionProof,
    verify_consistency_proof,
    verify_inclusion_proof,
)
from auditlog.records import LOG_SUBJECT, LogEvent, LogEventType, Record
from auditlog.retention import (
    HoldStore,
    LegalHold,
    RetentionPolicy,
    SweepPlan,
    create_hold_key,
    load_hold_key,
    log_lock,
    new_hold_id,
    rewrap_hold_key,
    subject_token,
)
from auditlog.segment.format import ENTRY_BLOCK
from auditlog.segment.reader import ChainReader, ChainReport
from auditlog.segment.redaction import RedactionStore, rewrite_segment
from auditlog.segment.scan import entry_heads, list_segments, segment_path
from auditlog.segment.tiles import TileStore
from auditlog.segment.tombstone import Tombstone, TombstoneStore
from auditlog.segment.writer import (
    ChainSettings,
    ChainWriter,
    Durability,
    RecoveryReport,
    acquire_chain_lock,
    datetime_to_micros,
)

__all__ = [
    "AppendResult",
    "AuditLog",
    "GroupCommit",
    "LogConfig",
    "LogStats",
    "Receipt",
    "RepairReport",
    "VerifyReport",
]

_MANIFEST: Final = "manifest.json"
_MANIFEST_FORMAT: Final = "auditlog"
_MANIFEST_VERSION: Final = 1
_ROOT_KEY_FILE: Final = "keys/root.key"
_CHECKPOINT_KEY_FILE: Final = "keys/checkpoint.key"
_HOLD_KEY_FILE: Final = "keys/hold.key"
_CHAIN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_ORIGIN = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces: a C2SP origin line

Progress = Callable[[int], None]


class LogConfig(BaseModel):
    """How a log shapes its chains. Stored in the manifest when the log is created."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    origin: str | None = Field(
        default=None,
        description="The log's name in checkpoints, e.g. 'example.com/auditlog'. No user data.",
    )
    period_seconds: int = Field(default=86_400, ge=60, le=366 * 86_400)
    max_segment_bytes: int = Field(default=64 << 20, ge=64 << 10, le=1 << 30)
    max_segment_records: int = Field(default=1_000_000, ge=1, le=1 << 32)
    block_max_records: int = Field(default=4096, ge=1, le=1 << 20)
    late_bound_seconds: int = Field(default=86_400, ge=0)
    dictionary_samples: int = Field(default=1000, ge=8, le=100_000)
    dictionary_bytes: int = Field(default=16 << 10, ge=1024, le=1 << 20)

    @field_validator("origin")
    @classmethod
    def _check_origin(cls, value: str | None) -> str | None:
        if value is not None and not _ORIGIN.fullmatch(value):
            raise ValueError("an origin is 1-200 printable ASCII characters without spaces")
        return value

    def chain_settings(self) -> ChainSettings:
        return ChainSettings(
            period_seconds=self.period_seconds,
            max_segment_bytes=self.max_segment_bytes,
            max_segment_records=self.max_segment_records,
            block_max_records=self.block_max_records,
            late_bound_seconds=self.late_bound_seconds,
            dictionary_samples=self.dictionary_samples,
            dictionary_bytes=self.dictionary_bytes,
        )


@dataclass(frozen=True, slots=True)
class GroupCommit:
    """Background flushing: a block is written once ``max_records`` wait or ``max_delay`` passed."""

    max_records: int = 4096
    max_delay: float = 0.005


class Receipt:
    """Proof of an append: where the record went, its leaf, and whether it is on disk yet."""

    __slots__ = ("_durability", "chain", "index", "leaf")

    def __init__(self, chain: str, index: int, leaf: bytes, durability: Durability) -> None:
        self.chain = chain
        self.index = index
        self.leaf = leaf
        self._durability = durability

    @property
    def durable(self) -> bool:
        """True once the block holding the record was written and synced."""
        return self._durability.size > self.index

    def wait_durable(self, timeout: float | None = None) -> bool:
        """Block until the record is durable (a flush happened); False on timeout."""
        return self._durability.wait(self.index, timeout)

    def __repr__(self) -> str:
        return f"Receipt(chain={self.chain!r}, index={self.index}, durable={self.durable})"


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What ``append_many`` wrote: per chain, the index ranges its records received."""

    count: int
    ranges: dict[str, list[range]]
    durable: bool


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of a successful ``verify``: every chain's size, root and shape."""

    keyless: bool
    chains: dict[str, ChainReport]

    @property
    def records(self) -> int:
        return sum(c.records for c in self.chains.values())

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.chains.values())

    @property
    def blocks(self) -> int:
        return sum(c.blocks for c in self.chains.values())

    @property
    def segments(self) -> int:
        return sum(c.segments for c in self.chains.values())


@dataclass(frozen=True, slots=True)
class ChainStats:
    chain: str
    records: int
    segments: int
    sealed_segments: int
    bytes: int
    periods: int


@dataclass(frozen=True, slots=True)
class LogStats:
    """Sizes of the log, per chain; computed from segment files without keys."""

    origin: str
    chains: dict[str, ChainStats]

    @property
    def records(self) -> int:
        return sum(c.records for c in self.chains.values())

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.chains.values())


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """The state of a log's keys (no key material)."""

    root_key_id: str
    provider: str
    rotation_pending: bool
    chains: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]  # chain -> (live, shredded)


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What ``repair`` cut from a chain's open tail, and where the cut bytes were kept."""

    chain: str
    segment: int
    offset: int
    bytes_cut: int
    first_lost_index: int
    quarantine: Path


@dataclass
class _Manifest:
    log_id: str
    origin: str
    created_at: str
    key_provider: dict[str, str]
    config: LogConfig
    checkpoint_key: str
    retention: dict[str, RetentionPolicy] = field(default_factory=dict)

    def dump(self) -> bytes:
        doc = {
            "format": _MANIFEST_FORMAT,
            "version": _MANIFEST_VERSION,
            "log_id": self.log_id,
            "origin": self.origin,
            "created_at": self.created_at,
            "key_provider": self.key_provider,
            "config": self.config.model_dump(),
            "checkpoint_key": self.checkpoint_key,
            "retention": {c: p.model_dump(mode="json") for c, p in sorted(self.retention.items())},
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def load(cls, path: Path) -> _Manifest:
        try:
            doc = json.loads((path / _MANIFEST).read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(
                f"{path} is not an auditlog log (no {_MANIFEST}); create one with "
                "`auditlog init` or AuditLog.create"
            ) from None
        except (ValueError, UnicodeDecodeError):
            raise IntegrityError(f"{path / _MANIFEST} is not valid JSON") from None
        if doc.get("format") != _MANIFEST_FORMAT:
            raise ConfigurationError(f"{path / _MANIFEST} is not an auditlog manifest")
        if doc.get("version") != _MANIFEST_VERSION:
            raise ConfigurationError(
                f"{path} is log format version {doc.get('version')!r}; this auditlog reads "
                f"version {_MANIFEST_VERSION}: upgrade auditlog"
            )
        try:
            config = LogConfig.model_validate(doc["config"])
            retention = {
                c: RetentionPolicy.model_validate(p) for c, p in doc.get("retention", {}).items()
            }
        except ValidationError as exc:
            raise ConfigurationError(
                f"{path / _MANIFEST} has an invalid config or retention policy: {exc}"
            ) from None
        return cls(
            log_id=doc["log_id"],
            origin=doc["origin"],
            created_at=doc["created_at"],
            key_provider=doc["key_provider"],
            config=config,
            checkpoint_key=_required(doc, "checkpoint_key", path),
            retention=retention,
        )


def _check_chain_id(chain: str) -> str:
    if not _CHAIN_ID.fullmatch(chain):
        raise ConfigurationError(
            f"invalid chain id {chain!r}: use 1-63 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit (chain ids are names of streams, never user data)"
        )
    return chain


class AuditLog:
    """An audit log on a local directory: the safe, high-level recipe.

    Use ``AuditLog.create`` once, then ``AuditLog.open``; both return context managers. Records
    go to the chain named like their kind unless ``chain=`` says otherwise.
    """

    def __init__(
        self,
        path: Path,
        manifest: _Manifest,
        *,
        provider: KeyProvider | None,
        passphrase: str | None,
        mode: Literal["write", "read"],
        chains: Sequence[str] | None,
        group_commit: GroupCommit | None,
        fsync: bool,
        clock: Clock | None,
    ) -> None:
        self.path = path
        self._manifest = manifest
        self._provider = provider
        self._passphrase = passphrase
        self._mode = mode
        self._allowed = None if chains is None else {_check_chain_id(c) for c in chains}
        self._fsync = fsync
        self._clock = clock or SystemClock()
        self._writers: dict[str, ChainWriter] = {}
        self._keyrings: dict[str, ChainKeyring] = {}
        self._lock = threading.RLock()
        self._closed = False
        self.recovery: list[RecoveryReport] = []
        self._signer_key: str | None = None
        self._tombstone_cache: dict[
            tuple[str, str], tuple[tuple[str, ...], dict[int, Tombstone]]
        ] = {}
        self._group_commit = group_commit
        self._flusher: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flusher_error: BaseException | None = None
        if mode == "write":
            self._key_provider()  # fail now, not at the first append, on a wrong passphrase
            try:
                for chain in self.chains():
                    if self._allowed is None or chain in self._allowed:
                        self._writer(chain)
            except BaseException:
                self._release_writers()
                raise
            if group_commit is not None:
                self._flusher = threading.Thread(
                    target=self._flush_loop, name="auditlog-group-commit", daemon=True
                )
                self._flusher.start()

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
        make_private_dir(root / "chains")
        make_private_dir(root / "keys")
        provider_doc: dict[str, str]
        if key_provider is None:
            kwargs = {} if scrypt_n is None else {"scrypt_n": scrypt_n}
            key_provider = PassphraseKeyProvider.create(root / _ROOT_KEY_FILE, passphrase, **kwargs)
            provider_doc = {"type": "passphrase", "file": _ROOT_KEY_FILE}
        else:
            provider_doc = {"type": "external", "key_id": key_provider.key_id}
        verifier_key = create_signing_key(root / _CHECKPOINT_KEY_FILE, key_provider, origin)
        create_hold_key(root / _HOLD_KEY_FILE, key_provider, origin)
        manifest = _Manifest(
            log_id=log_id,
            origin=origin,
            created_at=(clock or SystemClock()).now().astimezone(UTC).isoformat(timespec="seconds"),
            key_provider=provider_doc,
            config=config.model_copy(update={"origin": origin}),
            checkpoint_key=verifier_key,
        )
        create_exclusive(root / _MANIFEST, manifest.dump())
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
    ) -> AuditLog:
        """Open an existing log.

        ``mode="write"`` takes each selected chain's lock (``chains=None``: every chain),
        cuts torn tails left by a crash (see ``recovery``) and refuses damaged tails with
        ``IntegrityError``. ``mode="read"`` takes no lock and changes nothing; keys are then
        unlocked only when a keyed operation needs them, so ``verify(keyless=True)`` works
        without a passphrase.
        """
        root = Path(path)
        manifest = _Manifest.load(root)
        return cls(
            root,
            manifest,
            provider=key_provider,
            passphrase=passphrase,
            mode=mode,
            chains=chains,
            group_commit=group_commit,
            fsync=fsync,
            clock=clock,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- properties -----------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return self._manifest.origin

    @property
    def config(self) -> LogConfig:
        return self._manifest.config

    @property
    def log_id(self) -> str:
        return self._manifest.log_id

    def chains(self) -> list[str]:
        """The chains that exist on disk, sorted."""
        return _chain_names(self.path)

    def chain_origin(self, chain: str) -> str:
        """The origin of a chain's tree and checkpoints: ``<log origin>/<chain>``."""
        return f"{self.origin}/{chain}"

    # -- keys -----------------------------------------------------------------------------

    def _key_provider(self) -> KeyProvider:
        if self._provider is None:
            kind = self._manifest.key_provider.get("type")
            if kind != "passphrase":
                raise ConfigurationError(
                    "this log's root key lives in an external key provider; pass "
                    "key_provider=... to AuditLog.open"
                )
            self._provider = PassphraseKeyProvider.open(
                self.path / self._manifest.key_provider["file"], self._passphrase
            )
        return self._provider

    def _keyring(self, chain: str) -> ChainKeyring:
        with self._lock:
            keyring = self._keyrings.get(chain)
            if keyring is None:
                keyring = ChainKeyring(
                    self.path / "chains" / chain / "keyring",
                    self._key_provider(),
                    self.chain_origin(chain),
                )
                self._keyrings[chain] = keyring
            return keyring

    # -- writing --------------------------------------------------------------------------

    def _writer(self, chain: str) -> ChainWriter:
        writer = self._writers.get(chain)
        if writer is not None:
            return writer
        with self._lock:
            self._check_open()
            writer = self._writers.get(chain)
            if writer is not None:
                return writer
            if self._mode != "write":
                raise ConfigurationError("this log was opened with mode='read'; open it to write")
            _check_chain_id(chain)
            if self._allowed is not None and chain not in self._allowed:
                raise ConfigurationError(
                    f"chain {chain!r} is not among the chains this log was opened for "
                    f"({sorted(self._allowed)}); add it to chains=..."
                )
            directory = self.path / "chains" / chain
            make_private_dir(directory)
            writer = ChainWriter(
                directory,
                chain,
                self.chain_origin(chain),
                self._keyring(chain),
                self.config.chain_settings(),
                fsync=self._fsync,
                clock=self._clock,
                on_seal=functools.partial(self._checkpoint_at_seal, chain),
                verifier_key=self.verifier_key,
            )
            if writer.recovery is not None:
                self.recovery.append(writer.recovery)
            self._writers[chain] = writer
            sizes = CheckpointStore(directory / "checkpoints").sizes()
            if sizes and sizes[-1] > writer.size:
                self._writers.pop(chain).close()
                raise RollbackError(
                    f"chain {chain!r} has {writer.size} records but its own signed checkpoint "
                    f"says it had {sizes[-1]}: records were cut off (sizes {writer.size} < "
                    f"{sizes[-1]}); restore the missing segments from a backup",
                    location={"chain": chain, "size": writer.size, "checkpoint": sizes[-1]},
                )
        # A sweep killed half-way is finished before anything else is written to the chain.
        finish_journal(self, chain)
        return writer

    def append(self, record: Record, *, chain: str | None = None) -> Receipt:
        """Buffer one record and return its receipt (not durable until a flush)."""
        writer = self._writer(chain or record.kind)
        index, leaves = writer.append_batch([record])
        receipt = Receipt(writer.chain, index, leaves[0], writer.durability)
        self._after_append(writer)
        return receipt

    def append_many(
        self, records: Iterable[Record], *, chain: str | None = None, flush: bool = True
    ) -> AppendResult:
        """Append records in order (a block at a time); durable on return when ``flush``."""
        batch = self.config.block_max_records
        ranges: dict[str, list[range]] = {}
        count = 0
        buffered: dict[str, list[Record]] = {}
        for record in records:
            name = chain or record.kind
            group = buffered.setdefault(name, [])
            group.append(record)
            count += 1
            if len(group) >= batch:
                self._append_group(name, group, ranges)
                group.clear()
        for name, group in buffered.items():
            if group:
                self._append_group(name, group, ranges)
        if flush:
            for name in ranges:
                self._writer(name).flush()
        return AppendResult(count=count, ranges=ranges, durable=flush)

    def _append_group(
        self, chain: str, group: list[Record], ranges: dict[str, list[range]]
    ) -> None:
        writer = self._writer(chain)
        first, _ = writer.append_batch(group)
        chain_ranges = ranges.setdefault(chain, [])
        if chain_ranges and chain_ranges[-1].stop == first:
            chain_ranges[-1] = range(chain_ranges[-1].start, first + len(group))
        else:
            chain_ranges.append(range(first, first + len(group)))
        self._after_append(writer)

    def _after_append(self, writer: ChainWriter) -> None:
        if self._group_commit is None:
            if writer.pending >= self.config.block_max_records:
                writer.flush()
            return
        if writer.pending >= self._group_commit.max_records:
            writer.flush()
        else:
            self._wake.set()

    def flush(self) -> None:
        """Write and sync every buffered record of every chain."""
        self._raise_flusher_error()
        for writer in list(self._writers.values()):
            writer.flush()

    def _flush_loop(self) -> None:
        # Sleeps until an append leaves records waiting, gives later appends ``max_delay`` to
        # join them, then writes one block per chain: the group commit.
        assert self._group_commit is not None
        delay = self._group_commit.max_delay
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._stop.wait(delay)
            self._wake.clear()
            try:
                for writer in list(self._writers.values()):
                    if writer.pending:
                        writer.flush()
            except BaseException as exc:  # noqa: BLE001 - surfaced on the next flush/close
                self._flusher_error = exc
                return

    def _raise_flusher_error(self) -> None:
        if self._flusher_error is not None:
            raise AuditLogError(
                f"background group commit failed ({self._flusher_error!r}); records appended "
                "since the last durable receipt may not be on disk: close and reopen the log"
            ) from self._flusher_error

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError("this log is closed; open it again")

    def close(self) -> None:
        """Flush every chain, stop background flushing and release the chain locks."""
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            self._stop.set()
            self._wake.set()
            self._flusher.join()
        try:
            self._raise_flusher_error()
        finally:
            self._release_writers()

    def _release_writers(self) -> None:
        errors: list[BaseException] = []
        for writer in self._writers.values():
            try:
                writer.close()
            except BaseException as exc:  # noqa: BLE001 - close the others, then re-raise
                errors.append(exc)
        self._writers.clear()
        if errors:
            raise errors[0]

    # -- reading and verifying ------------------------------------------------------------

    def _reader(self, chain: str) -> ChainReader:
        _check_chain_id(chain)
        directory = self.path / "chains" / chain
        if not directory.is_dir():
            raise ConfigurationError(f"no chain {chain!r} in this log; chains: {self.chains()}")
        return ChainReader(directory, chain, self.chain_origin(chain), self.config.period_seconds)

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
        key = verifier_key or self.verifier_key
        reports = {}
        for chain in self.chains():
            origin = self.chain_origin(chain)
            keyring = None if keyless else self._keyring(chain)
            # Checkpoints are listed before the segments are read: a writer stores one only
            # after its data is durable, so each listed must be covered by what is read next.
            store = CheckpointStore(self.path / "chains" / chain / "checkpoints")
            signed_notes = [(size, store.get(size)) for size in store.sizes()]
            wanted = {size for size, _ in signed_notes}
            known = trusted.trusted(origin, key) if trusted is not None else None
            if known is not None:
                wanted.add(known.size)
            report = self._reader(chain).verify(
                keyring,
                progress,
                self._tombstones(chain, key),
                self._redactions(chain, key).indexes(),
                wanted,
                pending_segments(self, chain),
            )
            latest = self._check_checkpoints(chain, report, key, trusted, signed_notes)
            if trusted is not None and latest is not None:
                signed, newest = latest
                if known is None or newest.size >= known.size:
                    trusted.update(origin, signed)
            reports[chain] = report
        if trusted is not None:
            for origin in trusted.checkpoints:
                chain = origin.removeprefix(self.origin + "/")
                if origin.startswith(self.origin + "/") and chain not in reports:
                    raise RollbackError(
                        f"chain {chain!r} was trusted before but is gone from the log",
                        location={"origin": origin},
                    )
        return VerifyReport(keyless=keyless, chains=reports)

    def _check_checkpoints(
        self,
        chain: str,
        report: ChainReport,
        key: str,
        trusted: TrustedState | None,
        signed_notes: list[tuple[int, str]],
    ) -> tuple[str, Checkpoint] | None:
        """Hold the chain's recomputed tree against every checkpoint.

        Returns the newest stored checkpoint, as signed and as opened, or None if none is stored.
        """
        origin = self.chain_origin(chain)
        newest: tuple[str, Checkpoint] | None = None
        signed_notes = list(signed_notes)
        if trusted is not None and origin in trusted.checkpoints:
            signed_notes.append((-1, trusted.checkpoints[origin]))
        for stored_size, signed in signed_notes:
            where: dict[str, object] = {"chain": chain, "checkpoint": stored_size}
            try:
                checkpoint = open_checkpoint(signed, key, origin)
            except NoteError as exc:
                raise IntegrityError(
                    f"a checkpoint does not verify: {exc}", location=where
                ) from None
            if stored_size >= 0:
                if checkpoint.size != stored_size:
                    raise IntegrityError(
                        "a checkpoint file names another tree size", location=where
                    )
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

    # -- checkpoints and proofs -----------------------------------------------------------

    @property
    def verifier_key(self) -> str:
        """The log's public checkpoint key (C2SP note verifier key). Give it to outsiders."""
        return self._manifest.checkpoint_key

    def _signer(self) -> str:
        with self._lock:
            if self._signer_key is None:
                self._signer_key = load_signing_key(
                    self.path / _CHECKPOINT_KEY_FILE, self._key_provider(), self.origin
                )
            return self._signer_key

    def _store_checkpoint(self, chain: str, size: int, root: bytes) -> str:
        origin = self.chain_origin(chain)
        signed = sign_checkpoint(self._signer(), origin, size, root)
        CheckpointStore(self.path / "chains" / chain / "checkpoints").save(signed, size, root)
        return signed

    def _checkpoint_at_seal(self, chain: str, size: int, root: bytes) -> None:
        self._store_checkpoint(chain, size, root)

    def checkpoint(self, chain: str | None = None) -> dict[str, str]:
        """Flush, then sign and store a checkpoint of every chain (or one); returns the notes."""
        self._check_open()
        if self._mode != "write":
            raise ConfigurationError("checkpoints are signed by the writer: open with mode='write'")
        names = [chain] if chain is not None else sorted(self._writers)
        notes = {}
        for name in names:
            size, root = self._writer(name).head()
            notes[name] = self._store_checkpoint(name, size, root)
        return notes

    def checkpoints(self, chain: str) -> list[str]:
        """The chain's stored signed checkpoints, oldest first."""
        store = CheckpointStore(self._reader(chain).directory / "checkpoints")
        return [store.get(size) for size in store.sizes()]

    def _tombstones(self, chain: str, verifier_key: str | None = None) -> dict[int, Tombstone]:
        key = verifier_key or self.verifier_key
        store = TombstoneStore(
            self.path / "chains" / chain / "tombstones", self.chain_origin(chain), key
        )
        # Tombstones are immutable once stored: their signatures are checked once per handle
        # and key, and again only when the set of files changes.
        try:
            names = tuple(sorted(os.listdir(store.directory)))
        except FileNotFoundError:
            names = ()
        cached = self._tombstone_cache.get((chain, key))
        if cached is not None and cached[0] == names:
            return cached[1]
        loaded = store.load()
        self._tombstone_cache[(chain, key)] = (names, loaded)
        return loaded

    def _redactions(self, chain: str, verifier_key: str | None = None) -> RedactionStore:
        return RedactionStore(
            self.path / "chains" / chain / "redactions",
            self.chain_origin(chain),
            verifier_key or self.verifier_key,
        )

    def _tiles(self, chain: str) -> TileStore:
        return TileStore(self._reader(chain).directory / "tiles")

    def prove(self, chain: str, index: int, size: int | None = None) -> InclusionProof:
        """An inclusion proof of record ``index`` up to a stored checkpoint, from O(log n) reads.

        ``size`` picks the checkpoint (default: the newest); a checkpoint of that size must
        be stored.
        """
        store = CheckpointStore(self._reader(chain).directory / "checkpoints")
        if size is None:
            latest = store.latest()
            if latest is None:
                raise ConfigurationError(f"chain {chain!r} has no checkpoint yet: make one first")
            size, signed = latest
        else:
            signed = store.get(size)
        if not 0 <= index < size:
            raise ConfigurationError(
                f"index {index} is not in the tree of size {size}; prove it against a newer "
                "checkpoint"
            )
        tiles = self._tiles(chain)
        specs = merkle.inclusion_proof_nodes(index, size)
        proof = InclusionProof(
            origin=self.chain_origin(chain),
            index=index,
            size=size,
            leaf_hash=tiles.leaf(index),
            proof=tuple(merkle.rehash(specs, self._node_hashes(tiles, specs, size))),
            checkpoint=signed,
        )
        verify_inclusion_proof(proof, self.verifier_key)  # stale tiles fail here, not outside
        return proof

    def prove_consistency(
        self, chain: str, size1: int, size2: int | None = None
    ) -> ConsistencyProof:
        """A proof that the checkpoint of ``size2`` (default: newest) extends that of ``size1``."""
        store = CheckpointStore(self._reader(chain).directory / "checkpoints")
        if size2 is None:
            latest = store.latest()
            if latest is None:
                raise ConfigurationError(f"chain {chain!r} has no checkpoint yet: make one first")
            size2 = latest[0]
        if not 0 < size1 <= size2:
            raise ConfigurationError(f"no consistency proof from size {size1} to size {size2}")
        tiles = self._tiles(chain)
        specs = merkle.consistency_proof_nodes(size1, size2)
        proof = ConsistencyProof(
            origin=self.chain_origin(chain),
            size1=size1,
            size2=size2,
            proof=tuple(merkle.rehash(specs, self._node_hashes(tiles, specs, size2))),
            checkpoint1=store.get(size1),
            checkpoint2=store.get(size2),
        )
        verify_consistency_proof(proof, self.verifier_key)
        return proof

    @staticmethod
    def _node_hashes(
        tiles: TileStore, specs: list[merkle.NodeSpec], size: int
    ) -> dict[tuple[int, int], bytes]:
        return {node: tiles.node(*node, size) for spec in specs for node in spec.nodes}

    def total_bytes(self) -> int:
        """Bytes of every segment file (what ``verify`` reads), for progress bars."""
        return sum(self._reader(c).total_bytes() for c in self.chains())

    def read(self, chain: str, start: int = 0, end: int | None = None) -> Iterator[Record]:
        """Decrypt and yield the records of ``chain`` with indexes in [start, end)."""
        for _, record in self.read_indexed(chain, start, end):
            yield record

    def read_indexed(
        self, chain: str, start: int = 0, end: int | None = None
    ) -> Iterator[tuple[int, Record]]:
        """Like ``read``, with each record's chain index."""
        if start < 0 or (end is not None and end < start):
            raise ConfigurationError("read needs 0 <= start <= end")
        reader = self._reader(chain)
        keyring = self._keyring(chain)
        limit = end if end is not None else 1 << 64
        for tombstone in self._tombstones(chain).values():
            if tombstone.first_index < limit and start < tombstone.end_index:
                raise KeyShreddedError(
                    f"records {tombstone.first_index} to {tombstone.end_index - 1} of chain "
                    f"{chain!r} (periods {', '.join(map(str, tombstone.periods))}) were deleted "
                    "by a retention sweep; a signed tombstone stands for them"
                )
        for index, canonical in reader.read(keyring, start, end):
            yield index, decode_record(canonical)

    def stats(self) -> LogStats:
        """Record, segment and byte counts per chain (keyless; reads the last segment only)."""
        chains = {}
        for chain in self.chains():
            reader = self._reader(chain)
            files = reader.segment_files()
            records = max((t.end_index for t in self._tombstones(chain).values()), default=0)
            sealed = max(len(files) - 1, 0)
            if files:
                end, newest_sealed = reader.end(files)
                records = max(records, end)
                sealed += newest_sealed
            chains[chain] = ChainStats(
                chain=chain,
                records=records,
                segments=len(files),
                sealed_segments=sealed,
                bytes=sum(p.stat().st_size for _, p in files),
                periods=len(self._periods_on_disk(chain)),
            )
        return LogStats(origin=self.origin, chains=chains)

    def _periods_on_disk(self, chain: str) -> list[int]:
        # The keyring lists periods without unwrapping anything; it is readable without keys.
        import msgpack

        path = self.path / "chains" / chain / "keyring"
        try:
            doc = msgpack.unpackb(path.read_bytes(), strict_map_key=False)
        except FileNotFoundError:
            return []
        return [int(p) for p in doc.get("keys", {})]

    # -- repair ---------------------------------------------------------------------------

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
        manifest = _Manifest.load(root)
        names = [chain] if chain else _chain_names(root)
        reports: list[RepairReport] = []
        for name in names:
            origin = f"{manifest.origin}/{name}"
            directory = root / "chains" / _check_chain_id(name)
            report = _repair_chain(
                directory, name, origin, (clock or SystemClock()).now(), manifest.checkpoint_key
            )
            if report is not None:
                reports.append(report)
        if reports:
            # Opening for writing now succeeds; it also proves the repaired chain verifies.
            with cls.open(
                root, passphrase=passphrase, key_provider=key_provider, clock=clock
            ) as log:
                for report in reports:
                    log._record_repair(report)
        return reports

    def _record_repair(self, report: RepairReport) -> None:
        self._log_event(
            report.chain,
            LogEventType.REPAIR,
            self._clock.now(),
            f"cut {report.bytes_cut} bytes from segment {report.segment} at offset "
            f"{report.offset}; records from index {report.first_lost_index} on were lost; "
            f"the bytes are kept in {report.quarantine.name}",
        )

    def _log_event(
        self,
        chain: str,
        event: LogEventType,
        when: datetime,
        detail: str,
        actor: str | None = None,
    ) -> None:
        """Append (and flush) a record of something the log did to itself to ``chain``."""
        record = LogEvent(
            occurred_at=when,
            subject=LOG_SUBJECT,
            service=LOG_SUBJECT,
            event=event,
            chain=chain,
            detail=detail,
            actor=actor,
        )
        writer = self._writer(chain)
        # The log's own events happen when they happen, however far the chain's records ran.
        writer.append_batch([record], check_late=False)
        writer.flush()

    # -- key management -------------------------------------------------------------------

    def key_status(self) -> KeyStatus:
        """Which root key wraps the data keys, and each chain's live and shredded periods."""
        provider = self._key_provider()
        chains = {}
        for chain in self.chains():
            keyring = self._keyring(chain)
            chains[chain] = (tuple(keyring.periods), tuple(sorted(keyring.shredded)))
        staged = isinstance(provider, PassphraseKeyProvider) and provider.staged_path.exists()
        return KeyStatus(
            root_key_id=provider.key_id,
            provider=self._manifest.key_provider.get("type", "?"),
            rotation_pending=staged,
            chains=chains,
        )

    def rotate_root_key(
        self,
        *,
        actor: str,
        passphrase: str | None = None,
        new_provider: KeyProvider | None = None,
        now: datetime | None = None,
    ) -> str:
        """Rewrap every data key (and the log's own keys) under a new root key.

        No segment is rewritten. With the default passphrase provider a new root key is made
        (same passphrase) and the old one destroyed at the end; with an external provider
        pass ``new_provider`` (then destroy the old key in the KMS). Killed half-way, running
        it again finishes it. Returns the new root key id.
        """
        if self._mode != "write":
            raise ConfigurationError("rotate the root key with the log opened for writing")
        when = now or self._clock.now()
        # Every chain's lock first: a writer of another chain in another process would
        # otherwise rewrite its keyring under the root key this rotation destroys.
        for chain in self.chains():
            self._writer(chain)
        old = self._key_provider()
        # A rotation resumed after a crash opened with the staged key current: name the key
        # it rotates away from, not the staged one.
        old_id = (
            old.previous_key_ids[0]
            if isinstance(old, PassphraseKeyProvider) and old.previous_key_ids
            else old.key_id
        )
        new: KeyProvider
        if isinstance(old, PassphraseKeyProvider):
            if new_provider is not None:
                raise ConfigurationError("this log's root key is passphrase-protected")
            new = old.stage_rotation(passphrase or self._passphrase)
        elif new_provider is None:
            raise ConfigurationError("pass new_provider=... to rotate an external root key")
        else:
            new = CombinedKeyProvider(new_provider, old)
        with self._lock:
            for chain in self.chains():
                self._keyring(chain).rewrap(new)
            rewrap_signing_key(self.path / _CHECKPOINT_KEY_FILE, new, new, self.origin)
            rewrap_hold_key(self.path / _HOLD_KEY_FILE, new, new, self.origin)
            if isinstance(new, PassphraseKeyProvider):
                new.commit_rotation()
            else:
                with self._editing_manifest() as manifest:
                    manifest.key_provider = {"type": "external", "key_id": new.key_id}
            self._provider = new
        for chain in self.chains():
            self._log_event(
                chain,
                LogEventType.KEY_ROTATION,
                when,
                f"root key rotated from {old_id} to {new.key_id}; data keys rewrapped, no "
                "segment rewritten",
                actor,
            )
        return new.key_id

    def change_passphrase(self, new_passphrase: str) -> None:
        """Rewrap the root key under a new passphrase (data keys are untouched)."""
        provider = self._key_provider()
        if not isinstance(provider, PassphraseKeyProvider):
            raise ConfigurationError("this log's root key is not passphrase-protected")
        provider.change_passphrase(new_passphrase)
        self._passphrase = new_passphrase

    @contextlib.contextmanager
    def _editing_manifest(self) -> Iterator[_Manifest]:
        """Yield the manifest as on disk to change, then store it and use it from now on.

        It is reloaded under the log lock, so a change another handle made since this one
        opened is kept, not overwritten with this handle's older copy.
        """
        with log_lock(self.path):
            manifest = _Manifest.load(self.path)
            yield manifest
            atomic_replace(self.path / _MANIFEST, manifest.dump())
            self._manifest = manifest

    # -- retention ------------------------------------------------------------------------

    def retention(self, chain: str) -> RetentionPolicy | None:
        """The chain's retention policy, or None (then nothing of it is ever deleted)."""
        return self._manifest.retention.get(chain)

    def set_retention(
        self, chain: str, policy: RetentionPolicy, *, actor: str, now: datetime | None = None
    ) -> None:
        """Set a chain's floor and ceiling; stored in the manifest and appended to the chain."""
        _check_chain_id(chain)
        when = now or self._clock.now()
        with self._editing_manifest() as manifest:
            manifest.retention[chain] = policy
        self._log_event(
            chain,
            LogEventType.POLICY,
            when,
            f"retention set: keep at least {policy.keep_at_least}, delete after "
            f"{policy.delete_after}",
            actor,
        )

    def holds(self) -> list[LegalHold]:
        """Every legal hold ever placed (released and expired ones too)."""
        return HoldStore(self.path / "holds.json").load()

    def _hold_key(self) -> bytes:
        return load_hold_key(self.path / _HOLD_KEY_FILE, self._key_provider(), self.origin)

    def subject_token(self, subject: str) -> str:
        """The keyed token standing for ``subject`` in holds (the subject is never stored)."""
        return subject_token(self._hold_key(), subject)

    def add_hold(
        self,
        case_id: str,
        chains: Iterable[str],
        start: datetime,
        end: datetime,
        *,
        actor: str,
        subjects: Iterable[str] = (),
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> LegalHold:
        """Place a legal hold: what it covers is kept past the ceiling until it is released."""
        when = now or self._clock.now()
        chains = list(chains)
        unknown = sorted(set(chains) - set(self.chains()))
        if unknown:
            raise ConfigurationError(
                f"no such chains {unknown}: a hold names chains that exist (`auditlog stats`)"
            )
        key = self._hold_key()
        hold = LegalHold(
            hold_id=new_hold_id(),
            case_id=case_id,
            chains=tuple(_check_chain_id(c) for c in chains),
            start=start,
            end=end,
            subject_tokens=tuple(sorted({subject_token(key, s) for s in subjects})),
            expires_at=expires_at,
            created_at=when,
        )
        self._save_hold(hold, replace=False)
        self._announce_hold(hold, LogEventType.HOLD_ADD, when, actor)
        return hold

    def extend_hold(
        self,
        hold_id: str,
        *,
        actor: str,
        end: datetime | None = None,
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> LegalHold:
        """Widen a hold's time range or push back its expiry (never narrow it)."""
        hold = self._hold(hold_id)
        if end is not None and end < hold.end:
            raise RetentionError("a hold can only be extended; release it to end it")
        if expires_at is not None and hold.expires_at is not None and expires_at < hold.expires_at:
            raise RetentionError("a hold's expiry can only move later")
        updated = hold.model_copy(
            update={"end": end or hold.end, "expires_at": expires_at or hold.expires_at}
        )
        when = now or self._clock.now()
        self._save_hold(updated, replace=True)
        self._announce_hold(updated, LogEventType.HOLD_EXTEND, when, actor)
        return updated

    def release_hold(self, hold_id: str, *, actor: str, now: datetime | None = None) -> LegalHold:
        """Release a hold: the ceiling applies again to what it covered, from the next sweep."""
        hold = self._hold(hold_id)
        when = now or self._clock.now()
        released = hold.model_copy(update={"released_at": when})
        self._save_hold(released, replace=True)
        self._announce_hold(released, LogEventType.HOLD_RELEASE, when, actor)
        return released

    def _hold(self, hold_id: str) -> LegalHold:
        for hold in self.holds():
            if hold.hold_id == hold_id:
                return hold
        raise ConfigurationError(f"no legal hold {hold_id!r}; `auditlog hold list` shows them")

    def _save_hold(self, hold: LegalHold, *, replace: bool) -> None:
        with log_lock(self.path):
            store = HoldStore(self.path / "holds.json")
            holds = [h for h in store.load() if not (replace and h.hold_id == hold.hold_id)]
            store.save([*holds, hold])

    def _announce_hold(
        self, hold: LegalHold, event: LogEventType, when: datetime, actor: str
    ) -> None:
        subjects = (
            f"{len(hold.subject_tokens)} subject tokens" if hold.subject_tokens else "all subjects"
        )
        detail = (
            f"{hold.hold_id} case {hold.case_id}: {hold.start.isoformat()} to "
            f"{hold.end.isoformat()}, {subjects}, expires "
            f"{hold.expires_at.isoformat() if hold.expires_at else 'never'}"
            + (f", released {hold.released_at.isoformat()}" if hold.released_at else "")
        )
        for chain in hold.chains:
            self._log_event(chain, event, when, detail, actor)

    def redact(
        self,
        subject: str,
        *,
        reason: str,
        actor: str,
        now: datetime | None = None,
        legal_basis: str | None = None,
        chains: Iterable[str] | None = None,
    ) -> dict[str, list[int]]:
        """Erase one subject's records where the law allows it; their leaves stay.

        Every record whose ``subject`` is ``subject`` loses its frame (the open segment is
        sealed first); blocks keep their hashes, so every root, checkpoint and proof of other
        records stays valid, and reading a redacted record raises ``RecordRedactedError``.
        Records still inside their chain's retention floor are refused with
        ``RetentionError`` unless ``legal_basis`` names the provision that overrides it (the
        override is logged). A ``log`` record says who, when and why. Returns the redacted
        indexes per chain.
        """
        when = now or self._clock.now()
        done: dict[str, list[int]] = {}
        for chain in applicable_chains(self, chains):
            writer = self._writer(chain)
            writer.flush()
            matches = self._find_subject(chain, subject)
            if not matches:
                continue
            policy = self.retention(chain)
            in_floor = policy is not None and any(
                when < policy.floor_ends(p, self.config.period_seconds) for _, _, _, p in matches
            )
            if in_floor and not legal_basis:
                raise RetentionError(
                    f"records of this subject in chain {chain!r} are inside the retention floor; "
                    "erasing them needs legal_basis=... naming the provision that overrides it"
                )
            if any(sequence == writer.open_sequence for sequence, _, _, _ in matches):
                writer.seal_open_segment()
            by_segment: dict[int, dict[int, set[int]]] = {}
            for sequence, first, position, _ in matches:
                by_segment.setdefault(sequence, {}).setdefault(first, set()).add(position)
            segments_dir = self.path / "chains" / chain / "segments"
            indexes = sorted(first + position for _, first, position, _ in matches)
            # The signed note first: a crash before the rewrite leaves a note naming frames
            # still present (harmless); never a missing frame without a note.
            self._redactions(chain).save(indexes, datetime_to_micros(when), self._signer())
            for sequence, redactions in by_segment.items():
                rewrite_segment(segment_path(segments_dir, sequence), sequence, chain, redactions)
            done[chain] = indexes
            override = (
                f"; inside the retention floor, on legal basis {legal_basis}" if in_floor else ""
            )
            self._log_event(
                chain,
                LogEventType.REDACTION,
                when,
                f"redacted {len(indexes)} records (indexes {_ranges(indexes)}): {reason}{override}",
                actor,
            )
        return done

    def _find_subject(self, chain: str, subject: str) -> list[tuple[int, int, int, int]]:
        """(segment, block first index, position, period) of every readable record of subject."""
        reader = self._reader(chain)
        keyring = self._keyring(chain)
        found = []
        for scan in reader.scans():
            for ordinal, block in enumerate(scan.blocks):
                header = block.header
                if header.period in keyring.shredded:
                    continue
                where: dict[str, object] = {
                    "chain": chain,
                    "segment": scan.sequence,
                    "block": ordinal,
                }
                for index, canonical in reader.decrypt(block, keyring, where, skip_redacted=True):
                    if decode_record(canonical).subject == subject:
                        found.append(
                            (
                                scan.sequence,
                                header.first_index,
                                index - header.first_index,
                                header.period,
                            )
                        )
        return found

    def _forget_period(self, chain: str, period: int) -> None:
        writer = self._writers.get(chain)
        if writer is not None:
            writer.forget_period(period)

    def _records_of_period(
        self, chain: str, period: int, sequences: set[int] | None = None
    ) -> Iterator[Record]:
        reader = self._reader(chain)
        keyring = self._keyring(chain)
        for _, canonical in reader.records_of_period(keyring, period, sequences):
            yield decode_record(canonical)

    def sweep(
        self,
        now: datetime | None = None,
        *,
        dry_run: bool = True,
        chains: Iterable[str] | None = None,
        periods: Mapping[str, Iterable[int]] | None = None,
        actor: str = "retention-sweep",
    ) -> SweepPlan:
        """Plan (``dry_run``, the default) or apply the deletions retention requires at ``now``.

        Applying deletes every segment all of whose periods are past the ceiling and not
        under a hold, shreds those periods' keys, and leaves a signed tombstone per deleted
        range so the rest still verifies. ``periods`` asks for specific periods by hand
        (allowed past the floor; inside it ``RetentionError``). Idempotent; a sweep killed
        midway is finished by the next one.
        """
        when = now or self._clock.now()
        names = applicable_chains(self, chains)
        if not dry_run:
            for chain in names:
                self._writer(chain)  # takes the lock and finishes any interrupted sweep
        plan = plan_sweep(self, when, names, periods, self.holds())
        if dry_run:
            return plan
        for chain_plan in plan.chains.values():
            apply_chain(self, chain_plan, when, actor)
        plan.applied = True
        return plan

    def _announce_sweep(
        self,
        chain: str,
        sweep_id: str,
        when: datetime,
        segments: list[int],
        periods: list[int],
        tombstones: list[Tombstone],
        actor: str,
    ) -> None:
        """Append the sweep's record unless a rerun finds it already at the chain's tail."""
        self._writer(chain).flush()
        # A rerun finds its record, if a killed run appended it, in the newest blocks.
        for _, canonical in self._reader(chain).tail(self._keyring(chain), 8):
            record = decode_record(canonical)
            if isinstance(record, LogEvent) and record.detail.startswith(sweep_id + ":"):
                return
        ranges = ", ".join(f"[{t.first_index}, {t.end_index})" for t in tombstones) or "none"
        self._log_event(
            chain,
            LogEventType.SWEEP,
            when,
            f"{sweep_id}: deleted segments {segments or 'none'} (indexes {ranges}); shredded "
            f"the keys of periods {periods or 'none'}",
            actor,
        )


def _required(doc: dict[str, Any], key: str, path: Path) -> Any:
    if key not in doc:
        raise ConfigurationError(
            f"{path / _MANIFEST} has no {key!r}: it was made by an older development version "
            "of auditlog that this one cannot open"
        )
    return doc[key]


def _ranges(indexes: list[int]) -> str:
    """Indexes as compact ranges: 3-5, 9."""
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][1] == index - 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)


def _chain_names(root: Path) -> list[str]:
    directory = root / "chains"
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and _CHAIN_ID.fullmatch(p.name))


def _repair_chain(
    directory: Path, chain: str, origin: str, now: datetime, verifier_key: str
) -> RepairReport | None:
    # Hold the writer lock throughout: cutting a file a live writer appends to would corrupt it.
    lock = acquire_chain_lock(directory, chain)
    try:
        return _cut_damaged_tail(directory, chain, origin, now, verifier_key)
    finally:
        os.close(lock)


def _cut_damaged_tail(
    directory: Path, chain: str, origin: str, now: datetime, verifier_key: str
) -> RepairReport | None:
    segments = list_segments(directory / "segments")
    if not segments:
        return None
    sequence, path = segments[-1]
    # The whole chain is checked (keyless), so damage anywhere is found; only damage in the
    # last segment can be cut. A torn tail is not damage: opening for writing cuts it.
    reader = ChainReader(directory, chain, origin, period_seconds=86_400)
    tombstones = TombstoneStore(directory / "tombstones", origin, verifier_key).load()
    redactions = RedactionStore(directory / "redactions", origin, verifier_key).indexes()
    try:
        reader.verify(None, tombstones=tombstones, redactions=redactions)
        return None
    except IntegrityError as exc:
        error = exc
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
    covered = CheckpointStore(directory / "checkpoints").sizes()
    if covered and (lost_from is None or covered[-1] > lost_from):
        raise IntegrityError(
            f"the damaged records (from index {lost_from if lost_from is not None else '?'}) "
            "are covered by a signed checkpoint "
            f"of size {covered[-1]}: cutting them would leave a log that can never verify "
            "against it again; restore the segment from a backup instead",
            location=damage,
        )
    quarantine_dir = directory / "quarantine"
    make_private_dir(quarantine_dir)
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    quarantine = quarantine_dir / f"{sequence:010d}-{offset}-{stamp}.bin"
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
