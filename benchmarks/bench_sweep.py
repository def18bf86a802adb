"""Retention sweeps (issue 4): the time of a sweep follows what it deletes, not the log's size.

Logs of one chain differ only in how much they keep: one expired day and 10 days kept, or one
expired day and 180 days kept, the same number of workload records every day (one segment a
day). The ceiling is set so that exactly one day is past it at sweep time. A third log keeps 180
days too but has been swept daily for ``--history`` days before (one tombstone a day, as a log
in service for that long has), to show what the history of earlier sweeps costs. Each
repetition sweeps a fresh copy of each log (copied, then opened for writing, before the clock
starts; the order of the logs alternates so that drift on the machine hits all alike) and times
two calls: the dry run (planning alone) and ``sweep(dry_run=False)``, which plans again, writes
the journal, appends the sweep's record, stores the tombstone, deletes the segment, destroys the
dictionary, shreds the key and removes the journal, with every fsync that takes.

``--records`` is the number of records per day.

Target (issue 4): one expired day with 10 vs 180 days kept (no earlier sweeps), within 20 %: the
median of the applied sweep with 180 days kept is at most 1.2 times that with 10 days kept.
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from auditlog.retention import RetentionPolicy
from auditlog.testing import FixedClock, workload
from benchmarks._harness import (
    JsonDict,
    common_parser,
    create_bench_log,
    directory_bytes,
    fresh_dir,
    int_list,
    median,
    open_bench_log,
    publish,
    timed,
)
from benchmarks._machine import describe_machine

NAME: Final = "sweep"
KEPT: Final = (10, 180)
RECORDS_PER_DAY: Final = 2_000
REPEAT: Final = 11
HISTORY: Final = 180
TARGET_KEPT: Final = (10, 180)
TARGET_RATIO: Final = 1.2
CHAIN: Final = "bench"
START: Final = datetime(2026, 1, 1, tzinfo=UTC)
DAY: Final = timedelta(days=1)


def _day(number: int) -> datetime:
    return START + number * DAY


@dataclass(frozen=True)
class Case:
    """A log to sweep: ``kept`` days kept after ``history`` days already swept, one by one."""

    kept: int
    history: int = 0

    @property
    def label(self) -> str:
        return f"kept-{self.kept}-history-{self.history}"

    @property
    def days(self) -> int:
        """Days of records written: the swept history, the expired day, the kept days."""
        return self.history + 1 + self.kept

    @property
    def now(self) -> datetime:
        """When it is swept: an hour after its last day ends."""
        return _day(self.days) + timedelta(hours=1)


def build_log(path: Path, case: Case, per_day: int, seed: int) -> None:
    """A log whose chain ``CHAIN`` holds ``case.days`` days of ``per_day`` records each, swept
    after each of its first ``case.history`` days had expired, under a ceiling that puts exactly
    day ``case.history`` past it at ``case.now``."""
    clock = FixedClock(START)
    with create_bench_log(path, fsync=False, clock=clock) as log:
        policy = RetentionPolicy(keep_at_least=DAY, delete_after=case.kept * DAY)
        log.retention.set_policy(CHAIN, policy, actor="bench", now=START)
        span = DAY - timedelta(minutes=1)
        for number in range(case.days):
            if case.kept < number <= case.kept + case.history:
                # Each such morning, the day that just went past the ceiling is swept.
                morning = _day(number) + timedelta(hours=1)
                clock.set(morning)
                log.retention.sweep(now=morning, dry_run=False, actor="bench")
            records = list(workload(per_day, seed=seed + number, start=_day(number), span=span))
            clock.set(_day(number) + span)
            log.append_many(records, chain=CHAIN)


def sweep_once(template: Path, case: Case, scratch: Path) -> tuple[float, float, float]:
    """(plan s, sweep s, sweep CPU s) of one sweep of a fresh copy of ``template``."""
    with fresh_dir(scratch, f"sweep-{case.label}") as directory:
        copy = directory / "log"
        shutil.copytree(template, copy)
        with open_bench_log(copy, clock=FixedClock(case.now)) as log:
            gc.collect()
            with timed() as planning:
                plan = log.retention.sweep(now=case.now)
            with timed() as applying:
                applied = log.retention.sweep(now=case.now, dry_run=False)
        chain = applied.chains[CHAIN]
        expired = int(_day(case.history).timestamp()) // 86_400
        if chain.shred_periods != [expired] or plan.empty or len(chain.delete_segments) != 1:
            raise RuntimeError(f"the sweep of {case} did not delete just day {case.history}")
    return planning.wall, applying.wall, applying.cpu


def cases(kept: Sequence[int], history: int) -> list[Case]:
    """One fresh log per number of days kept, and the largest again after ``history`` sweeps."""
    found = [Case(days) for days in sorted(set(kept))]
    if history and found:
        found.append(Case(found[-1].kept, history))
    return found


def run(
    kept: Sequence[int],
    per_day: int,
    seed: int,
    scratch: Path,
    *,
    history: int = HISTORY,
    repeat: int = REPEAT,
) -> JsonDict:
    todo = cases(kept, history)
    rows: dict[Case, JsonDict] = {}
    runs: dict[Case, list[tuple[float, float, float]]] = {case: [] for case in todo}
    with fresh_dir(scratch, "sweep-templates") as templates:
        for case in todo:
            path = templates / case.label
            with timed() as build:
                build_log(path, case, per_day, seed)
            segments = path / "chains" / CHAIN / "segments"
            rows[case] = {
                "days_kept": case.kept,
                "history_days": case.history,
                "records_per_day": per_day,
                "log_records": (case.kept + 1) * per_day,
                "segments": len(list(segments.iterdir())),
                "tombstones": len(list((path / "chains" / CHAIN).glob("tombstones/*.tomb"))),
                "log_bytes": directory_bytes(segments),
                "build_s": build.wall,
            }
        for number in range(repeat):
            for case in todo if number % 2 == 0 else list(reversed(todo)):
                runs[case].append(sweep_once(templates / case.label, case, scratch))
    for case, measured in runs.items():
        rows[case] |= {
            "plan_ms": median([m[0] for m in measured]) * 1e3,
            "sweep_ms": median([m[1] for m in measured]) * 1e3,
            "sweep_min_ms": min(m[1] for m in measured) * 1e3,
            "sweep_cpu_ms": median([m[2] for m in measured]) * 1e3,
            "sweep_runs_ms": [m[1] * 1e3 for m in measured],
        }
        print(f"  {_row_text(rows[case])}", flush=True)
    table = [rows[case] for case in todo]
    return {
        "bench": NAME,
        "machine": describe_machine(scratch),
        "params": {
            "kept": sorted(set(kept)),
            "history": history,
            "records_per_day": per_day,
            "seed": seed,
            "repeat": repeat,
        },
        "sweeps": table,
        "ratio": ratios(table),
        "target": target(table),
    }


def ratios(rows: Sequence[JsonDict]) -> JsonDict:
    """Medians compared: the largest fresh log's sweep over the smallest's (``size``), and the
    swept-before log's over the fresh log of the same size (``history``)."""
    fresh = [row for row in rows if not row["history_days"]]
    found: JsonDict = {}
    if len(fresh) >= 2:
        found["size"] = _ratio(fresh[-1], fresh[0])
    aged = [row for row in rows if row["history_days"]]
    peers = [row for row in fresh if aged and row["days_kept"] == aged[0]["days_kept"]]
    if aged and peers:
        found["history"] = _ratio(aged[0], peers[0])
    return found


def _ratio(large: JsonDict, small: JsonDict) -> JsonDict:
    return {
        "of": _name(large),
        "to": _name(small),
        "sweep": large["sweep_ms"] / small["sweep_ms"],
        "sweep_min": large["sweep_min_ms"] / small["sweep_min_ms"],
        "sweep_cpu": large["sweep_cpu_ms"] / small["sweep_cpu_ms"],
        "plan": large["plan_ms"] / small["plan_ms"],
    }


def _name(row: JsonDict) -> str:
    name = f"{row['days_kept']} days kept"
    return name + (f" after {row['history_days']} daily sweeps" if row["history_days"] else "")


def target(rows: Sequence[JsonDict]) -> JsonDict:
    """The issue's target: 180 days kept within 20 % of 10 days kept (fresh logs, medians)."""
    by_kept = {row["days_kept"]: row for row in rows if not row["history_days"]}
    small, large = TARGET_KEPT
    if small not in by_kept or large not in by_kept:
        return {"status": "NOT RUN", "limit_ratio": TARGET_RATIO, "days_kept": list(TARGET_KEPT)}
    measured = by_kept[large]["sweep_ms"] / by_kept[small]["sweep_ms"]
    return {
        "status": "PASS" if measured <= TARGET_RATIO else "MISS",
        "limit_ratio": TARGET_RATIO,
        "days_kept": list(TARGET_KEPT),
        "measured_ratio": measured,
    }


def _row_text(row: JsonDict) -> str:
    return (
        f"{_name(row)} ({row['log_records']:,} records, {row['log_bytes'] / 1e6:.1f} MB, "
        f"{row['tombstones']} tombstones): plan {row['plan_ms']:.1f} ms, sweep "
        f"{row['sweep_ms']:.1f} ms (min {row['sweep_min_ms']:.1f}, CPU {row['sweep_cpu_ms']:.1f})"
    )


def _ratio_text(ratio: JsonDict) -> str:
    return (
        f"{ratio['of']} / {ratio['to']}: sweep {ratio['sweep']:.2f} (minimum "
        f"{ratio['sweep_min']:.2f}), CPU {ratio['sweep_cpu']:.2f}, plan {ratio['plan']:.2f}"
    )


def markdown_section(results: JsonDict | None) -> str:
    """The "Retention sweeps" section of docs/benchmarks.md ('' without results)."""
    if results is None:
        return ""
    rows = [
        "| "
        + " | ".join(
            [
                f"{row['days_kept']:,}",
                f"{row['history_days']:,}",
                f"{row['log_records']:,}",
                f"{row['log_bytes'] / 1e6:,.1f}",
                f"{row['plan_ms']:,.1f}",
                f"{row['sweep_ms']:,.1f}",
                f"{row['sweep_min_ms']:,.1f}",
                f"{row['sweep_cpu_ms']:,.1f}",
            ]
        )
        + " |"
        for row in results["sweeps"]
    ]
    goal = results["target"]
    if goal["status"] == "NOT RUN":
        small, large = goal["days_kept"]
        verdict = f"not run (these results do not have fresh logs of {small} and {large} days)"
    else:
        verdict = (
            f"{goal['measured_ratio']:.2f} times as long with {TARGET_KEPT[1]} days kept "
            f"(limit {goal['limit_ratio']:.1f})"
        )
    params = results["params"]
    ratio_lines = [
        f"- {_ratio_text(ratio)} (ratios of medians, and of minimums)."
        for ratio in results["ratio"].values()
    ]
    return "\n".join(
        [
            "## Retention sweeps",
            "",
            f"One chain of {params['records_per_day']:,} workload records a day, one segment a "
            "day, with exactly one day past the ceiling; the sweep deletes that day's segment, "
            "stores its tombstone, destroys its dictionary and shreds its key. The last log kept "
            f"as many days but was swept daily for {params['history']} days before (one "
            "tombstone a day). Each of "
            f"{params['repeat']} repetitions sweeps a fresh copy of each log (copying and opening "
            "are not timed); the table gives medians, and the minimum of the applied sweep. "
            "*Plan* is the dry run; *sweep* is `sweep(dry_run=False)`, planning included, with "
            "its fsyncs.",
            "",
            "| days kept | earlier daily sweeps | records kept | segment MB | plan (ms) "
            "| sweep (ms) | sweep min (ms) | sweep CPU (ms) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            *ratio_lines,
            "",
            f"Target (issue 4): one expired day with {TARGET_KEPT[0]} vs {TARGET_KEPT[1]} days "
            f"kept, within 20 %: {verdict} — **{goal['status']}**.",
        ]
    )


def format_table(results: JsonDict) -> str:
    lines = [_row_text(row) for row in results["sweeps"]]
    lines += [_ratio_text(ratio) for ratio in results["ratio"].values()]
    goal = results["target"]
    lines.append(f"target <= {goal['limit_ratio']}x at {goal['days_kept']}: {goal['status']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> JsonDict:
    parser = common_parser(
        "Retention sweeps: time against the size of the log (--records: records per day).",
        RECORDS_PER_DAY,
    )
    parser.add_argument("--kept", type=int_list, default=list(KEPT), help="days kept, e.g. 10,180")
    parser.add_argument(
        "--history", type=int, default=HISTORY, help="daily sweeps before, for the last log"
    )
    parser.add_argument("--repeat", type=int, default=REPEAT, help="sweeps per log; medians")
    args: Any = parser.parse_args(argv)
    results = run(
        args.kept, args.records, args.seed, args.dir, history=args.history, repeat=args.repeat
    )
    return publish(
        args.results_dir, NAME, results, format_table(results), markdown_section(results)
    )


if __name__ == "__main__":
    main()
