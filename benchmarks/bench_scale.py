"""Scaling of the write path (issue 5, part 3).

- Size: ``append_many`` of 10k, 100k and 1M records (10M with ``--ten-million``), each in a fresh
  writer process that generates its records in chunks between timed calls, so the records in
  memory stay bounded; throughput, per-chunk throughput (is the cost per append flat?) and the
  process's peak RSS (VmHWM) next to its RSS before the first append.
- Group commit: ``append`` one record at a time under ``GroupCommit(max_records, max_delay)``
  windows while another thread waits on each receipt's ``wait_durable``; records/s against the
  durable-acknowledgement latency (p50, p99) from ``append`` to durable, once at full speed
  (saturated: latency is then mostly queueing behind ``max_records``) and once at a fixed offered
  rate (paced: the latency a request handler would see). The first row flushes after every
  record instead: one fdatasync per durable write, the synchronous baseline.
- Two writers: two processes appending to two chains of one log (``AuditLog.open(path,
  chains=[...])``, ``chain=...``) against one process alone, same records per process; each
  writer warms its chain first, untimed.
"""

from __future__ import annotations

import gc
import json
import os
import queue
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from auditlog import AuditLog, GroupCommit, Receipt, Record
from benchmarks._harness import (
    REPO_ROOT,
    JsonDict,
    common_parser,
    create_bench_log,
    fresh_dir,
    int_list,
    median,
    percentile,
    publish,
    workload_records,
)
from benchmarks._machine import describe_machine

NAME: Final = "scale"
SIZES: Final = (10_000, 100_000, 1_000_000)
TEN_MILLION: Final = 10_000_000
CHUNK: Final = 10_000
# (max_records, max_delay in seconds); None: flush (and fdatasync) after every single record.
WINDOWS: Final[tuple[tuple[int, float] | None, ...]] = (
    None,
    (16, 0.001),
    (64, 0.001),
    (256, 0.002),
    (1024, 0.005),
    (4096, 0.005),
    (4096, 0.02),
    (16384, 0.05),
)
WARM_RECORDS: Final = 1500  # more than the 1000 samples a chain's dictionary is trained on
SYNC_EACH_LIMIT: Final = 2000  # one fdatasync a record is slow: fewer records suffice
GC_CHAIN: Final = "gc"


# -- writer processes -------------------------------------------------------------------------


def _spawn(spec: JsonDict) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks._writer_process", json.dumps(spec)],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        _, err = process.communicate()
        raise RuntimeError(f"writer process did not start: {line!r} {err[-2000:]}")


def _result(process: subprocess.Popen[str]) -> JsonDict:
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"writer process failed ({process.returncode}): {err[-2000:]}")
    loaded: JsonDict = json.loads(out.strip().splitlines()[-1])
    return loaded


# -- size -------------------------------------------------------------------------------------


def scaling(sizes: Sequence[int], seed: int, chunk: int, scratch: Path) -> list[JsonDict]:
    """One fresh writer process per size; each reports its own timing and memory."""
    rows = []
    for size in sizes:
        with fresh_dir(scratch, f"scale-{size}") as directory:
            spec = {"role": "stream", "records": size, "chunk": chunk, "seed": seed}
            rows.append(_result(_spawn({**spec, "dir": str(directory)})))
    return rows


# -- group commit -----------------------------------------------------------------------------


def group_commit(
    records: list[Record], scratch: Path, *, paced_rate: float, paced_records: int
) -> list[JsonDict]:
    """Each window twice: appending at full speed, then at a fixed offered rate."""
    rows = []
    for window in WINDOWS:
        if window is None:
            with fresh_dir(scratch, "group-commit") as directory:
                gc.collect()
                rows.append(_flush_each(records[:SYNC_EACH_LIMIT], directory))
            continue
        row: JsonDict = {"window": _window_name(window), "max_records": window[0]}
        row["max_delay_s"] = window[1]
        for load, count, pace in (
            ("saturated", len(records), None),
            ("paced", min(paced_records, len(records)), paced_rate),
        ):
            with fresh_dir(scratch, "group-commit") as directory:
                gc.collect()
                row[load] = _windowed(records[:count], window, pace, directory)
        rows.append(row)
    return rows


def _window_name(window: tuple[int, float]) -> str:
    return f"GroupCommit({window[0]}, {window[1] * 1e3:g} ms)"


def _flush_each(records: list[Record], directory: Path) -> JsonDict:
    """The synchronous baseline: every ``append`` followed by its own ``flush`` (fdatasync)."""
    latencies = []
    with create_bench_log(directory / "log") as log:
        _warm_up(log, records)
        start = time.perf_counter()
        for record in records:
            appended = time.perf_counter()
            log.append(record, chain=GC_CHAIN)
            log.flush()
            latencies.append(time.perf_counter() - appended)
        elapsed = time.perf_counter() - start
    summary = _latency_summary(len(records), elapsed, latencies, None)
    return {
        "window": "flush after every append",
        "max_records": 1,
        "max_delay_s": 0.0,
        "saturated": summary,
        "paced": None,  # synchronous: each append waits for its own fsync, nothing to pace
    }


def _windowed(
    records: list[Record], window: tuple[int, float], pace: float | None, directory: Path
) -> JsonDict:
    """Append one record at a time (at ``pace`` records/s, or as fast as possible) under a
    group-commit window while another thread waits for each receipt to become durable."""
    policy = GroupCommit(max_records=window[0], max_delay=window[1])
    receipts: queue.SimpleQueue[tuple[Receipt, float] | None] = queue.SimpleQueue()
    latencies: list[float] = []

    def acknowledge() -> None:
        # Receipts become durable in index order, so waiting on them in order observes each
        # one as soon as it is durable (the ones after it are then usually durable already).
        while (item := receipts.get()) is not None:
            receipt, appended = item
            if not receipt.wait_durable(timeout=120):
                raise RuntimeError(f"record {receipt.index} did not become durable")
            latencies.append(time.perf_counter() - appended)

    with (
        create_bench_log(directory / "log", group_commit=policy) as log,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        _warm_up(log, records)
        acknowledger = pool.submit(acknowledge)
        start = time.perf_counter()
        for number, record in enumerate(records):
            if pace is not None:
                _sleep_until(start + number / pace)
            appended = time.perf_counter()
            receipts.put((log.append(record, chain=GC_CHAIN), appended))
        receipts.put(None)
        acknowledger.result()
        elapsed = time.perf_counter() - start
    return _latency_summary(len(records), elapsed, latencies, pace)


def _warm_up(log: AuditLog, records: list[Record]) -> None:
    """Make the chain's data key, dictionary and segment file before timing.

    They are made once per (chain, period), inside the flush that needs them; the stall that
    causes (dictionary training above all) is measured in bench_profile, not mixed in here.
    """
    log.append_many(records[:WARM_RECORDS], chain=GC_CHAIN)


def _sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def _latency_summary(
    records: int, seconds: float, latencies: list[float], offered: float | None
) -> JsonDict:
    return {
        "records": records,
        "offered_records_per_s": offered,
        "records_per_s": records / seconds,
        "latency_p50_ms": percentile(latencies, 0.50) * 1e3,
        "latency_p99_ms": percentile(latencies, 0.99) * 1e3,
        "latency_max_ms": max(latencies) * 1e3,
    }


# -- two writers ------------------------------------------------------------------------------


def two_writers(records: int, seed: int, scratch: Path, repeat: int) -> JsonDict:
    """Aggregate records/s of two processes on two chains over one process on one chain."""
    one: list[float] = []
    two: list[float] = []
    each: list[float] = []
    for _ in range(repeat):
        one.append(_writers(["a"], records, seed, scratch)["aggregate_records_per_s"])
        run = _writers(["a", "b"], records, seed, scratch)
        two.append(run["aggregate_records_per_s"])
        each.extend(run["per_process_records_per_s"])
    return {
        "records_per_process": records,
        "repeat": repeat,
        "one_records_per_s": median(one),
        "two_records_per_s": median(two),
        "two_per_process_records_per_s": median(each),
        "ratio": median(two) / median(one),
        "runs_one": one,
        "runs_two": two,
    }


def _writers(chains: list[str], records: int, seed: int, scratch: Path) -> JsonDict:
    with fresh_dir(scratch, "writers") as directory:
        create_bench_log(directory / "log").close()
        processes = [
            _spawn(
                {
                    "role": "chain",
                    "chain": chain,
                    "records": records,
                    "seed": seed + number,
                    "dir": str(directory),
                }
            )
            for number, chain in enumerate(chains)
        ]
        for process in processes:
            _wait_ready(process)
        # Send every start signal before reading any result, so the writers run together.
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = [_result(process) for process in processes]
    start = min(r["start"] for r in results)
    end = max(r["end"] for r in results)
    return {
        "aggregate_records_per_s": sum(r["records"] for r in results) / (end - start),
        "per_process_records_per_s": [r["records"] / (r["end"] - r["start"]) for r in results],
    }


# -- the bench --------------------------------------------------------------------------------


def run(
    sizes: Sequence[int],
    seed: int,
    scratch: Path,
    *,
    chunk: int = CHUNK,
    gc_records: int = 20_000,
    paced_rate: float = 2000.0,
    paced_records: int = 4000,
    writer_records: int = 50_000,
    repeat: int = 3,
) -> JsonDict:
    machine = describe_machine(scratch)
    size_rows = scaling(sizes, seed, chunk, scratch)
    windows = group_commit(
        workload_records(gc_records, seed),
        scratch,
        paced_rate=paced_rate,
        paced_records=paced_records,
    )
    writers = two_writers(writer_records, seed, scratch, repeat)
    return {
        "bench": NAME,
        "machine": machine,
        "params": {
            "sizes": list(sizes),
            "seed": seed,
            "chunk": chunk,
            "gc_records": gc_records,
            "paced_rate": paced_rate,
            "paced_records": paced_records,
            "writer_records": writer_records,
            "repeat": repeat,
        },
        "sizes": size_rows,
        "group_commit": windows,
        "two_writers": writers,
    }


def format_table(results: JsonDict) -> str:
    lines = [
        f"{'records':>12} {'records/s':>11} {'peak RSS MB':>12} {'RSS before MB':>14} "
        f"{'RSS after MB':>13}"
    ]
    for row in results["sizes"]:
        lines.append(
            f"{row['records']:>12,} {row['records_per_s']:>11,.0f} "
            f"{row['peak_rss_bytes'] / 1e6:>12.1f} {row['rss_before_bytes'] / 1e6:>14.1f} "
            f"{row['rss_after_bytes'] / 1e6:>13.1f}"
        )
    lines.append(
        f"{'window':<28} {'saturated rec/s':>15} {'p50 ms':>8} {'p99 ms':>8}"
        f" | {'paced rec/s':>11} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for row in results["group_commit"]:
        full, paced = row["saturated"], row["paced"]
        line = (
            f"{row['window']:<28} {full['records_per_s']:>15,.0f} "
            f"{full['latency_p50_ms']:>8.2f} {full['latency_p99_ms']:>8.2f} | "
        )
        if paced is not None:
            line += (
                f"{paced['records_per_s']:>11,.0f} {paced['latency_p50_ms']:>8.2f} "
                f"{paced['latency_p99_ms']:>8.2f}"
            )
        lines.append(line)
    writers = results["two_writers"]
    lines.append(
        f"two writers: {writers['two_records_per_s']:,.0f} records/s vs one "
        f"{writers['one_records_per_s']:,.0f} records/s = {writers['ratio']:.2f}x"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> JsonDict:
    parser = common_parser("Scaling: size, group-commit windows, two writers.", 0)
    parser.add_argument("--sizes", type=int_list, default=list(SIZES), help="e.g. 10000,100000")
    parser.add_argument("--ten-million", action="store_true", help="add a 10M-record run")
    parser.add_argument("--chunk", type=int, default=CHUNK, help="records generated at a time")
    parser.add_argument("--gc-records", type=int, default=20_000, help="records per window")
    parser.add_argument("--paced-rate", type=float, default=2000.0, help="offered records/s")
    parser.add_argument("--paced-records", type=int, default=4000, help="records at that rate")
    parser.add_argument("--writer-records", type=int, default=50_000, help="records per writer")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the two-writer test")
    args: Any = parser.parse_args(argv)
    sizes = list(args.sizes)
    if args.records:
        sizes = [args.records]
    if args.ten_million and TEN_MILLION not in sizes:
        sizes.append(TEN_MILLION)
    results = run(
        sizes,
        args.seed,
        args.dir,
        chunk=args.chunk,
        gc_records=args.gc_records,
        paced_rate=args.paced_rate,
        paced_records=args.paced_records,
        writer_records=args.writer_records,
        repeat=args.repeat,
    )
    return publish(args.results_dir, NAME, results, format_table(results))


if __name__ == "__main__":
    main()
