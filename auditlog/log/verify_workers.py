"""Verifying chains in other processes: one chain is one unit of work, merged in the parent.

A chain's verification (``ChainReader.verify``) needs nothing from another chain, so chains
are verified side by side on a ``concurrent.futures.Executor`` (a process pool by default: the
work is CPU-bound Python and C that holds the GIL between C calls). The parent does everything
that needs the log handle or crosses chains: it lists each chain's checkpoints before any of
its segments is read, checks the tombstones' and redaction notes' signatures, and afterwards
holds the checkpoints and the head against the merged reports, in chain order, so the first
error raised is the one verifying in one process raises.

Keys: a keyed task carries the chain's data keys, unwrapped by the parent, to the worker
through the executor's pipe (a local process pool: memory to memory, never a file or a
command line). It carries no root key, passphrase or signing key, and only the periods of one
chain. An executor that sends tasks over a network (Dask) would carry them there: for such an
executor verify keyless, or give each worker its own key source (not built).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context

from auditlog.crypto.keys import ChainKeyring, PeriodKeys
from auditlog.errors import AuditLogError, KeyMaterialError
from auditlog.segment.files import ChainFiles
from auditlog.segment.format import Tombstone
from auditlog.segment.reader import ChainReader, ChainReport

__all__ = [
    "ChainFailure",
    "ChainTask",
    "UnwrappedKeys",
    "default_executor",
    "run_chain_task",
    "unwrap_all",
]

# Below this many segment bytes a log verifies in the calling process: starting worker
# processes (each imports auditlog) costs more than it saves.
PARALLEL_MIN_BYTES = 64 << 20


class UnwrappedKeys:
    """A chain's data keys held in memory: what keyed verification asks of a keyring."""

    def __init__(
        self,
        data_keys: Mapping[int, bytes],
        shredded: set[int],
        failures: Mapping[int, ChainFailure],
        origin: str,
    ) -> None:
        self._data_keys = dict(data_keys)
        self._failures = dict(failures)
        self._origin = origin
        self._keys: dict[int, PeriodKeys] = {}
        self.shredded = shredded

    def get(self, period: int) -> PeriodKeys:
        """The keys of ``period``; raises what the chain's keyring raised for it, when it is
        asked for (as the keyring would, at the first block of that period)."""
        keys = self._keys.get(period)
        if keys is None:
            if period in self._failures:
                raise self._failures[period].rebuild()
            if period not in self._data_keys:
                raise KeyMaterialError(
                    f"no data key for period {period} of {self._origin}: the keyring is "
                    "incomplete; restore it from a backup"
                )
            keys = self._keys[period] = PeriodKeys(period, self._data_keys[period])
        return keys


def unwrap_all(keyring: ChainKeyring) -> tuple[dict[int, bytes], dict[int, ChainFailure]]:
    """Every data key of a chain, unwrapped; a period whose key does not unwrap is kept with
    its error, raised by the worker when a block of that period asks for it."""
    keys: dict[int, bytes] = {}
    failures: dict[int, ChainFailure] = {}
    for period in keyring.periods:
        if period in keyring.shredded:
            continue
        try:
            keys[period] = keyring.get(period).data_key
        except AuditLogError as exc:
            failures[period] = ChainFailure.of(exc)
    return keys, failures


@dataclass(frozen=True)
class ChainTask:
    """Everything a worker needs to verify one chain; picklable."""

    files: ChainFiles
    chain: str
    origin: str
    period_seconds: int
    tombstones: dict[int, Tombstone]
    redactions: set[int]
    wanted: set[int]
    pending: set[int]
    data_keys: dict[int, bytes] | None = field(default=None, repr=False)  # None: keyless
    shredded: set[int] = field(default_factory=set)
    key_failures: dict[int, ChainFailure] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainFailure:
    """An error a worker raised, carried back whole (its class, message and location):
    exceptions with keyword-only fields do not survive pickling on their own."""

    kind: type[AuditLogError]
    args: tuple[object, ...]
    state: dict[str, object]

    @classmethod
    def of(cls, error: AuditLogError) -> ChainFailure:
        return cls(type(error), error.args, dict(vars(error)))

    def rebuild(self) -> AuditLogError:
        error = self.kind.__new__(self.kind)
        error.args = self.args
        error.__dict__.update(self.state)
        return error


def run_chain_task(task: ChainTask) -> ChainReport | ChainFailure:
    """Verify one chain (in a worker); an ``AuditLogError`` comes back as a ``ChainFailure``."""
    reader = ChainReader(task.files, task.chain, task.origin, task.period_seconds)
    keys = None
    if task.data_keys is not None:
        keys = UnwrappedKeys(task.data_keys, task.shredded, task.key_failures, task.origin)
    try:
        return reader.verify(
            keys, None, task.tombstones, task.redactions, task.wanted, task.pending
        )
    except AuditLogError as exc:
        return ChainFailure.of(exc)


def default_executor(chains: int, total_bytes: int) -> Executor | None:
    """A process pool with a worker per core (at most one per chain), or None (verify in this
    process) for a single chain, a single core or a small log."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(cores or 1, chains)
    if workers < 2 or total_bytes < PARALLEL_MIN_BYTES or not _main_is_importable():
        return None
    # "spawn": a worker starts from nothing but the task, never from a copy of this process
    # (which may hold threads, locks and other keys).
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))


def _main_is_importable() -> bool:
    """Whether a spawned worker may import the program's main module: it does, and a script
    run as ``python script.py`` would run its top-level code again there. A program run with
    ``-m`` (the CLI, pytest), interactively or with ``-c`` is safe; a script gets a pool only
    when it asks (``workers=``, ``executor=``), as it then keeps its ``__main__`` guard."""
    main = sys.modules.get("__main__")
    return (
        main is None or getattr(main, "__spec__", None) is not None or not hasattr(main, "__file__")
    )
