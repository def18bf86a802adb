"""The read side (issue 5, part 4), on one log written once before any timing.

- Raw SHA-256 over the log's segment bytes, held in memory: the limit for keyless verification,
  measured in the same run on the same bytes.
- Keyless verify (``verify(keyless=True)``): MB/s and records/s; no key is read. In one
  process (``workers=1``) and on every core (a process pool started and warmed before timing,
  passed as ``executor=``: chains are the unit of work).
- The SHA-256 the format makes keyless verification do, counted in 64-byte compression blocks
  per record (each frame's digest, the block hash's input, the tree nodes), against the raw
  count of the same bytes: the ceiling of keyless/SHA-256 in format v2.
- Full verify (decrypt every frame, re-hash every leaf): records/s, one process and every
  core; and ``append_many``'s rate on the same records, for the ratio.
- Read by index: random single indexes (``read_indexed(chain, i, i + 1)``), latency p50/p99.
- One subject's records: a scan of every chain with a filter on ``subject`` (there is no
  subject index yet), for the workload's most active subject.

The segment files are read once before timing, so every case reads from the page cache: these
are CPU costs, not disk costs.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import struct
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final

from auditlog import AuditLog, Record, _fast
from auditlog.merkle import CompactRange
from auditlog.segment.check import ChainCheck
from auditlog.segment.scan import SegmentScan, list_segments, scan_segment
from benchmarks._harness import (
    JsonDict,
    common_parser,
    create_bench_log,
    fresh_dir,
    frozen_heap,
    median,
    open_bench_log,
    per_record_us,
    percentile,
    publish,
    workload_records,
)
from benchmarks._machine import describe_machine

NAME: Final = "read"


def _segment_bytes(log_path: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(log_path.glob("chains/*/segments/*"))]


def _timed(action: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` runs of ``action``."""
    runs = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        action()
        runs.append(time.perf_counter() - start)
    return median(runs)


def raw_sha256(segments: list[bytes], repeat: int) -> float:
    def hash_all() -> None:
        for data in segments:
            hashlib.sha256(data).digest()

    return _timed(hash_all, repeat)


def sha256_call(repeat: int) -> float:
    """Seconds of one ``hashlib.sha256(node).digest()`` on a 65-byte tree node: the cost per
    call that Python pays for every small hash, whatever the loop around it."""
    node = b"\x01" + bytes(64)
    calls = 100_000
    sha256 = hashlib.sha256

    def hash_many() -> None:
        for _ in range(calls):
            sha256(node).digest()

    return _timed(hash_many, repeat) / calls


def node_hash(repeat: int) -> float:
    """Seconds per tree node of ``_fast.parents`` (the C loop where built) over 65,536 pairs:
    what hashing one 65-byte node costs once no Python runs per node."""
    nodes = bytes(range(256)) * (65_536 * 64 // 256)

    def hash_level() -> None:
        _fast.parents(nodes)

    return _timed(hash_level, repeat) / 65_536


def keyless_breakdown(log_path: Path, repeat: int) -> JsonDict:
    """Seconds of the two halves of keyless verification, each alone on in-memory segments:
    ``scan_segment`` (entry parsing, per-block SHA-256, frame slicing) and ``ChainCheck.feed``
    (indexes, hash chain, Merkle tree from the leaves, seals); and of the tree alone."""
    with AuditLog.open(log_path, mode="read") as log:
        origins = {name: log.chain_origin(name) for name in log.chains()}
    chains = []
    for name in origins:
        files = list_segments(log_path / "chains" / name / "segments")
        chains.append((name, [(seq, path, path.read_bytes()) for seq, path in files]))

    def scan_all() -> list[tuple[str, list[SegmentScan]]]:
        return [
            (
                name,
                [
                    scan_segment(data, path, seq, chain=name, allow_torn=True)
                    for seq, path, data in files
                ],
            )
            for name, files in chains
        ]

    scans = scan_all()

    def check_all() -> None:
        for name, chain_scans in scans:
            check = ChainCheck.start(name, origins[name])
            for scan in chain_scans:
                check.feed(scan)

    leaves = [
        [bytes(block.leaves) for scan in chain_scans for block in scan.blocks]
        for _, chain_scans in scans
    ]

    def tree_only() -> None:
        for chain_leaves in leaves:
            tree = CompactRange(0, 0)
            for joined in chain_leaves:
                tree.extend_joined(joined)
                tree.root()

    return {
        "scan_s": _timed(scan_all, repeat),
        "chain_check_s": _timed(check_all, repeat),
        "tree_s": _timed(tree_only, repeat),
    }


def verify(
    log_path: Path, *, keyless: bool, repeat: int, executor: Executor | None = None
) -> float:
    """Median seconds of a whole verification; in this process unless ``executor`` is given."""
    # Trees before issue 12 have no executor/workers parameters: they verify in one process.
    options: dict[str, Any] = {}
    if _PARALLEL:
        options = {"executor": executor} if executor is not None else {"workers": 1}
    elif executor is not None:
        return float("nan")

    def check() -> None:
        # Keyless runs without any passphrase, as an outside auditor would run it.
        if keyless:
            opened = AuditLog.open(log_path, mode="read")
        else:
            opened = open_bench_log(log_path, mode="read")
        with opened as log:
            log.verify(keyless=keyless, **options)

    return _timed(check, repeat)


_PARALLEL: Final = "executor" in AuditLog.verify.__code__.co_varnames


def warm_pool() -> ProcessPoolExecutor:
    """A process pool with a worker per core, its workers started and auditlog imported."""
    cores = len(os.sched_getaffinity(0))
    pool = ProcessPoolExecutor(cores, mp_context=get_context("spawn"))
    for done in [pool.submit(_import_auditlog) for _ in range(4 * cores)]:
        done.result()
    return pool


def _import_auditlog() -> bool:
    import auditlog.log.verify  # noqa: F401 - what a worker needs, loaded before timing

    return True


def hash_blocks(segments: list[bytes]) -> tuple[int, int]:
    """SHA-256 compression blocks (64 bytes, padding included) keyless verification must run
    over these segments in format v2, and those of hashing the same bytes in one message.

    Per block entry: the block hash over header, leaves, lengths and one 32-byte digest per
    frame; each frame's own digest; the seal's hash; and the tree: one 65-byte node (two
    compressions) per leaf after a chain's first. Counted from the entries' lengths.
    """
    need = 0
    leaves = 0
    for data in segments:
        position = 32
        while position + 8 <= len(data):
            (length,) = struct.unpack_from(">I", data, position)
            body = position + 8
            if data[body] == 1:
                (count,) = struct.unpack_from(">I", data, body + 4)
                lengths = struct.unpack_from(f">{count}I", data, body + 128 + 32 * count)
                need += (128 + 68 * count + 9 + 63) // 64
                need += sum((n + 9 + 63) // 64 for n in lengths)
                leaves += count
            else:
                need += (length - 32 + 9 + 63) // 64
            position = body + length
    need += 2 * leaves
    raw = sum((len(data) + 9 + 63) // 64 for data in segments)
    return need, raw


def append_rate(items: list[Record], scratch: Path, repeat: int) -> float:
    """Median seconds of ``append_many`` of ``items`` into a fresh log (closing included)."""
    runs = []
    for number in range(repeat):
        with fresh_dir(scratch, f"append-{number}") as directory:
            gc.collect()
            start = time.perf_counter()
            with create_bench_log(directory / "log") as log:
                log.append_many(items)
            runs.append(time.perf_counter() - start)
    return median(runs)


def random_reads(log_path: Path, records: list[Record], reads: int, seed: int) -> list[float]:
    """Latency of each of ``reads`` single-record reads at random (chain, index) positions.

    Each chain is read once first, untimed: a handle's first read of a chain checks it
    against the signed head (bench_index reports that cold read apart).
    """
    sizes = Counter(str(record.kind) for record in records)
    chains = sorted(sizes)
    rng = random.Random(seed)
    latencies = []
    with open_bench_log(log_path, mode="read") as log:
        for chain in chains:
            next(iter(log.read_indexed(chain, 0, 1)))
        for _ in range(reads):
            chain = rng.choices(chains, weights=[sizes[c] for c in chains])[0]
            index = rng.randrange(sizes[chain])
            start = time.perf_counter()
            found = next(iter(log.read_indexed(chain, index, index + 1)))
            latencies.append(time.perf_counter() - start)
            if found[0] != index:
                raise RuntimeError(f"asked for {chain}[{index}], got index {found[0]}")
    return latencies


def subject_scan(log_path: Path, subject: str) -> tuple[float, int, int]:
    """Seconds, records scanned and records found for one subject by scanning every chain."""
    scanned = 0
    found = 0
    start = time.perf_counter()
    with open_bench_log(log_path, mode="read") as log:
        for chain in log.chains():
            for _, record in log.read_indexed(chain):
                scanned += 1
                found += record.subject == subject
    return time.perf_counter() - start, scanned, found


def run(records: int, seed: int, scratch: Path, *, repeat: int = 3, reads: int = 200) -> JsonDict:
    machine = describe_machine(scratch)
    items = workload_records(records, seed)
    subject, expected = Counter(record.subject for record in items).most_common(1)[0]
    with fresh_dir(scratch, "read") as directory, frozen_heap():
        log_path = directory / "log"
        with create_bench_log(log_path) as log:
            log.append_many(items)
        segments = _segment_bytes(log_path)  # also warms the page cache for every case
        size = sum(len(data) for data in segments)
        sha_s = raw_sha256(segments, repeat)
        need_blocks, raw_blocks = hash_blocks(segments)
        call_s = sha256_call(repeat)
        node_s = node_hash(repeat)
        keyless_s = verify(log_path, keyless=True, repeat=repeat)
        breakdown = keyless_breakdown(log_path, repeat)
        full_s = verify(log_path, keyless=False, repeat=repeat)
        with warm_pool() as pool:
            keyless_all_s = verify(log_path, keyless=True, repeat=repeat, executor=pool)
            full_all_s = verify(log_path, keyless=False, repeat=repeat, executor=pool)
        append_s = append_rate(items, directory, repeat)
        latencies = random_reads(log_path, items, reads, seed)
        scan_s, scanned, found = subject_scan(log_path, subject)
    if found != expected or scanned != records:
        raise RuntimeError(f"subject scan found {found}/{expected} in {scanned}/{records}")
    return {
        "bench": NAME,
        "machine": machine,
        "params": {"records": records, "seed": seed, "repeat": repeat, "reads": reads},
        "segment_bytes": size,
        "segments": len(segments),
        "largest_segment_bytes": max(len(data) for data in segments),
        "sha256_mb_per_s": size / sha_s / 1e6,
        "keyless_mb_per_s": size / keyless_s / 1e6,
        "keyless_records_per_s": records / keyless_s,
        "keyless_vs_sha256": sha_s / keyless_s,
        "keyless_all_cores_mb_per_s": size / keyless_all_s / 1e6,
        "keyless_all_cores_vs_sha256": sha_s / keyless_all_s,
        "cores": len(os.sched_getaffinity(0)),
        "sha256_blocks_needed": need_blocks,
        "sha256_blocks_raw": raw_blocks,
        "keyless_ceiling_vs_sha256": raw_blocks / need_blocks,
        "keyless_breakdown_us_per_record": {
            name: per_record_us(seconds, records) for name, seconds in breakdown.items()
        },
        "sha256_us_per_record": per_record_us(sha_s, records),
        "sha256_node_call_us": call_s * 1e6,
        "node_hash_us": node_s * 1e6,
        "native": _fast.NATIVE,
        "full_mb_per_s": size / full_s / 1e6,
        "full_records_per_s": records / full_s,
        "full_all_cores_records_per_s": records / full_all_s,
        "append_many_records_per_s": records / append_s,
        "full_vs_append": append_s / full_s,
        "full_all_cores_vs_append": append_s / full_all_s,
        # For benchmarks.compare_trees: the rates it compares between two trees.
        "cases": [
            {
                "key": "a",
                "name": "keyless verify, one process",
                "records_per_s": records / keyless_s,
            },
            {
                "key": "b",
                "name": "keyless verify, all cores",
                "records_per_s": records / keyless_all_s,
            },
            {"key": "c", "name": "keyed verify, one process", "records_per_s": records / full_s},
            {"key": "d", "name": "keyed verify, all cores", "records_per_s": records / full_all_s},
            {"key": "e", "name": "append_many (same records)", "records_per_s": records / append_s},
            {"key": "f", "name": "raw SHA-256 (records' bytes)", "records_per_s": records / sha_s},
        ],
        "read_index_p50_ms": percentile(latencies, 0.5) * 1e3,
        "read_index_p99_ms": percentile(latencies, 0.99) * 1e3,
        "read_index_per_s": len(latencies) / sum(latencies),
        "subject_records": found,
        "subject_scan_s": scan_s,
        "subject_scan_records_per_s": scanned / scan_s,
    }


def format_table(results: JsonDict) -> str:
    return "\n".join(
        [
            f"segments: {results['segments']} files, {results['segment_bytes'] / 1e6:.1f} MB",
            f"raw SHA-256        {results['sha256_mb_per_s']:>10,.0f} MB/s",
            f"keyless verify     {results['keyless_mb_per_s']:>10,.0f} MB/s  "
            f"{results['keyless_records_per_s']:>10,.0f} records/s  "
            f"({results['keyless_vs_sha256']:.0%} of SHA-256)",
            "keyless, us/record: "
            + ", ".join(
                f"{name} {value:.2f}"
                for name, value in results["keyless_breakdown_us_per_record"].items()
            )
            + f", raw SHA-256 {results['sha256_us_per_record']:.2f}",
            f"keyless, all cores {results['keyless_all_cores_mb_per_s']:>10,.0f} MB/s  "
            f"({results['keyless_all_cores_vs_sha256']:.0%} of one core's SHA-256, "
            f"{results['cores']} cores)",
            f"SHA-256 the format needs: {results['sha256_blocks_needed']:,} compressions "
            f"for {results['sha256_blocks_raw']:,} raw: keyless verify can reach at most "
            f"{results['keyless_ceiling_vs_sha256']:.0%} of SHA-256 in one process",
            f"full verify        {results['full_mb_per_s']:>10,.0f} MB/s  "
            f"{results['full_records_per_s']:>10,.0f} records/s  "
            f"({results['full_vs_append']:.2f}x append_many)",
            f"full, all cores    {results['full_all_cores_records_per_s']:>10,.0f} records/s  "
            f"({results['full_all_cores_vs_append']:.2f}x append_many)",
            f"append_many        {results['append_many_records_per_s']:>10,.0f} records/s",
            f"read by index      p50 {results['read_index_p50_ms']:.2f} ms, "
            f"p99 {results['read_index_p99_ms']:.2f} ms",
            f"one subject (scan) {results['subject_scan_s']:.2f} s for "
            f"{results['subject_records']} records "
            f"({results['subject_scan_records_per_s']:,.0f} records scanned/s)",
        ]
    )


def main(argv: Sequence[str] | None = None) -> JsonDict:
    parser = common_parser("Read side: verification and reads.", default_records=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is kept")
    parser.add_argument("--reads", type=int, default=200, help="random single-index reads")
    args = parser.parse_args(argv)
    results = run(args.records, args.seed, args.dir, repeat=args.repeat, reads=args.reads)
    return publish(args.results_dir, NAME, results, format_table(results))


if __name__ == "__main__":
    main()
