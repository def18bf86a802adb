"""The performance targets of issues 2, 5 and 12, checked against a run's results.

Each check says PASS or MISS (or NOT RUN when the run lacks the data), the measured value next
to the target, and for a miss: by how much, which per-record cost dominates (from the
bench_profile breakdown of the same machine) and what would close the gap.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Final

from benchmarks._harness import JsonDict
from benchmarks.targets_issue12 import evaluate as issue12

PASS: Final = "PASS"
MISS: Final = "MISS"
NOT_RUN: Final = "NOT RUN"

_ISSUE_2 = "issue 2"
_ISSUE_5 = "issue 5"
_BOTH = "issues 2, 5"
_KEYLESS_SOURCE = "issues 5, 12"


@dataclass(frozen=True, slots=True)
class TargetCheck:
    source: str
    target: str
    measured: str
    status: str
    shortfall: str = ""
    dominant: str = ""
    remedy: str = ""


Results = dict[str, JsonDict]  # bench name -> that bench's saved results


def evaluate(results: Results) -> list[TargetCheck]:
    """Every target, in the order of the issues."""
    write = results.get("write")
    profile = results.get("profile")
    return [
        _absolute_rate(write, profile),
        _bytes_ratio(write),
        _throughput_ratio(write, profile, "a", "d", 2.0),
        _throughput_ratio(write, profile, "a", "e", 0.8),
        _throughput_ratio(write, profile, "c", "d", 1.0),
        _keyless(results.get("read")),
        _flat_at_ten_million(results.get("scale")),
        _memory_at_ten_million(results.get("scale")),
        _two_writers(results.get("scale")),
        *(
            TargetCheck(source, target, measured, status, shortfall, remedy=remedy)
            for source, target, measured, status, shortfall, remedy in issue12(results)
        ),
    ]


# -- helpers ----------------------------------------------------------------------------------


def _case(write: JsonDict, key: str) -> JsonDict | None:
    return next((c for c in write["cases"] if c["key"] == key), None)


def _stages(profile: JsonDict | None, *, with_validation: bool = False) -> list[JsonDict]:
    """The profile's stages that the case pays, costliest first."""
    if profile is None:
        return []
    chosen = [
        s
        for s in profile["stages"]
        if s["in_append_many"] or (with_validation and s["stage"] == "validation")
    ]
    return sorted(chosen, key=lambda s: s["us_per_record"], reverse=True)


def _dominant(profile: JsonDict | None, *, with_validation: bool = False) -> str:
    """The costliest stages, and what a record costs in a warm and in a fresh log."""
    stages = _stages(profile, with_validation=with_validation)
    if profile is None or not stages:
        return "run bench_profile for the per-record breakdown"
    listed = ", ".join(f"{s['stage']} {s['us_per_record']:.1f}" for s in stages[:4])
    return (
        f"{stages[0]['stage']} ({listed} µs/record). In bench_profile, `append_many` writes a "
        f"record in {profile['append_many_us_per_record']:.1f} µs in a log whose keys and "
        f"dictionaries exist and in {profile['append_many_cold_us_per_record']:.1f} µs in a "
        f"fresh log of {profile['params']['records']:,} records: the difference is each "
        "chain's one-off set-up (data key, dictionary training, new files), which a period's "
        "real volume spreads to almost nothing"
    )


def _write_remedy(profile: JsonDict | None, measured_us: float, budget_us: float) -> str:
    """What would bring a write case from ``measured_us`` to ``budget_us`` µs/record."""
    if profile is None:
        return "run bench_profile to see which stage to cut."
    steady = profile["append_many_us_per_record"]
    excess = steady - budget_us
    if excess <= 0:
        return (
            f"bench_profile's steady state, {steady:.1f} µs/record, is within the budget of "
            f"{budget_us:.1f}: what this run adds on top is the one-off set-up of a new log's "
            "chains spread over its records, and any load from elsewhere on the machine "
            "(compare the wall-clock and CPU µs/record of the write table). A run of a "
            "period's real volume on an idle machine should meet the target; cheaper set-up "
            "helps small runs. " + _cheap_changes(profile)
        )
    stages = _stages(profile)
    largest = stages[0]
    if excess <= largest["us_per_record"]:
        scale = (
            f"even in the steady state ({steady:.1f} µs/record) {excess:.1f} µs must go, no "
            f"more than the costliest stage ({largest['stage']}, "
            f"{largest['us_per_record']:.1f} µs): halving the top two stages "
            f"({', '.join(s['stage'] for s in stages[:2])}) would about close it."
        )
    else:
        scale = (
            f"even in the steady state ({steady:.1f} µs/record) {excess:.1f} µs must go, more "
            f"than the costliest stage ({largest['stage']}, {largest['us_per_record']:.1f} µs): "
            "no single fix closes it. The hashing already runs in C (`auditlog._speedups`: "
            "leaves, tree, frame digests) and every other per-record loop is a chained `map` "
            "over a C call; what remains per record is those C calls themselves (msgpack of a "
            "dict that generated Python builds from the model, one zstd frame, one AES-GCM call "
            "through cryptography's Python API) and reading the pydantic model. Closing it needs "
            "encoding and encryption in native code behind one call per block, or one writer "
            "process per chain adding up to the rate (two processes: see Scaling)."
        )
    return f"{scale} {_cheap_changes(profile)}"


def _cheap_changes(profile: JsonDict) -> str:
    what = profile["what_if"]
    saved = what["compress_level_3_us_per_record"] - what["compress_level_1_us_per_record"]
    text = (
        "Taken already: zstd level 1 instead of 3 (saves "
        f"{saved:.1f} µs/record for {what['compressed_bytes_level_1_per_record']:.1f} instead of "
        f"{what['compressed_bytes_level_3_per_record']:.1f} compressed bytes), the whole block "
        "compressed in one C call, the leaf, tree and frame hashing in C (`auditlog._speedups`), "
        "the other per-record loops as chained `map` calls over C functions, addresses parsed "
        "by the C parser"
    )
    if what["training_ms_per_chain"] is not None:
        text += (
            f"; dictionary training ({what['training_ms_per_chain']:.0f} ms per (chain, "
            "period)) runs in a background thread since issue 12, started as soon as a period "
            "has its samples (a large block waits for it, a small flush does not)"
        )
    return text + "."


def _stage_cost(profile: JsonDict, name: str) -> float:
    return float(next(s["us_per_record"] for s in profile["stages"] if s["stage"] == name))


def _validation_remedy(profile: JsonDict | None, budget_us: float) -> str:
    if profile is None:
        return ""
    cost = _stage_cost(profile, "validation")
    share = "more than" if cost > budget_us else "part of"
    return (
        f"validation alone (pydantic: strict models with validators on addresses, ports, times "
        f"and sizes) costs {cost:.1f} µs/record, {share} the whole budget of {budget_us:.1f}. "
        "Taken already: addresses parsed by the C parser (`inet_pton`, property-tested against "
        "`ipaddress`) instead of `ipaddress.ip_address`, and one wrap validator per time "
        "instead of two. What remains is pydantic-core's own work (about 3 µs for a chat "
        "message with no Python validator at all) and one Python call per time, address, "
        "content and model (the cross-field rules); the rest of (c) is (a), and what closes "
        "(a)'s gaps closes it too."
    )


# -- the checks -------------------------------------------------------------------------------


def _absolute_rate(write: JsonDict | None, profile: JsonDict | None) -> TargetCheck:
    target = "(a) ≥ 150,000 records/s on one core"
    case = _case(write, "a") if write else None
    if case is None:
        return TargetCheck(_ISSUE_2, target, "—", NOT_RUN)
    value = case["records_per_s"]
    measured = f"{value:,.0f} records/s ({case['us_per_record']:.1f} µs/record)"
    if value >= 150_000:
        return TargetCheck(_ISSUE_2, target, measured, PASS)
    return TargetCheck(
        _ISSUE_2,
        target,
        measured,
        MISS,
        shortfall=(
            f"{150_000 / value:.1f}x too slow: the budget is 6.7 µs/record, "
            f"(a) spends {case['us_per_record']:.1f}"
        ),
        dominant=_dominant(profile),
        remedy=_write_remedy(profile, case["us_per_record"], 1e6 / 150_000),
    )


def _bytes_ratio(write: JsonDict | None) -> TargetCheck:
    target = "bytes/record of (a) ≤ 0.45x JSON lines (e)"
    if write is None or "bytes a/e" not in write["ratios"]:
        return TargetCheck(_BOTH, target, "—", NOT_RUN)
    ratio = write["ratios"]["bytes a/e"]
    a, e = _case(write, "a"), _case(write, "e")
    assert a is not None
    assert e is not None
    compact = write["workload"]["compact_json_bytes_per_record"]
    measured = (
        f"{ratio:.2f}x ({a['bytes_per_record']:.0f} vs {e['bytes_per_record']:.0f} B/record; "
        f"{a['bytes_per_record'] / compact:.2f}x of JSON without null fields, {compact:.0f} B)"
    )
    if ratio <= 0.45:
        return TargetCheck(_BOTH, target, measured, PASS)
    return TargetCheck(
        _BOTH,
        target,
        measured,
        MISS,
        shortfall=f"{ratio / 0.45 - 1:.0%} over the target",
        dominant=(
            "fixed per-record overhead: 32-byte leaf, 4-byte frame length, 16-byte GCM tag, "
            "1-byte codec tag (53 bytes) next to the compressed record; at small sizes also the "
            "dictionaries, keyring and manifest files"
        ),
        remedy=(
            "more records per run (fixed files amortise), a larger dictionary "
            "(LogConfig.dictionary_bytes) or more training samples; the 53 bytes of per-record "
            "integrity and encryption overhead are the floor of the format."
        ),
    )


def _throughput_ratio(
    write: JsonDict | None, profile: JsonDict | None, ours: str, peer: str, wanted: float
) -> TargetCheck:
    # Issue 12 asks the default multi-chain workload for (a)'s two ratios again.
    source = "issues 5, 12" if ours == "a" else _ISSUE_5
    target = f"({ours}) ≥ {wanted:.1f}x the records/s of ({peer})"
    key = f"{ours}/{peer}"
    if write is None or key not in write["ratios"]:
        return TargetCheck(source, target, "—", NOT_RUN)
    ratio = write["ratios"][key]
    mine, theirs = _case(write, ours), _case(write, peer)
    assert mine is not None
    assert theirs is not None
    # The CPU-time ratio, next to the wall-clock one, shows how much a busy machine moved it.
    cpu_ratio = theirs["cpu_us_per_record"] / mine["cpu_us_per_record"]
    measured = (
        f"{ratio:.2f}x ({mine['records_per_s']:,.0f} vs {theirs['records_per_s']:,.0f} "
        f"records/s; by CPU time {cpu_ratio:.2f}x)"
    )
    if ratio >= wanted:
        return TargetCheck(source, target, measured, PASS)
    budget = theirs["us_per_record"] / wanted
    return TargetCheck(
        source,
        target,
        measured,
        MISS,
        shortfall=(
            f"needs {wanted / ratio:.2f}x its speed: ({ours}) may spend {budget:.1f} µs/record, "
            f"it spends {mine['us_per_record']:.1f} ({mine['us_per_record'] - budget:.1f} too many)"
        ),
        dominant=_dominant(profile, with_validation=ours == "c"),
        remedy=(
            _validation_remedy(profile, budget)
            if ours == "c"
            else _write_remedy(profile, mine["us_per_record"], budget)
        ),
    )


def _keyless(read: JsonDict | None) -> TargetCheck:
    target = "keyless verify ≥ 50% of raw SHA-256 throughput"
    if read is None:
        return TargetCheck(_KEYLESS_SOURCE, target, "—", NOT_RUN)
    ratio = read["keyless_vs_sha256"]
    measured = (
        f"{ratio:.0%} ({read['keyless_mb_per_s']:,.0f} vs {read['sha256_mb_per_s']:,.0f} MB/s)"
    )
    if ratio >= 0.5:
        return TargetCheck(_KEYLESS_SOURCE, target, measured, PASS)
    parts = read["keyless_breakdown_us_per_record"]
    per_record = read["segment_bytes"] / read["params"]["records"]
    # What keyless verification must hash per record beyond the segment bytes once: the block
    # hash's input (leaf 32 + length 4 + frame digest 32 bytes), about half a 64-byte block of
    # padding and length for each frame digested on its own, and a 65-byte tree node, which
    # with its padding takes two blocks (128 bytes).
    ceiling = per_record / (per_record + 68 + 32 + 128)
    return TargetCheck(
        _KEYLESS_SOURCE,
        target,
        measured,
        MISS,
        shortfall=f"{0.5 / ratio:.1f}x too slow",
        dominant=_keyless_dominant(parts, read["sha256_us_per_record"], per_record),
        remedy=(
            "keyless verification hashes every record's frame on its own (the block hash is "
            "built from frame digests, so that redaction keeps it), the block hash's input "
            "(leaf, length, digest: 68 bytes a record) and one 65-byte tree node (two SHA-256 "
            f"blocks), so with {per_record:.0f} bytes a record even overhead-free code reaches "
            f"about {ceiling:.0%} of raw SHA-256: the target is beyond what this format allows "
            "on records this small. " + _native_state(read, per_record)
        ),
    )


def _native_state(read: JsonDict, per_record: float) -> str:
    node_us = read.get("node_hash_us")
    if read.get("native") and node_us is not None:
        block_us = read["sha256_us_per_record"] * 64 / per_record
        return (
            "The hashing already runs in C (`auditlog._speedups`, one call per block for the "
            f"frame digests and one per tree level): a 65-byte tree node costs {node_us:.2f} µs "
            f"there, against {block_us:.2f} µs for 64 bytes of raw SHA-256 over the segment, "
            "because each short message pays its own padding block and finalisation. What is "
            "left above that is Python per block (parsing, the chain check, seals) and the "
            "reading of the files; closing the rest of the gap would take a format whose block "
            "hash covers the frames in one pass (redaction would then need another way to keep "
            "hashes), not faster code."
        )
    return _python_floor(read, per_record)


def _python_floor(read: JsonDict, per_record: float) -> str:
    call_us = read.get("sha256_node_call_us")
    if call_us is None:
        return ""
    # Two small hashes a record (its frame's digest, one tree node), each a hashlib call.
    floor_us = 2 * call_us + read["sha256_us_per_record"]
    floor = per_record / floor_us / read["sha256_mb_per_s"]
    return (
        "This run used the pure-Python loops (`auditlog._speedups` not built): their loops over "
        "frames and tree nodes run in C (chained `map` calls), but each hash is a hashlib call "
        f"at {call_us:.2f} µs for one 65-byte node (a new OpenSSL digest context each time), "
        f"paid at least twice a record: pure Python cannot pass {floor:.0%} of raw SHA-256 on "
        "these records. Build the C extension (a C compiler and OpenSSL's headers at install "
        "time)."
    )


def _keyless_dominant(parts: JsonDict, sha256_us: float, per_record: float) -> str:
    halves = [
        (parts["scan_s"], f"parsing and block hashes (`scan_segment`) {parts['scan_s']:.2f}"),
        (
            parts["chain_check_s"],
            f"the chain check (`ChainCheck.feed`) {parts['chain_check_s']:.2f} (the Merkle "
            f"tree alone, timed apart: {parts['tree_s']:.2f})",
        ),
    ]
    halves.sort(reverse=True)
    return (
        f"the small hashes of {per_record:.0f}-byte records: {halves[0][1]} and "
        f"{halves[1][1]} µs/record, against {sha256_us:.2f} µs/record to hash the same bytes "
        "in one call"
    )


def _sizes(scale: JsonDict) -> dict[int, JsonDict]:
    return {row["records"]: row for row in scale["sizes"]}


def _flat_at_ten_million(scale: JsonDict | None) -> TargetCheck:
    target = "throughput at 10M within 10% of 100k"
    if scale is None:
        return TargetCheck(_ISSUE_5, target, "—", NOT_RUN)
    sizes = _sizes(scale)
    base = sizes.get(100_000)
    largest = max(sizes)
    if base is None or largest <= 100_000:
        return TargetCheck(_ISSUE_5, target, "—", NOT_RUN)
    ratio = sizes[largest]["records_per_s"] / base["records_per_s"]
    measured = f"{largest:,}: {ratio:.2f}x the records/s at 100,000"
    if largest < 10_000_000:
        return TargetCheck(_ISSUE_5, target, measured + " (10M not run: --ten-million)", NOT_RUN)
    if ratio >= 0.9:
        return TargetCheck(_ISSUE_5, target, measured, PASS)
    return TargetCheck(
        _ISSUE_5,
        target,
        measured,
        MISS,
        shortfall=f"{0.9 - ratio:.0%} below the allowed 90%",
        dominant=_size_gap(base, sizes[largest]),
        remedy=(
            "where wall-clock and CPU time per record are close, the gap is CPU, not waiting "
            "on fdatasync. A cProfile of records 20k-120k against 500k-600k of one 600k-record "
            "run (2026-11-28) found the same calls per record, every function about 18% slower "
            "late in the run, zstd's C code included: nothing the writer does per append grows "
            "with the log (its state is O(log n): compact range, open segment, tiles by "
            "offset), and peak RSS stays flat. What grows is the cost of the same work in a "
            "long-running process (memory locality of a heap that has held millions of "
            "short-lived records, and the machine's other load); repeating the run on a "
            "dedicated machine would show how much of it is the machine."
        ),
    )


def _size_gap(small: JsonDict, large: JsonDict) -> str:
    rates = [rate for _, rate in large["chunk_rates"]]
    tenth = max(1, len(rates) // 10)
    first, last = statistics.median(rates[:tenth]), statistics.median(rates[-tenth:])
    text = (
        f"within the {large['records']:,}-record run, appends ran at {first:,.0f} records/s "
        f"in its first tenth and {last:,.0f} in its last (chunk medians)"
    )
    if "cpu_us_per_record" in small and "cpu_us_per_record" in large:
        text += (
            f"; CPU time per record {large['cpu_us_per_record']:.1f} µs against "
            f"{small['cpu_us_per_record']:.1f} at {small['records']:,}, wall-clock "
            f"{1e6 / large['records_per_s']:.1f} against {1e6 / small['records_per_s']:.1f}"
        )
    return text


def _memory_at_ten_million(scale: JsonDict | None) -> TargetCheck:
    target = "writer peak RSS < 200 MB at 10M"
    if scale is None:
        return TargetCheck(_ISSUE_5, target, "—", NOT_RUN)
    sizes = _sizes(scale)
    largest = max(sizes)
    peak = sizes[largest]["peak_rss_bytes"] / 1e6
    measured = f"{peak:.0f} MB at {largest:,} records"
    if largest < 10_000_000:
        return TargetCheck(_ISSUE_5, target, measured + " (10M not run: --ten-million)", NOT_RUN)
    if peak < 200:
        return TargetCheck(_ISSUE_5, target, measured, PASS)
    return TargetCheck(
        _ISSUE_5,
        target,
        measured,
        MISS,
        shortfall=f"{peak - 200:.0f} MB over",
        dominant="see RSS before the first append next to the peak in the scaling table",
        remedy="find what grows with the record count (tracemalloc snapshot of the writer).",
    )


def _two_writers(scale: JsonDict | None) -> TargetCheck:
    target = "two processes on two chains ≥ 1.7x one"
    if scale is None:
        return TargetCheck(_ISSUE_5, target, "—", NOT_RUN)
    writers = scale["two_writers"]
    ratio = writers["ratio"]
    one = writers["one_records_per_s"]
    each = writers["two_per_process_records_per_s"]
    measured = f"{ratio:.2f}x ({writers['two_records_per_s']:,.0f} vs {one:,.0f} records/s)"
    if ratio >= 1.7:
        return TargetCheck(_ISSUE_5, target, measured, PASS)
    return TargetCheck(
        _ISSUE_5,
        target,
        measured,
        MISS,
        shortfall=f"needs {1.7 / ratio:.2f}x the measured ratio",
        dominant=(
            f"each of the two processes ran at {each:,.0f} records/s, "
            f"{1 - each / one:.0%} slower than one alone: they compete for the machine's cores "
            "(with anything else running on it) and share one file-system journal for their "
            "fdatasyncs"
        ),
        remedy=(
            "first measure on an otherwise idle machine (the load average is in the machine "
            "table). Chains need no coordination on the write path, so on an idle 2-core "
            "machine the ratio is bounded by how much of a writer's time is CPU: writer "
            "processes beyond the core count cannot help."
        ),
    )
