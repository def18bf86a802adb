"""The chains of one log handle: their writers (one per chain, each holding its lock), readers,
and the signed files that stand beside the segments (checkpoints, tombstones, redactions).

A writer is made on first use and kept until the handle closes; the events chain's writer is
opened around each event instead (``events_writer``). Hooks given by the ``AuditLog`` that owns
this run around them: ``on_seal`` signs a checkpoint at every segment seal, ``on_dictionary``
binds a new dictionary into the head, ``on_created`` records a new chain, and ``on_open``
finishes a sweep a crash interrupted before anything else is written.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from auditlog._fs import make_private_dir
from auditlog.clock import Clock
from auditlog.errors import ConfigurationError, RollbackError
from auditlog.log.config import LogConfig
from auditlog.log.key_material import KeyMaterial
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.segment.format import Tombstone
from auditlog.segment.frames import DictionaryStore
from auditlog.segment.index import SegmentIndex
from auditlog.segment.reader import ChainReader
from auditlog.segment.recovery import RecoveryReport
from auditlog.segment.redaction import RedactionStore
from auditlog.segment.tiles import TileStore
from auditlog.segment.tombstone import TombstoneStore
from auditlog.segment.writer import ChainSettings, ChainWriter
from auditlog.storage.layout import EVENTS_CHAIN, LogLayout, check_chain_id

__all__ = ["Chains"]

SealHook = Callable[[str, int, bytes], object]
"""Called with (chain, tree size, root) once a segment is sealed."""
OpenHook = Callable[[str], object]
"""Called with the chain's name once its writer is open, before anything is written."""
DictionaryHook = Callable[[str, int], object]
"""Called with (chain, period) once a period's dictionary is stored."""

# The events chain rolls its segments sooner: every event opens its writer, which rereads the
# open segment.
_EVENTS_SEGMENT_RECORDS = 4096


class Chains:
    """The chains of one log handle."""

    def __init__(
        self,
        layout: LogLayout,
        origin: str,
        config: LogConfig,
        keys: KeyMaterial,
        verifier_key: str,
        *,
        writable: bool,
        allowed: Iterable[str] | None,
        fsync: bool,
        clock: Clock,
    ) -> None:
        self.layout = layout
        self.origin = origin
        self.config = config
        self.verifier_key = verifier_key
        self._keys = keys
        self._writable = writable
        self._allowed = None if allowed is None else {check_chain_id(c) for c in allowed}
        self._fsync = fsync
        self._clock = clock
        self._writers: dict[str, ChainWriter] = {}
        self._lock = threading.RLock()
        self._closed = False
        self.recovery: list[RecoveryReport] = []
        self.on_seal: SealHook | None = None
        self.on_open: OpenHook | None = None
        self.on_created: OpenHook | None = None
        self.on_dictionary: DictionaryHook | None = None
        self._segment_indexes: dict[str, SegmentIndex] = {}
        # The readers' codecs, kept while the period keys that opened them are cached.
        self._dictionary_stores: dict[str, DictionaryStore] = {}
        self._tombstone_cache: dict[
            tuple[str, str], tuple[tuple[str, ...], dict[int, Tombstone]]
        ] = {}

    # -- names ----------------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        """Whether this handle may write (it opened for writing, reconciled with the head)."""
        return self._writable

    def names(self) -> list[str]:
        """The chains that exist on disk, sorted."""
        return self.layout.chain_names()

    def selected(self) -> list[str]:
        """The chains on disk that this handle was opened for."""
        return [c for c in self.names() if self._allowed is None or c in self._allowed]

    def origin_of(self, chain: str) -> str:
        """The origin of a chain's tree and checkpoints: ``<log origin>/<chain>``."""
        return f"{self.origin}/{chain}"

    def require(self, chains: Iterable[str] | None) -> list[str]:
        """``chains`` (default: every chain on disk), each of which must exist."""
        names = list(chains) if chains is not None else self.names()
        unknown = sorted(set(names) - set(self.names()))
        if unknown:
            raise ConfigurationError(f"no such chains: {unknown}")
        return names

    # -- writers --------------------------------------------------------------------------

    def writer(self, chain: str) -> ChainWriter:
        """The chain's writer, opened (and its lock taken) on first use."""
        writer = self._writers.get(chain)
        if writer is not None:
            return writer
        with self._lock:
            writer = self._writers.get(chain)
            if writer is not None:
                return writer
            writer = self._open_writer(chain)
        if self.on_open is not None:
            self.on_open(chain)
        return writer

    def _open_writer(self, chain: str) -> ChainWriter:
        self.check_open()
        if not self._writable:
            raise ConfigurationError("this log was opened with mode='read'; open it to write")
        check_chain_id(chain)
        if self._allowed is not None and chain not in self._allowed:
            raise ConfigurationError(
                f"chain {chain!r} is not among the chains this log was opened for "
                f"({sorted(self._allowed)}); add it to chains=..."
            )
        files = self.layout.chain(chain)
        if files.directory.is_dir():
            writer = self._new_writer(chain, _chain_settings(self.config))
        else:
            # A new chain and the head that names it appear together (under the log lock), so
            # that a verifier never sees one without the other.
            with self.layout.log_lock():
                make_private_dir(files.directory)
                writer = self._new_writer(chain, _chain_settings(self.config))
                if self.on_created is not None:
                    self.on_created(chain)
        if writer.recovery is not None:
            self.recovery.append(writer.recovery)
        self._writers[chain] = writer
        return writer

    def _new_writer(self, chain: str, settings: ChainSettings) -> ChainWriter:
        files = self.layout.chain(chain)
        on_seal, on_dictionary = self.on_seal, self.on_dictionary

        def sealed(size: int, root: bytes) -> None:
            if on_seal is not None:
                on_seal(chain, size, root)

        def dictionary(period: int) -> None:
            if on_dictionary is not None:
                on_dictionary(chain, period)

        writer = ChainWriter(
            files,
            chain,
            self.origin_of(chain),
            self._keys.keyring(chain),
            settings,
            fsync=self._fsync,
            clock=self._clock,
            on_seal=sealed,
            on_dictionary=dictionary,
            verifier_key=self.verifier_key,
            state_lock=self.layout.log_lock,
        )
        sizes = CheckpointStore(files.checkpoints).sizes()
        if sizes and sizes[-1] > writer.size:
            writer.close()
            raise RollbackError(
                f"chain {chain!r} has {writer.size} records but its own signed checkpoint "
                f"says it had {sizes[-1]}: records were cut off (sizes {writer.size} < "
                f"{sizes[-1]}); restore the missing segments from a backup",
                location={"chain": chain, "size": writer.size, "checkpoint": sizes[-1]},
            )
        return writer

    @contextmanager
    def events_writer(self) -> Iterator[ChainWriter]:
        """A writer of the events chain for one event; the caller holds the log lock."""
        self.check_open()
        if not self._writable:
            raise ConfigurationError("this log was opened with mode='read'; open it to write")
        make_private_dir(self.layout.chain(EVENTS_CHAIN).directory)
        settings = _chain_settings(self.config)
        settings = replace(
            settings,
            max_segment_records=min(settings.max_segment_records, _EVENTS_SEGMENT_RECORDS),
            # Under the log lock, which storing a dictionary takes: no background training.
            train_in_background=False,
        )
        writer = self._new_writer(EVENTS_CHAIN, settings)
        try:
            yield writer
        finally:
            writer.close()

    def open_writer_if_any(self, chain: str) -> ChainWriter | None:
        """The chain's writer if this handle has opened it, else None (nothing is opened)."""
        return self._writers.get(chain)

    def open_writers(self) -> list[ChainWriter]:
        """The writers this handle has opened so far."""
        return list(self._writers.values())

    def check_open(self) -> None:
        if self._closed:
            raise ConfigurationError("this log is closed; open it again")

    def close(self) -> None:
        """Flush and close every writer (releasing the chain locks); the first error is raised
        after all of them were closed."""
        self._closed = True
        errors: list[BaseException] = []
        for writer in self._writers.values():
            try:
                writer.close()
            except BaseException as exc:  # noqa: BLE001 - close the others, then re-raise
                errors.append(exc)
        self._writers.clear()
        if errors:
            raise errors[0]

    # -- readers and the signed files beside the segments --------------------------------

    def reader(self, chain: str) -> ChainReader:
        """A reader of an existing chain (no lock is taken; nothing is changed)."""
        files = self.layout.chain(chain)
        if not files.directory.is_dir():
            raise ConfigurationError(f"no chain {chain!r} in this log; chains: {self.names()}")
        # What readers learn of the chain's segments is kept for the handle's next reads.
        index = self._segment_indexes.setdefault(chain, SegmentIndex())
        origin = self.origin_of(chain)
        dictionaries = self._dictionary_stores.get(chain)
        if dictionaries is None:
            dictionaries = self._dictionary_stores[chain] = DictionaryStore(files.dicts, origin)
        return ChainReader(files, chain, origin, self.config.period_seconds, index, dictionaries)

    def checkpoints(self, chain: str) -> CheckpointStore:
        return CheckpointStore(self.layout.chain(chain).checkpoints)

    def tiles(self, chain: str) -> TileStore:
        return TileStore(self.reader(chain).files.tiles)

    def tombstones(self, chain: str, verifier_key: str | None = None) -> dict[int, Tombstone]:
        """The chain's tombstones, their signatures checked with ``verifier_key`` (default:
        the log's), by the first segment sequence each stands for."""
        key = verifier_key or self.verifier_key
        store = TombstoneStore(self.layout.chain(chain).tombstones, self.origin_of(chain), key)
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

    def redactions(self, chain: str, verifier_key: str | None = None) -> RedactionStore:
        return RedactionStore(
            self.layout.chain(chain).redactions,
            self.origin_of(chain),
            verifier_key or self.verifier_key,
        )

    def directory(self, chain: str) -> Path:
        return self.layout.chain(chain).directory


def _chain_settings(config: LogConfig) -> ChainSettings:
    """What each chain's writer needs of the log's configuration."""
    return ChainSettings(
        period_seconds=config.period_seconds,
        max_segment_bytes=config.max_segment_bytes,
        max_segment_records=config.max_segment_records,
        block_max_records=config.block_max_records,
        late_bound_seconds=config.late_bound_seconds,
        dictionary_samples=config.dictionary_samples,
        dictionary_bytes=config.dictionary_bytes,
        max_future_seconds=config.max_future_seconds,
    )
