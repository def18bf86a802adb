"""The sweep bench runs once at a tiny size, so its code cannot rot.

Nothing here asserts anything about speed: timing belongs to ``python -m benchmarks.bench_sweep``.
The test checks that both logs are built and swept end to end, that the results have the
expected shape and that the markdown section renders from them. Everything goes to ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import bench_sweep
from benchmarks._harness import load_results


def test_sweep_bench_sweeps_one_day_of_each_log(tmp_path: Path) -> None:
    """A tiny run builds two fresh logs and one swept daily before, sweeps one expired day of
    each, saves medians and ratios, and renders a section whose target is NOT RUN without 10 and
    180 days kept."""
    bench_sweep.main(
        [
            "--kept",
            "2,4",
            "--records",
            "12",
            "--history",
            "3",
            "--repeat",
            "2",
            "--seed",
            "1",
            "--dir",
            str(tmp_path / "scratch"),
            "--results-dir",
            str(tmp_path),
        ]
    )
    results = load_results(tmp_path, bench_sweep.NAME)
    assert results is not None
    rows = results["sweeps"]
    found = [(r["days_kept"], r["history_days"], r["segments"], r["tombstones"]) for r in rows]
    assert found == [(2, 0, 3, 0), (4, 0, 5, 0), (4, 3, 5, 3)]
    for row in rows:
        assert len(row["sweep_runs_ms"]) == 2
        assert 0 < row["sweep_min_ms"] <= row["sweep_ms"]
        assert row["plan_ms"] > 0
    assert results["ratio"]["size"]["of"] == "4 days kept"
    assert results["ratio"]["history"]["of"] == "4 days kept after 3 daily sweeps"
    assert all(ratio["sweep"] > 0 for ratio in results["ratio"].values())
    assert results["target"]["status"] == "NOT RUN"
    section = bench_sweep.markdown_section(results)
    assert section.startswith("## Retention sweeps")
    assert section.count("\n| 2 | 0 |") + section.count("\n| 4 | ") == 3
    assert "**NOT RUN**" in section
    assert bench_sweep.markdown_section(None) == ""
    renamed = [{**rows[0], "days_kept": 10}, {**rows[1], "days_kept": 180}]
    assert bench_sweep.target(renamed)["status"] in {"PASS", "MISS"}
    assert not list((tmp_path / "scratch").iterdir())
