"""Where a record's write time goes: each stage of the write path timed in isolation.

Every stage runs alone, on the same records, through the library's own functions, a block at a
time as the writer calls them, with the inputs it needs prepared beforehand by the stages before
it: validation (``parse_record``), encode (``codec.encode_records``), time and period, salt
(``PeriodKeys.leaf_salts``, batched per block as ``append_many`` does and one call per record as
``append`` does), leaf (``_fast.leaf_hashes``), tree (``merkle.CompactRange.extend`` and
``root`` per block), compress (``FrameCodec.compress_many`` with a dictionary trained per
chain), encrypt (block key derivation and AES-GCM per frame, with nonce and associated data),
block (``pack_block``: header, lengths, frame digests, block hash) and I/O (one write and one
fdatasync per block). Records are grouped by chain (= kind) and cut into blocks of 4096 exactly
as the writer does.

Next to the stages, the same records go through ``AuditLog.append_many`` in a log that holds
them once already (its keys and dictionaries exist: the steady state of a period); what that
costs beyond the sum of the stages is the glue (lists, slicing, locks, bookkeeping). The same
call in a fresh log adds each chain's one-off set-up. A cProfile of the steady-state call lists
the functions that take the most time of their own, and two what-ifs measure cheap changes:
zstd level 1 (the codec's) against level 3, and the time a chain's dictionary takes to train.
"""

from __future__ import annotations

import cProfile
import gc
import os
import pstats
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import floordiv
from pathlib import Path
from typing import Any, Final

import zstandard

from auditlog import LogConfig, Record, parse_record
from auditlog._fast import concat_each, leaf_hashes, prefix_each
from auditlog._fs import write_all
from auditlog.codec import ZSTD_LEVEL, FrameCodec, encode_record, encode_records, train_dictionary
from auditlog.crypto.keys import PeriodKeys
from auditlog.merkle import CompactRange
from auditlog.segment.blocks import pack_block
from auditlog.segment.format import BlockHeader, frame_nonces
from auditlog.segment.frames import origin_prefix
from auditlog.segment.pending import micros_of as _micros_of
from auditlog.segment.writer import _U64
from benchmarks._harness import (
    JsonDict,
    common_parser,
    create_bench_log,
    fresh_dir,
    frozen_heap,
    per_record_us,
    publish,
    workload_records,
)
from benchmarks._machine import describe_machine

NAME: Final = "profile"
# The stages run with the library's defaults, as append_many does in the benches.
_DEFAULTS: Final = LogConfig()
BLOCK: Final = _DEFAULTS.block_max_records
DICTIONARY_SAMPLES: Final = _DEFAULTS.dictionary_samples  # a period's first records train it
DICTIONARY_BYTES: Final = _DEFAULTS.dictionary_bytes
ORIGIN: Final = "bench.example/auditlog"


@dataclass
class ChainInputs:
    """One chain's records and every intermediate product of the write path, precomputed."""

    chain: str
    records: list[Record]
    dicts: list[dict[str, Any]]
    keys: PeriodKeys
    codec: FrameCodec
    canonical: list[bytes] = field(default_factory=list)
    salts: list[bytes] = field(default_factory=list)  # one joined salt string per block
    leaves: list[bytes] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)  # compressed plaintexts
    sealed: list[list[bytes]] = field(default_factory=list)  # encrypted frames, per block

    def blocks(self) -> range:
        return range(0, len(self.records), BLOCK)


Stage = Callable[[list[ChainInputs], Path], None]


def prepare(records: list[Record]) -> list[ChainInputs]:
    """Group records by chain and run the whole pipeline once, untimed, to make each input."""
    chains = []
    for chain, items in sorted(_by_chain(records).items()):
        keys = PeriodKeys(0, os.urandom(32))
        canonical = [encode_record(r) for r in items]
        chains.append(
            ChainInputs(
                chain=chain,
                records=items,
                dicts=[r.model_dump(mode="json", exclude_none=True) for r in items],
                keys=keys,
                codec=FrameCodec(_dictionary(canonical)),
                canonical=canonical,
            )
        )
    for inputs in chains:
        _fill(inputs)
    return chains


def _by_chain(records: list[Record]) -> dict[str, list[Record]]:
    """``records`` grouped by chain (= kind), as the writer groups them, in order."""
    by_chain: dict[str, list[Record]] = {}
    for record in records:
        by_chain.setdefault(str(record.kind), []).append(record)
    return by_chain


def _dictionary(canonical: list[bytes]) -> bytes | None:
    if len(canonical) < DICTIONARY_SAMPLES:
        return None  # the writer compresses without a dictionary until it has enough samples
    return train_dictionary(canonical[:DICTIONARY_SAMPLES], DICTIONARY_BYTES)


def _fill(inputs: ChainInputs) -> None:
    for first in inputs.blocks():
        count = min(BLOCK, len(inputs.records) - first)
        salts = inputs.keys.leaf_salts(first, count)
        inputs.salts.append(salts)
        inputs.leaves.extend(leaf_hashes(salts, inputs.canonical[first : first + count]))
    inputs.frames = [inputs.codec.compress(c) for c in inputs.canonical]
    inputs.sealed = [_encrypt_block(inputs, first) for first in inputs.blocks()]


def _encrypt_block(inputs: ChainInputs, first: int) -> list[bytes]:
    # As the writer does it: the block key, then AES-GCM of each frame with its position nonce
    # and its AAD (origin, index, leaf), the loops as chained map calls.
    aead = inputs.keys.frame_aead(os.urandom(16))
    prefix = origin_prefix(ORIGIN)
    leaves = inputs.leaves[first : first + BLOCK]
    frames = inputs.frames[first : first + BLOCK]
    indexes = map(_U64.pack, range(first, first + len(leaves)))
    aads = concat_each(prefix_each(prefix, indexes), leaves)
    return list(map(aead.encrypt, frame_nonces(len(leaves)), frames, aads))


# -- the stages, each a loop over every record of every chain ---------------------------------


def stage_validation(chains: list[ChainInputs], _: Path) -> None:
    for inputs in chains:
        for item in inputs.dicts:
            parse_record(item)


def stage_encode(chains: list[ChainInputs], _: Path) -> None:
    for inputs in chains:
        for first in inputs.blocks():
            encode_records(inputs.records[first : first + BLOCK])


def stage_time(chains: list[ChainInputs], _: Path) -> None:
    period_us = _DEFAULTS.period_seconds * 1_000_000
    for inputs in chains:
        for first in inputs.blocks():
            times = _micros_of(inputs.records[first : first + BLOCK])
            list(map(floordiv, times, repeat(period_us)))


def stage_salt_batched(chains: list[ChainInputs], _: Path) -> None:
    for inputs in chains:
        for first in inputs.blocks():
            inputs.keys.leaf_salts(first, min(BLOCK, len(inputs.records) - first))


def stage_salt_single(chains: list[ChainInputs], _: Path) -> None:
    for inputs in chains:
        leaf_salts = inputs.keys.leaf_salts
        for index in range(len(inputs.records)):
            leaf_salts(index, 1)


def stage_leaf(chains: list[ChainInputs], _: Path) -> None:
    for inputs in chains:
        canonical = inputs.canonical
        for block, first in enumerate(inputs.blocks()):
            leaf_hashes(inputs.salts[block], canonical[first : first + BLOCK])


def stage_tree(chains: list[ChainInputs], _: Path) -> None:
    for inputs in chains:
        tree = CompactRange(0, 0)
        for first in inputs.blocks():
            # As the writer does: the block's leaves joined, stride nodes collected for tiles.
            tree.extend_joined(b"".join(inputs.leaves[first : first + BLOCK]), [])
            tree.root()


def stage_compress(chains: list[ChainInputs], _: Path) -> None:
    for inputs in chains:
        for first in inputs.blocks():
            inputs.codec.compress_many(inputs.canonical[first : first + BLOCK])


def stage_encrypt(chains: list[ChainInputs], _: Path) -> None:
    for inputs in chains:
        for first in inputs.blocks():
            _encrypt_block(inputs, first)


def stage_block(chains: list[ChainInputs], _: Path) -> None:
    for inputs in chains:
        for block, first in enumerate(inputs.blocks()):
            _pack(inputs, block, first)


def stage_io(chains: list[ChainInputs], directory: Path) -> None:
    entries = [
        _pack(inputs, block, first)
        for inputs in chains
        for block, first in enumerate(inputs.blocks())
    ]
    fd = os.open(directory / "segment", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for entry in entries:
            write_all(fd, entry)
            os.fdatasync(fd)
    finally:
        os.close(fd)


def _pack(inputs: ChainInputs, block: int, first: int) -> bytes:
    sealed = inputs.sealed[block]
    header = BlockHeader(
        count=len(sealed),
        first_index=first,
        tree_size=first + len(sealed),
        period=0,
        dictionary_id=0,
        min_time=0,
        max_time=0,
        block_salt=bytes(16),
        prev_hash=bytes(32),
        tree_root=bytes(32),
    )
    entry, _ = pack_block(header, b"".join(inputs.leaves[first : first + BLOCK]), sealed)
    return entry


@dataclass(frozen=True, slots=True)
class StageSpec:
    key: str
    what: str
    run: Stage
    in_append_many: bool  # counted in the sum that append_many is compared with


_IN, _OUT = True, False  # whether append_many pays the stage
STAGES: Final = (
    StageSpec("validation", "parse_record(dict), pydantic: case (c) only", stage_validation, _OUT),
    StageSpec("encode", "codec.encode_records: canonical msgpack", stage_encode, _IN),
    StageSpec("time", "occurred_at in µs and the period of each record", stage_time, _IN),
    StageSpec("salt", "PeriodKeys.leaf_salts, one AES-ECB call a block", stage_salt_batched, _IN),
    StageSpec("salt (append)", "leaf_salts(i, 1): what append() pays", stage_salt_single, _OUT),
    StageSpec("leaf", "SHA-256(0x00 || salt || record), one C call a block", stage_leaf, _IN),
    StageSpec("tree", "CompactRange.extend_joined + root() per block", stage_tree, _IN),
    StageSpec(
        "compress", "FrameCodec.compress_many: zstd, one C call a block", stage_compress, _IN
    ),
    StageSpec("encrypt", "block key (HKDF), AES-GCM per frame, nonce, AAD", stage_encrypt, _IN),
    StageSpec("block", "pack_block: the block's hashes, header and bytes", stage_block, _IN),
    StageSpec("I/O", "write + fdatasync per block of 4096", stage_io, _IN),
)


def _time_stage(stage: StageSpec, chains: list[ChainInputs], scratch: Path, repeat: int) -> float:
    """Best of ``repeat`` runs: for a stage in isolation the minimum is the least noisy estimate."""
    best = float("inf")
    for _ in range(repeat):
        with fresh_dir(scratch, "profile-io") as directory:
            gc.collect()
            start = time.perf_counter()
            stage.run(chains, directory)
            best = min(best, time.perf_counter() - start)
    return best


def _time_append_many(records: list[Record], scratch: Path, repeat: int, *, warm: bool) -> float:
    """Best of ``repeat`` timed ``append_many`` calls of ``records`` into a fresh log.

    ``warm``: the records are appended once, untimed, before the timed call, so the chain's
    data key, dictionary and segment file already exist: what every later record of a period
    costs. Cold: those one-off costs of a (chain, period) are inside the time.
    """
    best = float("inf")
    for _ in range(repeat):
        with (
            fresh_dir(scratch, "profile-log") as directory,
            create_bench_log(directory / "log") as log,
        ):
            if warm:
                log.append_many(_warm_up_records(records))
            gc.collect()
            start = time.perf_counter()
            log.append_many(records)
            best = min(best, time.perf_counter() - start)
    return best


def _warm_up_records(records: list[Record]) -> list[Record]:
    """``records``, plus the records of small chains repeated until each chain has enough
    samples to train its dictionary: after these, no chain trains one in the timed pass."""
    extra = []
    for items in _by_chain(records).values():
        if len(items) < DICTIONARY_SAMPLES:
            extra.extend(items * (DICTIONARY_SAMPLES // len(items)))
    return records + extra


def what_ifs(chains: list[ChainInputs], records: int, repeat: int) -> JsonDict:
    """The compression level, measured on the same records as the stages: the codec's level 1
    against level 3 (same frame format, same dictionaries), which it used before; and the
    one-off cost of training a chain's dictionary."""
    level_3_s = level_1_s = float("inf")
    # Both levels through the same loop of bare zstd calls, timed alternately, so that their
    # difference is the level's alone and not machine drift.
    for _ in range(repeat):
        level_3_s = min(level_3_s, _time_compressors(chains, 3))
        level_1_s = min(level_1_s, _time_compressors(chains, ZSTD_LEVEL))
    bytes_1 = sum(len(frame) - 1 for inputs in chains for frame in inputs.frames)
    bytes_3 = sum(
        len(_compressor(inputs.codec.dictionary, 3).compress(c))
        for inputs in chains
        for c in inputs.canonical
    )
    return {
        "compress_level_3_us_per_record": per_record_us(level_3_s, records),
        "compress_level_1_us_per_record": per_record_us(level_1_s, records),
        "compressed_bytes_level_3_per_record": bytes_3 / records,
        "compressed_bytes_level_1_per_record": bytes_1 / records,
        "training_ms_per_chain": _training_ms_per_chain(chains),
    }


def _training_ms_per_chain(chains: list[ChainInputs]) -> float | None:
    """What ``codec.train_dictionary`` takes for one chain's samples (None: no chain had enough).

    The writer trains inside the first flush of a (chain, period) that has enough samples, so
    this is also a one-off delay of that flush and of the receipts waiting on it.
    """
    trained = [inputs for inputs in chains if len(inputs.canonical) >= DICTIONARY_SAMPLES]
    if not trained:
        return None
    start = time.perf_counter()
    for inputs in trained:
        _dictionary(inputs.canonical)
    return (time.perf_counter() - start) / len(trained) * 1e3


def _time_compressors(chains: list[ChainInputs], level: int) -> float:
    compressors = [_compressor(inputs.codec.dictionary, level) for inputs in chains]
    gc.collect()
    start = time.perf_counter()
    for inputs, compressor in zip(chains, compressors, strict=True):
        compress = compressor.compress
        for canonical in inputs.canonical:
            compress(canonical)
    return time.perf_counter() - start


def _compressor(dictionary: bytes | None, level: int) -> zstandard.ZstdCompressor:
    """A compressor with the codec's frame parameters (magic-less, no checksum) at ``level``."""
    params = zstandard.ZstdCompressionParameters.from_level(
        level,
        format=zstandard.FORMAT_ZSTD1_MAGICLESS,
        write_checksum=0,
        write_content_size=1,
        write_dict_id=0,
    )
    zdict = zstandard.ZstdCompressionDict(dictionary) if dictionary else None
    return zstandard.ZstdCompressor(dict_data=zdict, compression_params=params)


def _cprofile(records: list[Record], scratch: Path, top: int) -> list[JsonDict]:
    """The functions with the most time of their own in one profiled ``append_many``."""
    with (
        fresh_dir(scratch, "profile-cprofile") as directory,
        create_bench_log(directory / "log") as log,
    ):
        log.append_many(_warm_up_records(records))  # profile the steady state, like the stages
        profiler = cProfile.Profile()
        profiler.enable()
        log.append_many(records)
        profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, function), (_, calls, own, cumulative, _) in entries.items():
        rows.append(
            {
                "function": _short_location(filename, line, function),
                "calls": calls,
                "own_us_per_record": own / len(records) * 1e6,
                "cumulative_us_per_record": cumulative / len(records) * 1e6,
            }
        )
    rows.sort(key=lambda row: row["own_us_per_record"], reverse=True)
    return rows[:top]


def _short_location(filename: str, line: int, function: str) -> str:
    if filename == "~":
        return function  # a builtin, e.g. "<method 'compress' of ...>"
    parts = Path(filename).parts
    for anchor in ("auditlog", "site-packages", "lib"):
        if anchor in parts:
            start = parts.index(anchor) + (anchor != "auditlog")
            return f"{'/'.join(parts[start:])}:{line}({function})"
    return f"{Path(filename).name}:{line}({function})"


def run(records: int, seed: int, scratch: Path, *, repeat: int = 3, top: int = 15) -> JsonDict:
    """Time every stage in isolation and ``append_many`` whole, on the same records."""
    machine = describe_machine(scratch)
    items = workload_records(records, seed)
    chains = prepare(items)
    with frozen_heap():
        stages = [_stage_row(stage, chains, scratch, repeat, records) for stage in STAGES]
        cold = _time_append_many(items, scratch, repeat, warm=False)
        steady = _time_append_many(items, scratch, repeat, warm=True)
        what_if = what_ifs(chains, records, repeat)
        top_functions = _cprofile(items, scratch, top)
    return {
        "bench": NAME,
        "machine": machine,
        "params": {"records": records, "seed": seed, "repeat": repeat, "block": BLOCK},
        "stages": stages,
        "append_many_us_per_record": per_record_us(steady, records),
        "append_many_cold_us_per_record": per_record_us(cold, records),
        "stage_sum_us_per_record": sum(s["us_per_record"] for s in stages if s["in_append_many"]),
        "chains": len(chains),
        "what_if": what_if,
        "cprofile_top": top_functions,
    }


def _stage_row(
    stage: StageSpec, chains: list[ChainInputs], scratch: Path, repeat: int, records: int
) -> JsonDict:
    seconds = _time_stage(stage, chains, scratch, repeat)
    return {
        "stage": stage.key,
        "what": stage.what,
        "us_per_record": per_record_us(seconds, records),
        "in_append_many": stage.in_append_many,
    }


def format_table(results: JsonDict) -> str:
    lines = [f"{'stage':<20} {'us/record':>10}  what"]
    for stage in results["stages"]:
        lines.append(f"{stage['stage']:<20} {stage['us_per_record']:>10.2f}  {stage['what']}")
    total = results["append_many_us_per_record"]
    summed = results["stage_sum_us_per_record"]
    cold = results["append_many_cold_us_per_record"]
    lines += [
        f"{'sum of stages':<20} {summed:>10.2f}  (validation, per-append salt excluded)",
        f"{'append_many':<20} {total:>10.2f}  measured whole, same records, warm log",
        f"{'glue':<20} {total - summed:>10.2f}  append_many minus the stages",
        f"{'append_many (cold)':<20} {cold:>10.2f}  fresh log: keys, dictionaries, files",
    ]
    what = results["what_if"]
    lines.append(
        f"what if: zstd level 1 {what['compress_level_1_us_per_record']:.2f} vs level 3 "
        f"{what['compress_level_3_us_per_record']:.2f} us/record, "
        f"{what['compressed_bytes_level_1_per_record']:.1f} vs "
        f"{what['compressed_bytes_level_3_per_record']:.1f} B"
    )
    if what["training_ms_per_chain"] is not None:
        lines.append(f"dictionary training: {what['training_ms_per_chain']:.0f} ms per chain")
    lines.append("top functions by own time (cProfile, us/record; profiling inflates them):")
    for row in results["cprofile_top"][:10]:
        lines.append(f"  {row['own_us_per_record']:>8.2f}  {row['function']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> JsonDict:
    parser = common_parser("Per-record cost of each write-path stage.", default_records=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage; the best is kept")
    args = parser.parse_args(argv)
    results = run(args.records, args.seed, args.dir, repeat=args.repeat)
    return publish(args.results_dir, NAME, results, format_table(results))


if __name__ == "__main__":
    main()
