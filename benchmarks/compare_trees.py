"""Two source trees of auditlog, side by side in one run: did a change make a path slower?

Runs one bench (default ``bench_write``) from each tree in turn, ``--rounds`` times, each run in
its own process with ``PYTHONPATH`` set to that tree, so the trees alternate and share whatever
the machine is doing. Each tree runs its own copy of the bench (the bench may use that tree's
API) on the same records. Prints and writes the median per case of each tree and their ratio.

    python -m benchmarks.compare_trees /work/premove /work/main --records 100000 --rounds 5

The trees need their C extension built in place (``python setup.py build_ext --inplace``, or a
plain ``gcc -shared``) if the comparison is to include it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._harness import DEFAULT_RESULTS


def _run(tree: Path, bench: str, args: list[str], results: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(
        [sys.executable, "-m", f"benchmarks.{bench}", *args, "--results-dir", str(results)],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (path,) = results.glob("*.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _describe(tree: Path) -> str:
    """The tree's commit (and whether it has uncommitted changes), else its path."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(tree), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(tree)
    return commit[:100]


def markdown_section(comparisons: Sequence[dict[str, Any]]) -> str:
    """The benchmarks page's section of every saved comparison of two trees."""
    if not comparisons:
        return ""
    parts = [
        "## Before and after a change\n\n"
        "`python -m benchmarks.compare_trees BEFORE AFTER` runs a bench from two source trees in "
        "turn, each run in its own process, the trees alternating round after round so that "
        "both meet the same machine; the medians and their ratio are below (runs in the JSON)."
    ]
    for comparison in comparisons:
        rows = [
            f"| ({key}) {case['name']} | {case['before_records_per_s']:,.0f} | "
            f"{case['after_records_per_s']:,.0f} | {case['ratio']:.2f}x |"
            for key, case in sorted(comparison["cases"].items())
        ]
        parts.append(
            f"### {comparison.get('title') or comparison['bench']}\n\n"
            f"Before: `{comparison['before']}`; after: `{comparison['after']}`; "
            f"{comparison['records']:,} records, {comparison['rounds']} rounds each.\n\n"
            "| case | before, records/s | after, records/s | after/before |\n"
            "| --- | ---: | ---: | ---: |\n"
            + "\n".join(rows)
            + (f"\n\n{comparison['note']}" if comparison.get("note") else "")
        )
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("before", type=Path, help="the tree measured first (the baseline)")
    parser.add_argument("after", type=Path, help="the tree compared with it")
    parser.add_argument("--bench", default="bench_write")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", default="abc", help="bench_write cases to run")
    parser.add_argument("--title", default="", help="what is compared, for the benchmarks page")
    parser.add_argument("--note", default="", help="what to know when reading the numbers")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_RESULTS / "compare_trees.json",
        help="where the summary goes; the page shows every results/compare_*.json",
    )
    options = parser.parse_args(argv)
    bench_args = ["--records", str(options.records), "--repeat", "1"]
    if options.bench == "bench_write":
        bench_args += ["--cases", options.cases]
    rates: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    names: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="auditlog-compare-") as scratch:
        for number in range(options.rounds):
            for side, tree in (("before", options.before), ("after", options.after)):
                results = Path(scratch) / f"{side}-{number}"
                results.mkdir()
                doc = _run(tree.resolve(), options.bench, bench_args, results)
                for case in doc["cases"]:
                    names[case["key"]] = case["name"]
                    rates[side].setdefault(case["key"], []).append(case["records_per_s"])
                print(f"round {number + 1}/{options.rounds} {side} done", file=sys.stderr)
    summary: dict[str, Any] = {
        "title": options.title,
        "note": options.note,
        "bench": options.bench,
        "records": options.records,
        "rounds": options.rounds,
        "before": _describe(options.before),
        "after": _describe(options.after),
        "cases": {},
    }
    only = sorted(set(rates["before"]) ^ set(rates["after"]))
    if only:
        summary["only_one_side"] = {key: names[key] for key in only}
    for key in sorted(set(rates["before"]) & set(rates["after"])):
        before = statistics.median(rates["before"][key])
        after = statistics.median(rates["after"][key])
        summary["cases"][key] = {
            "name": names[key],
            "before_records_per_s": before,
            "after_records_per_s": after,
            "ratio": after / before,
            "before_runs": rates["before"][key],
            "after_runs": rates["after"][key],
        }
        ratio = after / before
        print(f"({key}) {names[key]}: {before:,.0f} -> {after:,.0f} records/s ({ratio:.2f}x)")
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
