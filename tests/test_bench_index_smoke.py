"""The index bench runs once at a tiny size, so its code cannot rot.

Nothing here asserts anything about speed: timing belongs to ``python -m benchmarks.bench_index``.
The test checks that the log is grown through both sizes, that reads and opens are measured at
each, and that the markdown section renders from the results. Everything goes to ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import bench_index
from benchmarks._harness import load_results


def test_index_bench_measures_reads_and_opens_at_each_size(tmp_path: Path) -> None:
    """A tiny run grows one log to two sizes and reports read latencies and open times for
    each, with the targets' verdict and a rendered section."""
    bench_index.main(
        [
            "--sizes",
            "300,600",
            "--reads",
            "20",
            "--repeat",
            "2",
            "--chunk",
            "200",
            "--seed",
            "1",
            "--dir",
            str(tmp_path / "scratch"),
            "--results-dir",
            str(tmp_path),
        ]
    )
    results = load_results(tmp_path, bench_index.NAME)
    assert results is not None
    assert [row["records"] for row in results["sizes"]] == [300, 600]
    for row in results["sizes"]:
        assert sum(row["chains"].values()) == row["records"]
        assert 0 < row["read"]["p50_ms"] <= row["read"]["p99_ms"]
        assert len(row["open"]["runs_s"]) == 2
    assert results["target"]["status"] in {"MET", "MISSED"}
    section = bench_index.markdown_section(results)
    assert section.startswith("## Reads by index and opens for write")
    assert "| 600 |" in section
