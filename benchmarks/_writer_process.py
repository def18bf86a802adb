"""A writer in its own process, for ``bench_scale``: ``python -m benchmarks._writer_process SPEC``.

A separate process measures what one writer costs on its own: its peak RSS is not mixed with
the parent's, and two of them can write two chains at once without sharing a GIL. ``SPEC`` is a
JSON object; the result is one JSON line on stdout.

Roles:

- ``stream``: create a log and append ``records`` workload records in chunks of ``chunk``
  (generated between timed calls, so memory stays bounded at any size); report write time,
  per-chunk rates, RSS before and after writing and its peak, bytes on disk.
- ``chain``: open an existing log for one chain, generate ``records`` and append them once
  untimed (the warm-up), print ``ready``, wait for a line on stdin (the start signal, so that
  two writers start together), then ``append_many`` them again to that chain; report start and
  end on the monotonic clock, which all processes share.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    JsonDict,
    create_bench_log,
    current_rss_bytes,
    directory_bytes,
    open_bench_log,
    peak_rss_bytes,
    workload_chunks,
    workload_records,
)


def stream(spec: dict[str, Any]) -> JsonDict:
    """Append ``spec['records']`` records chunk by chunk; time only the appends and the flush."""
    path = Path(spec["dir"]) / "log"
    total = int(spec["records"])
    chunk = int(spec["chunk"])
    chunks = workload_chunks(total, int(spec["seed"]), chunk)
    first = next(chunks, [])
    written = 0
    seconds = 0.0
    cpu_seconds = 0.0
    points: list[tuple[int, float]] = []  # (records written so far, records/s of that chunk)
    with create_bench_log(path) as log:
        rss_before = current_rss_bytes()
        batch = first
        while batch:
            # flush=False: blocks stay full across chunks; appends flush every 4096 records of
            # a chain as usual, and the final flush below writes the rest.
            start, cpu_start = time.perf_counter(), time.process_time()
            log.append_many(batch, flush=False)
            elapsed = time.perf_counter() - start
            cpu_seconds += time.process_time() - cpu_start
            seconds += elapsed
            written += len(batch)
            points.append((written, len(batch) / elapsed))
            batch = next(chunks, [])
        start, cpu_start = time.perf_counter(), time.process_time()
        log.flush()
        seconds += time.perf_counter() - start
        cpu_seconds += time.process_time() - cpu_start
        # Memory is read before the check below: stats() reads the chain's last segment whole,
        # which is the reader's cost, not the writer's.
        peak = peak_rss_bytes()
        rss_after = current_rss_bytes()
        records = log.stats().records
    if records != total:
        raise RuntimeError(f"expected {total} records in the log, found {records}")
    return {
        "records": total,
        "seconds": seconds,
        "records_per_s": total / seconds,
        # CPU time of the appends and the flush; wall-clock time minus it is mostly waiting for
        # fdatasync.
        "cpu_us_per_record": cpu_seconds / total * 1e6,
        "chunk_rates": points,
        "rss_before_bytes": rss_before,
        "peak_rss_bytes": peak,
        "rss_after_bytes": rss_after,
        "bytes_on_disk": directory_bytes(path),
    }


def chain(spec: dict[str, Any]) -> JsonDict:
    """Write one chain of an existing log once told to start; report when it ran."""
    name = str(spec["chain"])
    records = workload_records(int(spec["records"]), int(spec["seed"]))
    with open_bench_log(Path(spec["dir"]) / "log", chains=[name]) as log:
        # Warm the chain untimed: its data key, dictionary and segment file are made once per
        # (chain, period); the timed pass measures what every later record costs.
        log.append_many(records, chain=name)
        print("ready", flush=True)
        sys.stdin.readline()
        start = time.monotonic()
        log.append_many(records, chain=name)
        end = time.monotonic()
    return {"chain": name, "records": len(records), "start": start, "end": end}


ROLES = {"stream": stream, "chain": chain}


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = ROLES[spec["role"]](spec)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
