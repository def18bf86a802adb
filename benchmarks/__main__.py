"""Run every bench, save its results, draw the plots and rewrite docs/benchmarks.md.

``python -m benchmarks`` (``make bench``) takes several minutes at the default sizes;
``--quick`` runs small sizes; ``--report-only`` re-renders the page and plots from the saved
results without running anything.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from benchmarks import (
    bench_flush,
    bench_index,
    bench_profile,
    bench_proofs,
    bench_read,
    bench_scale,
    bench_sweep,
    bench_write,
    plots,
    report,
)
from benchmarks._harness import (
    DEFAULT_RESULTS,
    DEFAULT_SCRATCH,
    REPO_ROOT,
    JsonDict,
    load_results,
    save_results,
)

DEFAULT_PAGE: Final = REPO_ROOT / "docs" / "benchmarks.md"
DEFAULT_IMAGES: Final = REPO_ROOT / "docs" / "img"


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each bench runs: the defaults for the published page, or quick ones."""

    write: int
    write_repeat: int
    profile: int
    read: int
    scale: tuple[int, ...]
    gc_records: int
    paced_records: int
    writer_records: int
    repeat: int
    proof_sizes: tuple[int, ...]
    proof_leaf_sizes: tuple[int, ...]  # chains built from leaves alone, for the 10M proofs
    sweep_records_per_day: int
    sweep_repeat: int
    index_sizes: tuple[int, ...]
    flush_records: int = 20_000


FULL: Final = Sizes(
    write=100_000,
    write_repeat=3,
    profile=20_000,
    read=100_000,
    scale=bench_scale.SIZES,
    gc_records=20_000,
    paced_records=4_000,
    writer_records=50_000,
    repeat=3,
    proof_sizes=bench_proofs.SIZES,
    proof_leaf_sizes=bench_proofs.LEAF_SIZES,
    sweep_records_per_day=2000,
    sweep_repeat=11,
    index_sizes=bench_index.SIZES,
)
QUICK: Final = Sizes(
    write=10_000,
    write_repeat=1,
    profile=5_000,
    read=10_000,
    scale=(10_000, 30_000),
    gc_records=3_000,
    paced_records=1_000,
    writer_records=10_000,
    repeat=1,
    proof_sizes=(1_000,),
    proof_leaf_sizes=(),
    sweep_records_per_day=200,
    sweep_repeat=3,
    flush_records=2_000,
    index_sizes=bench_index.QUICK_SIZES,
)


def run_all(
    sizes: Sizes, *, seed: int, scratch: Path, results_dir: Path, ten_million: bool
) -> None:
    """Run the benches in turn, saving each one's results as soon as it finishes."""
    scale_sizes = list(sizes.scale) + ([bench_scale.TEN_MILLION] if ten_million else [])
    steps: list[tuple[str, Callable[[], JsonDict]]] = [
        (
            bench_write.NAME,
            lambda: bench_write.run(sizes.write, seed, scratch, repeat=sizes.write_repeat),
        ),
        (
            bench_profile.NAME,
            lambda: bench_profile.run(sizes.profile, seed, scratch, repeat=sizes.repeat),
        ),
        (
            bench_flush.NAME,
            lambda: bench_flush.run(sizes.flush_records, seed, scratch, repeat=sizes.repeat),
        ),
        (bench_read.NAME, lambda: bench_read.run(sizes.read, seed, scratch, repeat=sizes.repeat)),
        (bench_index.NAME, lambda: bench_index.run(sizes.index_sizes, seed, scratch)),
        (
            bench_scale.NAME,
            lambda: bench_scale.run(
                scale_sizes,
                seed,
                scratch,
                gc_records=sizes.gc_records,
                paced_records=sizes.paced_records,
                writer_records=sizes.writer_records,
                repeat=sizes.repeat,
            ),
        ),
        (
            bench_proofs.NAME,
            lambda: bench_proofs.run(
                sizes.proof_sizes, sizes.proof_leaf_sizes, seed, scratch, repeat=sizes.repeat
            ),
        ),
        (
            bench_sweep.NAME,
            lambda: bench_sweep.run(
                bench_sweep.KEPT,
                sizes.sweep_records_per_day,
                seed,
                scratch,
                repeat=sizes.sweep_repeat,
            ),
        ),
    ]
    for name, step in steps:
        print(f"== {name}", flush=True)
        # What the bench before wrote is still being written back: sync it first, or its I/O
        # lands in this bench's latencies (the 10M scaling run leaves gigabytes behind it).
        os.sync()
        save_results(results_dir, name, step())


def render(results_dir: Path, page: Path, image_dir: Path) -> dict[str, JsonDict]:
    """Draw the plots and write the page from whatever results are saved."""
    results = {
        name: loaded
        for name in (*report.BENCHES, *report.BASELINES)
        if (loaded := load_results(results_dir, name)) is not None
    }
    images = plots.draw_all(results, image_dir)
    comparisons = [
        json.loads(path.read_text("utf-8")) for path in sorted(results_dir.glob("compare_*.json"))
    ]
    report.write_page(results, images, page, image_dir, comparisons)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a first look")
    parser.add_argument("--ten-million", action="store_true", help="add the 10M scaling run")
    parser.add_argument("--report-only", action="store_true", help="re-render from saved results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=DEFAULT_SCRATCH, help="scratch directory")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--page", type=Path, default=DEFAULT_PAGE, help="the markdown to write")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="where PNGs go")
    args = parser.parse_args(argv)
    if not args.report_only:
        run_all(
            QUICK if args.quick else FULL,
            seed=args.seed,
            scratch=args.dir,
            results_dir=args.results_dir,
            ten_million=args.ten_million,
        )
    render(args.results_dir, args.page, args.images)
    print(f"wrote {args.page}")


if __name__ == "__main__":
    main()
