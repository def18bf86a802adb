"""Durable writes as a backend makes them (issue 12): many chains per flush, threads waiting.

Each case writes the same workload (all record kinds, so every flush touches up to six chains)
into a fresh log, timed from the first append to the last durable record:

- ``batches``: ``append_many`` of request-sized batches (``--batch`` records) with
  ``flush=True``, one call after the other; latency of each call (p50, p99, max). Every call
  writes one block per chain it touches and returns once all of them are synced: the chains'
  ``fdatasync`` calls run at once (``flush_writers``).
- ``batches, syncs in turn``: the same, with the chains' syncs issued one after the other (the
  behaviour before issue 12), to measure what syncing at once gains on this disk.
- ``threads, wait_durable``: 8 threads each appending one record at a time and waiting for it
  to be durable (``append`` then ``receipt.wait_durable()``), no background flusher: the first
  waiter flushes for everyone queued (leader group commit); latency of append-to-durable.
- ``threads, group commit``: the same under ``GroupCommit(max_delay=2 ms)``, the background
  flusher.

Each case starts from a fresh log, so its first call also creates the chains (their keys,
files and head lines, each synced): that one-off is the max latency. Dictionary training, which
used to stall the first flush with enough samples, runs in a background thread since issue 12.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from auditlog import AuditLog, GroupCommit, Record
from benchmarks._harness import (
    JsonDict,
    common_parser,
    create_bench_log,
    fresh_dir,
    frozen_heap,
    median,
    percentile,
    publish,
    rate,
    workload_records,
)
from benchmarks._machine import describe_machine

NAME: Final = "flush"
THREADS: Final = 8


def _leader_commit_available() -> bool:
    """Whether ``wait_durable`` flushes by itself (issue 12): before, it waited for a flush
    nobody would make."""
    try:
        from auditlog.segment import pending
    except ImportError:
        return False
    return hasattr(pending.Durability, "fail")


@contextmanager
def _syncs_in_turn() -> Iterator[None]:
    """Make ``flush_writers`` sync the chains one after the other, as before issue 12."""
    from auditlog.segment import writer as writer_module

    saved = writer_module._sync_all

    def in_turn(writers: list[Any]) -> None:
        for writer in writers:
            writer._sync_unsynced()

    writer_module._sync_all = in_turn
    try:
        yield
    finally:
        writer_module._sync_all = saved


def _batches(log: AuditLog, records: list[Record], batch: int) -> list[float]:
    latencies = []
    for start in range(0, len(records), batch):
        began = time.perf_counter()
        log.append_many(records[start : start + batch], flush=True)
        latencies.append(time.perf_counter() - began)
    return latencies


def _threads(log: AuditLog, records: list[Record]) -> list[float]:
    parts = [records[i::THREADS] for i in range(THREADS)]
    latencies: list[list[float]] = [[] for _ in parts]
    barrier = threading.Barrier(THREADS)

    def produce(part: Sequence[Record], out: list[float]) -> None:
        barrier.wait()
        append = log.append
        for record in part:
            began = time.perf_counter()
            append(record).wait_durable()
            out.append(time.perf_counter() - began)

    threads = [
        threading.Thread(target=produce, args=(part, out))
        for part, out in zip(parts, latencies, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [value for out in latencies for value in out]


Case = Callable[[Path, list[Record], int], tuple[float, list[float]]]


def _timed(log: AuditLog, action: Callable[[], list[float]]) -> tuple[float, list[float]]:
    began = time.perf_counter()
    latencies = action()
    seconds = time.perf_counter() - began
    log.close()
    return seconds, latencies


def case_batches(directory: Path, records: list[Record], batch: int) -> tuple[float, list[float]]:
    log = create_bench_log(directory / "log")
    return _timed(log, lambda: _batches(log, records, batch))


def case_batches_in_turn(
    directory: Path, records: list[Record], batch: int
) -> tuple[float, list[float]]:
    log = create_bench_log(directory / "log")
    with _syncs_in_turn():
        return _timed(log, lambda: _batches(log, records, batch))


def case_threads(directory: Path, records: list[Record], batch: int) -> tuple[float, list[float]]:
    log = create_bench_log(directory / "log")
    return _timed(log, lambda: _threads(log, records))


def case_threads_group(
    directory: Path, records: list[Record], batch: int
) -> tuple[float, list[float]]:
    log = create_bench_log(directory / "log", group_commit=GroupCommit(max_delay=0.002))
    return _timed(log, lambda: _threads(log, records))


def _cases() -> list[tuple[str, str, Case]]:
    cases: list[tuple[str, str, Case]] = [("batches", "batches, syncs at once", case_batches)]
    if _leader_commit_available():
        cases.append(("batches-in-turn", "batches, syncs in turn", case_batches_in_turn))
        cases.append(("threads", f"{THREADS} threads, wait_durable (leader)", case_threads))
    cases.append(("threads-group", f"{THREADS} threads, group commit 2 ms", case_threads_group))
    return cases


def run(records: int, seed: int, scratch: Path, *, batch: int = 64, repeat: int = 3) -> JsonDict:
    """Every case ``repeat`` times, interleaved; each summarised by its median run."""
    machine = describe_machine(scratch)
    work = workload_records(records, seed)
    cases = _cases()
    runs: dict[str, list[tuple[float, list[float]]]] = {key: [] for key, _, _ in cases}
    with frozen_heap():
        for _ in range(repeat):
            for key, _, case in cases:
                with fresh_dir(scratch, f"flush-{key}") as directory:
                    gc.collect()
                    runs[key].append(case(directory, work, batch))
    summaries = []
    for key, name, _ in cases:
        seconds = median([s for s, _ in runs[key]])
        latencies = [value for _, values in runs[key] for value in values]
        summaries.append(
            {
                "key": key,
                "name": name,
                "seconds": seconds,
                "records_per_s": rate(records, seconds),
                "latency_ms_p50": percentile(latencies, 0.50) * 1000,
                "latency_ms_p99": percentile(latencies, 0.99) * 1000,
                "latency_ms_max": max(latencies) * 1000,
            }
        )
    return {
        "bench": NAME,
        "machine": machine,
        "params": {"records": records, "seed": seed, "batch": batch, "repeat": repeat},
        "cases": summaries,
    }


def format_table(results: JsonDict) -> str:
    lines = [f"{'case':<40} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"]
    for case in results["cases"]:
        lines.append(
            f"{case['name']:<40} {case['records_per_s']:>10,.0f} "
            f"{case['latency_ms_p50']:>8.2f} {case['latency_ms_p99']:>8.2f} "
            f"{case['latency_ms_max']:>8.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> JsonDict:
    parser = common_parser(__doc__.splitlines()[0] if __doc__ else NAME, default_records=20_000)
    parser.add_argument("--batch", type=int, default=64, help="records per append_many call")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is kept")
    args = parser.parse_args(argv)
    results = run(args.records, args.seed, args.dir, batch=args.batch, repeat=args.repeat)
    return publish(args.results_dir, NAME, results, format_table(results))


if __name__ == "__main__":
    main()


def markdown_section(results: JsonDict | None) -> str:
    """The "Durable writes" section of docs/benchmarks.md ('' without results)."""
    if results is None:
        return ""
    params = results["params"]
    rows = "\n".join(
        f"| {c['name']} | {c['records_per_s']:,.0f} | {c['latency_ms_p50']:.2f} | "
        f"{c['latency_ms_p99']:.2f} | {c['latency_ms_max']:.2f} |"
        for c in results["cases"]
    )
    by_key = {c["key"]: c for c in results["cases"]}
    gain = ""
    if "batches" in by_key and "batches-in-turn" in by_key:
        ratio = by_key["batches"]["records_per_s"] / by_key["batches-in-turn"]["records_per_s"]
        gain = (
            f"\n\nSyncing the chains at once: {ratio:.2f}x the records/s of syncing them in turn "
            f"(p99 {by_key['batches']['latency_ms_p99']:.2f} against "
            f"{by_key['batches-in-turn']['latency_ms_p99']:.2f} ms)."
        )
    return (
        "## Durable writes: many chains per flush, threads waiting (issue 12)\n\n"
        f"`python -m benchmarks.bench_flush`: {params['records']:,} records of every kind, "
        f"batches of {params['batch']}, median of {params['repeat']} runs; latency of each "
        "call (a batch's `append_many(flush=True)`, or one thread's `append` + "
        "`wait_durable`), over all runs. The max is each run's first call, which creates the "
        "chains of a fresh log (keys, files, head lines, each synced).\n\n"
        "| case | records/s | p50 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: |\n"
        f"{rows}{gain}\n"
    )
