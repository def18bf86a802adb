"""What every bench shares: the workload, scratch directories, timing statistics, results files."""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from auditlog import AuditLog, LogConfig, Record
from auditlog.testing import workload

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
# Scratch space lives in the work tree (ignored by git) rather than /tmp: /tmp may be a tmpfs
# on other machines, where fsync costs nothing and every durable writer would look free.
DEFAULT_SCRATCH: Final = REPO_ROOT / ".bench"
DEFAULT_RESULTS: Final = REPO_ROOT / "benchmarks" / "results"

BENCH_PASSPHRASE: Final = "auditlog benchmark passphrase"  # throwaway benchmark logs only
# The passphrase stretch is paid once when a log is created or opened, never on the write path;
# a low cost keeps setup short and changes nothing that is timed.
BENCH_SCRYPT_N: Final = 2**10

WORKLOAD_START: Final = datetime(2026, 1, 1, tzinfo=UTC)
# One UTC day: every record of every run falls in one retention period, so runs of different
# sizes do the same per-period work (one data key, one dictionary per chain).
WORKLOAD_SPAN: Final = timedelta(days=1)

JsonDict = dict[str, Any]


def workload_records(n: int, seed: int) -> list[Record]:
    """``n`` validated workload records, generated before any timing starts."""
    return list(workload(n, seed=seed, start=WORKLOAD_START, span=WORKLOAD_SPAN))


def workload_chunks(n: int, seed: int, chunk: int) -> Iterator[list[Record]]:
    """``n`` workload records in lists of at most ``chunk``, so memory stays bounded at any ``n``.

    Chunk ``i`` uses seed ``seed + i`` and the ``i``-th slice of the day, so times never
    decrease across chunks and every run stays in one retention period.
    """
    if n <= 0:
        return
    count = -(-n // chunk)
    for i in range(count):
        size = min(chunk, n - i * chunk)
        start = WORKLOAD_START + WORKLOAD_SPAN * (i * chunk) / n
        span = WORKLOAD_SPAN * size / n
        yield list(workload(size, seed=seed + i, start=start, span=span))


def json_line(record: Record) -> str:
    """One record as platforms log it today: ``model_dump_json()`` and a newline."""
    return record.model_dump_json() + "\n"


@contextmanager
def fresh_dir(root: Path, name: str) -> Iterator[Path]:
    """A new empty directory under ``root`` (same file system for every case), removed after."""
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    try:
        yield path
    finally:
        # Sealed segments are made read-only (0400); rmtree only needs the directories writable.
        shutil.rmtree(path, ignore_errors=True)


def fsync_path(path: Path) -> None:
    """Write back every dirty page of the file at ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def directory_bytes(path: Path) -> int:
    """Bytes of every file under ``path``: what the case left on disk, metadata files included."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def create_bench_log(path: Path, **kwargs: Any) -> AuditLog:
    """A new log with the benchmark passphrase; ``kwargs`` go to ``AuditLog.create``."""
    kwargs.setdefault("config", LogConfig())
    return AuditLog.create(path, passphrase=BENCH_PASSPHRASE, scrypt_n=BENCH_SCRYPT_N, **kwargs)


def open_bench_log(path: Path, **kwargs: Any) -> AuditLog:
    """An existing benchmark log; ``kwargs`` go to ``AuditLog.open``."""
    return AuditLog.open(path, passphrase=BENCH_PASSPHRASE, **kwargs)


@dataclass
class Timing:
    """Wall-clock and process CPU seconds of one timed region.

    CPU time counts every thread of this process but not time spent waiting (for fsync, or for
    a core taken by another process): next to wall time it tells a slow case from a busy machine.
    """

    wall: float = 0.0
    cpu: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    """Time the ``with`` block; the yielded ``Timing`` is filled in when the block ends."""
    timing = Timing()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        timing.wall = time.perf_counter() - wall
        timing.cpu = time.process_time() - cpu


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the garbage collector off every object that exists now: the pre-generated workload.

    A bench holds its whole workload in memory at once, which a streaming platform never does.
    Left in the collected generations, those millions of objects are rescanned by every full
    collection inside a timed region, charging each case for the bench's own data in
    proportion to how many objects the case allocates (validating dicts into records doubled
    in cost that way). Frozen, they are left alone; what a case allocates is still collected.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in [0, 1]) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def peak_rss_bytes() -> int:
    """This process's peak resident set size (VmHWM), in bytes."""
    status = _proc_status()
    if "VmHWM" in status:
        return status["VmHWM"]
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def current_rss_bytes() -> int:
    """This process's resident set size now (VmRSS), in bytes; 0 where /proc is missing."""
    return _proc_status().get("VmRSS", 0)


def _proc_status() -> dict[str, int]:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    sizes = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            sizes[key] = int(parts[0]) * 1024
    return sizes


def save_results(directory: Path, name: str, payload: Mapping[str, Any]) -> Path:
    """Write one bench's results as ``<directory>/<name>.json``, replacing the previous run's."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(temporary, path)
    return path


def load_results(directory: Path, name: str) -> JsonDict | None:
    """The saved results of bench ``name``, or None if it has not been run."""
    try:
        loaded: JsonDict = json.loads((directory / f"{name}.json").read_text("utf-8"))
    except FileNotFoundError:
        return None
    return loaded


def publish(directory: Path, name: str, results: JsonDict, *texts: str) -> JsonDict:
    """What a bench's ``main`` ends with: save ``results``, print ``texts`` a blank line apart."""
    save_results(directory, name, results)
    print("\n\n".join(texts))
    return results


def int_list(text: str) -> list[int]:
    """A command-line list of integers, e.g. ``10000,100000``."""
    return [int(part) for part in text.split(",") if part]


def common_parser(description: str, default_records: int) -> argparse.ArgumentParser:
    """The options every bench takes: size, seed, scratch and results directories."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--records", type=int, default=default_records, help="workload size")
    parser.add_argument("--seed", type=int, default=0, help="workload seed")
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_SCRATCH,
        help="scratch directory; every case gets a fresh subdirectory of it (same file system)",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=DEFAULT_RESULTS, help="where the JSON results go"
    )
    return parser


def per_record_us(seconds: float, records: int) -> float:
    return seconds / records * 1e6 if records else float("nan")


def rate(records: int, seconds: float) -> float:
    return records / seconds if seconds > 0 else float("nan")
