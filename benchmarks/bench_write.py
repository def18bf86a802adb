"""Write path, side by side in one run on the same records (issues 2 and 5).

Cases, each in a fresh directory on the same file system, timing the write path only (the
workload is generated, and logs are created, before the clock starts):

- (a) ``AuditLog.append_many`` of validated records: blocks of 4096, one fdatasync per block;
- (b) ``AuditLog.append`` one record at a time from 8 threads, then one ``flush``;
- (c) end to end from dicts: ``parse_record(dict)`` feeding ``append_many``;
- (d) stdlib ``logging`` with a ``FileHandler``, one ``model_dump_json()`` line per record;
- (e) bare JSON lines: ``model_dump_json()`` and ``file.write`` (the floor);
- (f) SQLite in WAL mode, ``executemany`` of the JSON into a text column, 4096 rows a transaction;
- (g) pymerkle's ``SqliteTree`` (if installed): the JSON lines as leaves, root after each batch.

Durability: (a)-(c) fdatasync every block; (d)-(f) fsync once at the end (so they are only as
durable as (a) once they return, and pay for far fewer syncs); (g) uses pymerkle's default
SQLite settings, which sync every batch's transaction.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from auditlog import AuditLog, LogConfig, Record, parse_record
from benchmarks._harness import (
    JsonDict,
    Timing,
    common_parser,
    create_bench_log,
    directory_bytes,
    fresh_dir,
    frozen_heap,
    fsync_path,
    json_line,
    median,
    per_record_us,
    publish,
    rate,
    timed,
    workload_records,
)
from benchmarks._machine import describe_machine

NAME: Final = "write"
# The library's default block size; the peers batch alike where they batch.
BATCH: Final = LogConfig().block_max_records
THREADS: Final = 8


@dataclass(frozen=True, slots=True)
class Workload:
    """The same records in the two shapes the cases start from."""

    records: list[Record]
    dicts: list[dict[str, Any]]  # as decoded from JSON: strings for times and addresses


Case = Callable[[Path, Workload], Timing]  # runs in a fresh directory, times the write path


@dataclass(frozen=True, slots=True)
class CaseSpec:
    key: str
    name: str
    durability: str
    run: Case


def _check_written(log: AuditLog, expected: int) -> None:
    # Outside the timed region: a case that silently wrote less would look fast.
    written = log.stats().records
    if written != expected:
        raise RuntimeError(f"expected {expected} records in the log, found {written}")


def case_append_many(directory: Path, work: Workload) -> Timing:
    """(a) validated records, one ``append_many`` call (flush and fdatasync per block)."""
    with create_bench_log(directory / "log") as log:
        with timed() as timing:
            log.append_many(work.records)
        _check_written(log, len(work.records))
    return timing


def case_threaded_append(directory: Path, work: Workload) -> Timing:
    """(b) ``append`` one at a time from 8 threads, then one ``flush``."""
    parts = [work.records[i::THREADS] for i in range(THREADS)]
    with create_bench_log(directory / "log") as log:
        # The barrier lets every thread start at once, so thread start-up is not timed.
        barrier = threading.Barrier(THREADS + 1)

        def produce(part: Sequence[Record]) -> None:
            barrier.wait()
            append = log.append
            for record in part:
                append(record)

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            futures = [pool.submit(produce, part) for part in parts]
            barrier.wait()
            with timed() as timing:
                for future in futures:
                    future.result()
                log.flush()
        _check_written(log, len(work.records))
    return timing


def case_from_dicts(directory: Path, work: Workload) -> Timing:
    """(c) validation included: ``parse_record`` on each dict, streamed into ``append_many``."""
    with create_bench_log(directory / "log") as log:
        with timed() as timing:
            log.append_many(parse_record(item) for item in work.dicts)
        _check_written(log, len(work.dicts))
    return timing


def case_logging(directory: Path, work: Workload) -> Timing:
    """(d) stdlib logging to a file, one JSON line per record; fsync at the end."""
    logger = logging.getLogger(f"benchmarks.jsonlines.{directory.name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(directory / "records.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    assert handler.stream is not None  # FileHandler opens its file at once unless delayed
    try:
        with timed() as timing:
            for record in work.records:
                logger.info(record.model_dump_json())
            handler.flush()
            os.fsync(handler.stream.fileno())
    finally:
        logger.removeHandler(handler)
        handler.close()
    return timing


def case_json_lines(directory: Path, work: Workload) -> Timing:
    """(e) the floor: serialize and ``write``, nothing else; fsync at the end."""
    with (directory / "records.jsonl").open("w", encoding="utf-8") as handle, timed() as timing:
        write = handle.write
        for record in work.records:
            write(json_line(record))
        handle.flush()
        os.fsync(handle.fileno())
    return timing


def case_sqlite(directory: Path, work: Workload) -> Timing:
    """(f) SQLite WAL, ``executemany`` of JSON text, 4096 rows a transaction; synced at the end."""
    path = directory / "records.db"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL: commits are not synced one by one; the final checkpoint syncs everything.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, record TEXT NOT NULL)")
        records = work.records
        with timed() as timing:
            for first in range(0, len(records), BATCH):
                block = records[first : first + BATCH]
                connection.execute("BEGIN")
                connection.executemany(
                    "INSERT INTO records (record) VALUES (?)",
                    [(record.model_dump_json(),) for record in block],
                )
                connection.execute("COMMIT")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            fsync_path(path)
    finally:
        connection.close()
    return timing


def case_pymerkle(directory: Path, work: Workload) -> Timing:
    """(g) pymerkle ``SqliteTree``: JSON lines as leaves, 4096 a batch, the root after each."""
    from pymerkle import SqliteTree  # type: ignore[import-untyped]

    tree = SqliteTree(str(directory / "merkle.db"))
    try:
        records = work.records
        with timed() as timing:
            for first in range(0, len(records), BATCH):
                block = records[first : first + BATCH]
                tree.append_entries([json_line(record).encode() for record in block])
                tree.get_root()
    finally:
        tree.close()
    return timing


def pymerkle_available() -> bool:
    return importlib.util.find_spec("pymerkle") is not None


_PER_BLOCK = "fdatasync per block of 4096"
_AT_END = "fsync once at the end"

CASES: Final = (
    CaseSpec("a", "auditlog append_many (validated records)", _PER_BLOCK, case_append_many),
    CaseSpec(
        "b", f"auditlog append, {THREADS} threads, then flush", _PER_BLOCK, case_threaded_append
    ),
    CaseSpec("c", "auditlog from dicts (parse_record + append_many)", _PER_BLOCK, case_from_dicts),
    CaseSpec("d", "stdlib logging, JSON lines (FileHandler)", _AT_END, case_logging),
    CaseSpec("e", "bare JSON lines (model_dump_json + write)", _AT_END, case_json_lines),
    CaseSpec("f", "SQLite WAL, executemany, JSON column", _AT_END + " (checkpoint)", case_sqlite),
    CaseSpec(
        "g",
        "pymerkle SqliteTree (JSON lines as leaves)",
        "sync per batch (SQLite default)",
        case_pymerkle,
    ),
)


def prepare(records: int, seed: int) -> Workload:
    """Generate the workload once; every case reads the same records."""
    items = workload_records(records, seed)
    dicts = [record.model_dump(mode="json", exclude_none=True) for record in items]
    return Workload(records=items, dicts=dicts)


def run(
    records: int, seed: int, scratch: Path, *, repeat: int = 3, cases: str = "abcdefg"
) -> JsonDict:
    """Run the chosen cases ``repeat`` times, interleaved, and summarise each by its median."""
    machine = describe_machine(scratch)
    work = prepare(records, seed)
    chosen = [c for c in CASES if c.key in cases and (c.key != "g" or pymerkle_available())]
    timings: dict[str, list[Timing]] = {c.key: [] for c in chosen}
    sizes: dict[str, int] = {}
    with frozen_heap():
        _warm_up(chosen, work, scratch)
        # Repetitions are interleaved (a..g, a..g, ...) so that drift in machine load falls on
        # every case alike instead of on whichever ran last.
        for _ in range(repeat):
            for case in chosen:
                with fresh_dir(scratch, f"write-{case.key}") as directory:
                    gc.collect()
                    timings[case.key].append(case.run(directory, work))
                    sizes[case.key] = directory_bytes(directory)
    results = [_summarise(case, timings[case.key], sizes[case.key], records) for case in chosen]
    return {
        "bench": NAME,
        "machine": machine,
        "params": {"records": records, "seed": seed, "repeat": repeat, "batch": BATCH},
        "workload": _describe_workload(work),
        "cases": results,
        "ratios": _ratios(results),
        "skipped": [c.key for c in CASES if c.key in cases and c not in chosen],
    }


def _warm_up(chosen: Sequence[CaseSpec], work: Workload, scratch: Path) -> None:
    """Run every case once on a slice, untimed: imports, lazy initialisation and first-touch
    costs would otherwise land on whichever case happens to run first."""
    count = min(len(work.records), 2000)
    sample = Workload(records=work.records[:count], dicts=work.dicts[:count])
    for case in chosen:
        with fresh_dir(scratch, f"warm-{case.key}") as directory:
            case.run(directory, sample)


def _summarise(case: CaseSpec, runs: list[Timing], size: int, records: int) -> JsonDict:
    seconds = median([run.wall for run in runs])
    return {
        "key": case.key,
        "name": case.name,
        "durability": case.durability,
        "seconds": seconds,
        "runs": [run.wall for run in runs],
        "cpu_runs": [run.cpu for run in runs],
        "records_per_s": rate(records, seconds),
        "us_per_record": per_record_us(seconds, records),
        "cpu_us_per_record": per_record_us(median([run.cpu for run in runs]), records),
        "bytes": size,
        "bytes_per_record": size / records,
    }


def _describe_workload(work: Workload) -> JsonDict:
    kinds = Counter(str(record.kind) for record in work.records)
    count = len(work.records)
    full = sum(len(json_line(r).encode()) for r in work.records)
    compact = sum(len(r.model_dump_json(exclude_none=True).encode()) + 1 for r in work.records)
    return {
        "records": count,
        "kinds": dict(kinds),
        "json_bytes_per_record": full / count,
        "compact_json_bytes_per_record": compact / count,
    }


def _ratios(results: list[JsonDict]) -> JsonDict:
    """Throughput of (a), (b), (c) over (d) and (e); bytes/record of (a) over (e)."""
    by_key = {r["key"]: r for r in results}
    ratios: JsonDict = {}
    for ours in ("a", "b", "c"):
        for peer in ("d", "e", "f", "g"):
            if ours in by_key and peer in by_key:
                ratios[f"{ours}/{peer}"] = (
                    by_key[ours]["records_per_s"] / by_key[peer]["records_per_s"]
                )
    if "a" in by_key and "e" in by_key:
        ratios["bytes a/e"] = by_key["a"]["bytes_per_record"] / by_key["e"]["bytes_per_record"]
    return ratios


def format_table(results: JsonDict) -> str:
    """A plain-text table of one run, for the terminal."""
    lines = [f"{'case':<56} {'records/s':>11} {'us/rec':>8} {'cpu us':>8} {'B/rec':>7}"]
    for case in results["cases"]:
        lines.append(
            f"({case['key']}) {case['name']:<52} {case['records_per_s']:>11,.0f} "
            f"{case['us_per_record']:>8.1f} {case['cpu_us_per_record']:>8.1f} "
            f"{case['bytes_per_record']:>7.1f}"
        )
    lines.append("ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in results["ratios"].items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> JsonDict:
    parser = common_parser(__doc__.splitlines()[0] if __doc__ else NAME, default_records=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is kept")
    parser.add_argument("--cases", default="abcdefg", help="which cases to run, e.g. 'ade'")
    args = parser.parse_args(argv)
    results = run(args.records, args.seed, args.dir, repeat=args.repeat, cases=args.cases)
    return publish(args.results_dir, NAME, results, format_table(results))


if __name__ == "__main__":
    main()
