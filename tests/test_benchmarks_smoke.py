"""Each benchmark runs once at a tiny size, so the benchmark code cannot rot.

Nothing here asserts anything about speed: timing belongs to ``python -m benchmarks``. The tests
check that every bench runs end to end, writes results of the expected shape, and that the page
and the plots render from them. Everything goes to ``tmp_path``; docs/ is never touched.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from benchmarks import __main__ as runner
from benchmarks import bench_flush, bench_profile, bench_read, bench_scale, bench_write
from benchmarks._harness import load_results
from benchmarks.targets import evaluate

RECORDS = "300"


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Results of every bench run once at a tiny size, shared by the tests of this module."""
    base = tmp_path_factory.mktemp("bench")
    common = ["--seed", "1", "--dir", str(base / "scratch"), "--results-dir", str(base)]
    bench_write.main(["--records", RECORDS, "--repeat", "1", *common])
    bench_profile.main(["--records", RECORDS, "--repeat", "1", *common])
    bench_read.main(["--records", RECORDS, "--repeat", "1", "--reads", "5", *common])
    bench_flush.main(["--records", RECORDS, "--repeat", "1", "--batch", "16", *common])
    bench_scale.main(
        [
            "--sizes",
            f"100,{RECORDS}",
            "--chunk",
            "100",
            "--gc-records",
            RECORDS,
            "--paced-records",
            "50",
            "--paced-rate",
            "1000",
            "--writer-records",
            RECORDS,
            "--repeat",
            "1",
            *common,
        ]
    )
    return base


def test_write_bench_runs_every_case_on_the_same_records(results_dir: Path) -> None:
    """The write bench reports each case it ran, with ratios of ours to the peers."""
    results = load_results(results_dir, bench_write.NAME)
    assert results is not None
    keys = {case["key"] for case in results["cases"]} | set(results["skipped"])
    assert keys == set("abcdefg")
    assert all(case["bytes"] > 0 and case["records_per_s"] > 0 for case in results["cases"])
    assert {"a/d", "a/e", "c/d", "bytes a/e"} <= set(results["ratios"])
    assert results["workload"]["records"] == int(RECORDS)


def test_profile_bench_times_every_stage(results_dir: Path) -> None:
    """The profile bench reports every write-path stage, the whole, and the cProfile ranking."""
    results = load_results(results_dir, bench_profile.NAME)
    assert results is not None
    assert [s["stage"] for s in results["stages"]] == [s.key for s in bench_profile.STAGES]
    assert results["append_many_us_per_record"] > 0
    assert results["cprofile_top"]


def test_read_bench_checks_what_it_read(results_dir: Path) -> None:
    """The read bench verifies both ways, reads by index and finds one subject's records."""
    results = load_results(results_dir, bench_read.NAME)
    assert results is not None
    assert results["subject_records"] > 0
    assert results["keyless_vs_sha256"] > 0
    assert set(results["keyless_breakdown_us_per_record"]) == {"scan_s", "chain_check_s", "tree_s"}


def test_flush_bench_runs_every_case_with_latencies(results_dir: Path) -> None:
    """The flush bench runs batches (syncs at once and in turn) and waiting threads (leader
    and background group commit), each with its latency percentiles."""
    results = load_results(results_dir, bench_flush.NAME)
    assert results is not None
    assert [c["key"] for c in results["cases"]] == [
        "batches",
        "batches-in-turn",
        "threads",
        "threads-group",
    ]
    for case in results["cases"]:
        assert case["records_per_s"] > 0
        assert 0 < case["latency_ms_p50"] <= case["latency_ms_p99"] <= case["latency_ms_max"]
    assert "Durable writes" in bench_flush.markdown_section(results)


def test_scale_bench_covers_sizes_windows_and_two_writers(results_dir: Path) -> None:
    """The scale bench measures each size in a child process, every window, and two writers."""
    results = load_results(results_dir, bench_scale.NAME)
    assert results is not None
    assert [row["records"] for row in results["sizes"]] == [100, int(RECORDS)]
    assert all(row["peak_rss_bytes"] > 0 for row in results["sizes"])
    assert len(results["group_commit"]) == len(bench_scale.WINDOWS)
    assert results["two_writers"]["ratio"] > 0


def test_report_renders_targets_tables_and_plots(results_dir: Path, tmp_path: Path) -> None:
    """The page renders from saved results, with every target and, given matplotlib, plots."""
    page = tmp_path / "docs" / "benchmarks.md"
    images = tmp_path / "docs" / "img"
    runner.main(
        [
            "--report-only",
            "--results-dir",
            str(results_dir),
            "--page",
            str(page),
            "--images",
            str(images),
        ]
    )
    text = page.read_text("utf-8")
    for heading in ("## The machine", "## Targets", "## Write path", "## Scaling", "## Read side"):
        assert heading in text
    assert text.count("| **PASS** |") + text.count("| **MISS** |") + text.count(
        "| **NOT RUN** |"
    ) == len(evaluate({}))
    if importlib.util.find_spec("matplotlib") is not None:
        drawn = sorted(p.name for p in images.glob("*.png"))
        assert len(drawn) == 5
        assert all(f"img/{name}" in text for name in drawn)


def test_compare_trees_runs_a_bench_from_two_trees_and_renders(tmp_path: Path) -> None:
    """compare_trees runs bench_write from two source trees (here the same one twice), saves
    medians and ratios of each case, and the benchmarks page shows them."""
    from benchmarks import compare_trees, report

    tree = Path(__file__).resolve().parent.parent
    out = tmp_path / "compare_smoke.json"
    summary = compare_trees.main(
        [
            str(tree),
            str(tree),
            "--records",
            "200",
            "--rounds",
            "1",
            "--cases",
            "a",
            "--out",
            str(out),
            "--title",
            "smoke",
            "--note",
            "a note",
        ]
    )
    case = summary["cases"]["a"]
    assert case["before_records_per_s"] > 0
    assert case["after_records_per_s"] > 0
    assert case["ratio"] > 0
    page = report.render({}, {}, "img", [summary])
    assert "### smoke" in page
    assert "a note" in page
