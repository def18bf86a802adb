"""Reads by index and opens for writing as the log grows (issue 12, parts 3 and 4).

One log, written once with the workload's default chains (one per kind) and grown in place:
first to the smaller size, where both cases are measured, then to the larger one, where they
are measured again. The ratios of the larger size's figures to the smaller's say whether a cost
grows with the log.

- Read by index: ``read_indexed(chain, i, i + 1)`` at random (chain, index) positions, weighted
  by chain size, on one log handle opened read-only with keys; latency p50/p99. The handle's
  first read of each chain (the check against the signed head, and whatever a handle learns
  once) is made before timing and reported apart as the cold read.
- Open for write: ``AuditLog.open`` in write mode (every chain's writer opened: the tail of each
  chain checked, a torn tail cut, the tiles brought in step) then ``close``; the median of
  ``repeat`` runs. The benchmark passphrase has a cheap KDF, so the figure is the open itself.

The segment files are in the page cache (just written): these are CPU costs, not disk costs.

Targets (issue 12): read p99 at 1M records within 1.5x of p99 at 100k and under 1 ms; open at
1M within 1.5x of open at 100k.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from auditlog import AuditLog
from auditlog.storage.layout import EVENTS_CHAIN
from benchmarks._harness import (
    JsonDict,
    common_parser,
    create_bench_log,
    fresh_dir,
    int_list,
    median,
    open_bench_log,
    percentile,
    publish,
    workload_chunks,
)
from benchmarks._machine import describe_machine

NAME: Final = "index"
SIZES: Final = (100_000, 1_000_000)
QUICK_SIZES: Final = (2_000, 6_000)
CHUNK: Final = 20_000
READS: Final = 2_000
REPEAT: Final = 5
READ_P99_LIMIT_MS: Final = 1.0
GROWTH_LIMIT: Final = 1.5


def grow(log_path: Path, have: int, want: int, seed: int, chunk: int) -> None:
    """Append records ``have`` .. ``want`` of the workload (in chunks, bounded memory)."""
    opened = create_bench_log(log_path) if have == 0 else open_bench_log(log_path)
    with opened as log:
        for number, records in enumerate(workload_chunks(want - have, seed + have, chunk)):
            log.append_many(records)
            if number % 10 == 9:
                gc.collect()


def chain_sizes(log_path: Path) -> dict[str, int]:
    """Records per chain (of the workload's chains; the log's own events chain left out)."""
    with AuditLog.open(log_path, mode="read") as log:
        stats = log.stats()
    chains = stats.chains.items()
    return {name: s.records for name, s in chains if s.records and name != EVENTS_CHAIN}


def random_reads(log_path: Path, sizes: dict[str, int], reads: int, seed: int) -> JsonDict:
    """Latencies of ``reads`` single-record reads on one read-only handle, after one cold read
    of each chain."""
    chains = sorted(sizes)
    rng = random.Random(seed)
    cold: list[float] = []
    latencies: list[float] = []
    with open_bench_log(log_path, mode="read") as log:
        for chain in chains:
            index = rng.randrange(sizes[chain])
            start = time.perf_counter()
            found = next(iter(log.read_indexed(chain, index, index + 1)))
            cold.append(time.perf_counter() - start)
            if found[0] != index:
                raise RuntimeError(f"asked for {chain}[{index}], got index {found[0]}")
        gc.collect()
        for _ in range(reads):
            chain = rng.choices(chains, weights=[sizes[c] for c in chains])[0]
            index = rng.randrange(sizes[chain])
            start = time.perf_counter()
            found = next(iter(log.read_indexed(chain, index, index + 1)))
            latencies.append(time.perf_counter() - start)
            if found[0] != index:
                raise RuntimeError(f"asked for {chain}[{index}], got index {found[0]}")
    return {
        "reads": reads,
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "max_ms": max(latencies) * 1e3,
        "cold_max_ms": max(cold) * 1e3,
    }


def open_for_write(log_path: Path, repeat: int) -> JsonDict:
    """Seconds of opening the log for writing (every chain's writer) and closing it."""
    runs = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        log = open_bench_log(log_path)
        opened = time.perf_counter()
        log.close()
        runs.append(opened - start)
    return {"repeat": repeat, "open_s": median(runs), "runs_s": runs}


def segment_files(log_path: Path) -> tuple[int, int]:
    """(segment files, bytes) of the log's chains."""
    paths = list(log_path.glob("chains/*/segments/*.seg"))
    return len(paths), sum(path.stat().st_size for path in paths)


def run(
    sizes: Sequence[int],
    seed: int,
    scratch: Path,
    *,
    reads: int = READS,
    repeat: int = REPEAT,
    chunk: int = CHUNK,
) -> JsonDict:
    machine = describe_machine(scratch)
    rows = []
    with fresh_dir(scratch, "index") as directory:
        log_path = directory / "log"
        have = 0
        for size in sorted(sizes):
            grow(log_path, have, size, seed, chunk)
            have = size
            per_chain = chain_sizes(log_path)
            files, stored = segment_files(log_path)
            rows.append(
                {
                    "records": size,
                    "chains": per_chain,
                    "segments": files,
                    "segment_bytes": stored,
                    "read": random_reads(log_path, per_chain, reads, seed + size),
                    "open": open_for_write(log_path, repeat),
                }
            )
    return {
        "bench": NAME,
        "machine": machine,
        "params": {"sizes": sorted(sizes), "seed": seed, "reads": reads, "repeat": repeat},
        "sizes": rows,
        "target": target(rows),
    }


def target(rows: Sequence[JsonDict]) -> JsonDict:
    """The issue's targets, from the smallest and the largest size measured."""
    if len(rows) < 2:
        return {"status": "NOT RUN"}
    small, large = rows[0], rows[-1]
    read_growth = large["read"]["p99_ms"] / small["read"]["p99_ms"]
    open_growth = large["open"]["open_s"] / small["open"]["open_s"]
    met = (
        read_growth <= GROWTH_LIMIT
        and large["read"]["p99_ms"] < READ_P99_LIMIT_MS
        and open_growth <= GROWTH_LIMIT
    )
    return {
        "status": "MET" if met else "MISSED",
        "small": small["records"],
        "large": large["records"],
        "read_p99_growth": read_growth,
        "read_p99_ms": large["read"]["p99_ms"],
        "open_growth": open_growth,
    }


def format_table(results: JsonDict) -> str:
    lines = [
        f"{'records':>10} {'segments':>9} {'MB':>7} {'read p50 ms':>12} {'read p99 ms':>12} "
        f"{'cold ms':>8} {'open s':>8}"
    ]
    for row in results["sizes"]:
        read = row["read"]
        lines.append(
            f"{row['records']:>10,} {row['segments']:>9} {row['segment_bytes'] / 1e6:>7.1f} "
            f"{read['p50_ms']:>12.3f} {read['p99_ms']:>12.3f} {read['cold_max_ms']:>8.1f} "
            f"{row['open']['open_s']:>8.3f}"
        )
    goal = results["target"]
    if goal["status"] != "NOT RUN":
        lines.append(
            f"{goal['large']:,} vs {goal['small']:,}: read p99 x{goal['read_p99_growth']:.2f} "
            f"({goal['read_p99_ms']:.3f} ms), open x{goal['open_growth']:.2f}: {goal['status']}"
        )
    return "\n".join(lines)


def markdown_section(results: JsonDict | None, before: JsonDict | None = None) -> str:
    """The "Reads by index and opens" section of docs/benchmarks.md ('' without results);
    ``before``: the same bench run on an earlier tree, shown in rows of its own."""
    if results is None:
        return ""
    rows = []
    runs: list[tuple[str, JsonDict]] = [("", results)]
    if before is not None:
        runs.append((f" ({before.get('tree', 'before')})", before))
    for label, run in runs:
        for row in run["sizes"]:
            read = row["read"]
            rows.append(
                f"| {row['records']:,}{label} | {row['segments']} | "
                f"{row['segment_bytes'] / 1e6:,.1f} | "
                f"{read['p50_ms']:.3f} / {read['p99_ms']:.3f} | {read['cold_max_ms']:.1f} | "
                f"{row['open']['open_s'] * 1e3:,.0f} |"
            )
    goal = results["target"]
    if goal["status"] == "NOT RUN":
        verdict = "Targets not run (one size only)."
    else:
        verdict = (
            f"At {goal['large']:,} against {goal['small']:,} records: read p99 "
            f"x{goal['read_p99_growth']:.2f} ({goal['read_p99_ms']:.3f} ms; target within "
            f"{GROWTH_LIMIT}x and under {READ_P99_LIMIT_MS:g} ms), open for write "
            f"x{goal['open_growth']:.2f} (target within {GROWTH_LIMIT}x): **{goal['status']}**."
        )
    params = results["params"]
    return "\n".join(
        [
            "## Reads by index and opens for write",
            "",
            "One log with the workload's default chains, grown in place from one size to the "
            f"next. At each size: {params['reads']} random single-record reads "
            "(`read_indexed(chain, i, i + 1)`, chains weighted by size) on one read-only handle "
            "after one cold read of each chain (its check against the signed head; the worst "
            f"is shown), and the median of {params['repeat']} opens for write (every chain's "
            "writer) with the benchmark passphrase's cheap KDF.",
            "",
            "| records | segment files | MB | read p50 / p99 ms | cold read ms "
            "| open for write ms |",
            "|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            verdict,
        ]
    )


def main(argv: Sequence[str] | None = None) -> JsonDict:
    parser = common_parser("Reads by index and opens for write at two log sizes.", 0)
    parser.add_argument("--sizes", type=int_list, default=list(SIZES), help="e.g. 100000,1000000")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}")
    parser.add_argument("--reads", type=int, default=READS, help="random reads per size")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="opens per size (median)")
    parser.add_argument("--chunk", type=int, default=CHUNK, help="records generated at a time")
    args: Any = parser.parse_args(argv)
    sizes = list(QUICK_SIZES) if args.quick else list(args.sizes)
    results = run(
        sizes, args.seed, args.dir, reads=args.reads, repeat=args.repeat, chunk=args.chunk
    )
    return publish(args.results_dir, NAME, results, format_table(results))


if __name__ == "__main__":
    main()
