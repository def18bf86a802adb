"""The proofs bench runs once at a tiny size, so its code cannot rot.

Nothing here asserts anything about speed: timing belongs to ``python -m benchmarks``. The test
checks that both kinds of chain are built and measured end to end, that the results have the
expected shape and that the markdown section renders from them. Everything goes to ``tmp_path``.
"""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks import bench_proofs
from benchmarks._harness import load_results


def test_proofs_bench_measures_both_kinds_of_chain(tmp_path: Path) -> None:
    """A tiny run serves, verifies and sizes proofs of a record chain and a leaf chain, saves
    them, and renders a section whose target is NOT RUN without a 10M chain."""
    bench_proofs.main(
        [
            "--sizes",
            "40",
            "--leaf-sizes",
            "3000",
            "--proofs",
            "20",
            "--cold-proofs",
            "5",
            "--seed",
            "1",
            "--dir",
            str(tmp_path / "scratch"),
            "--results-dir",
            str(tmp_path),
        ]
    )
    results = load_results(tmp_path, bench_proofs.NAME)
    assert results is not None
    rows = results["chains"]
    assert [(row["records"], row["built_from"]) for row in rows] == [
        (40, "records"),
        (3000, "leaves"),
    ]
    for row in rows:
        bound = 32 * math.ceil(math.log2(row["records"]))
        assert 0 < row["proof_bytes_max"] <= row["proof_bytes_bound"] == bound
        for series in ("serve_warm_us", "serve_cold_us", "verify_us"):
            assert 0 < row[series]["p50"] <= row[series]["p99"]
        assert row["tile_reads_max"] > 1
    assert results["target"]["status"] == "NOT RUN"
    section = bench_proofs.markdown_section(results)
    assert section.startswith("## Proofs")
    assert section.count("\n| 40 |") + section.count("\n| 3,000 |") == 2
    assert "**NOT RUN**" in section
    assert bench_proofs.markdown_section(None) == ""
    assert not list((tmp_path / "scratch").iterdir())
