"""The performance targets of issue 12 (hot paths), checked against a run's results.

Kept apart from ``targets`` (issues 2 and 5), which it shares ``TargetCheck`` with.
"""

from __future__ import annotations

from typing import Final

from benchmarks._harness import JsonDict

_ISSUE_12: Final = "issue 12"

Results = dict[str, JsonDict]


def evaluate(results: Results) -> list[tuple[str, str, str, str, str, str]]:
    """(source, target, measured, status, shortfall, remedy) of each issue-12 target."""
    return [_threads(results.get("write"))]


def _case(write: JsonDict, key: str) -> JsonDict | None:
    return next((c for c in write["cases"] if c["key"] == key), None)


def _threads(write: JsonDict | None) -> tuple[str, str, str, str, str, str]:
    target = "(b) 8 threads calling append() ≥ 0.7x (a) append_many"
    a = _case(write, "a") if write else None
    b = _case(write, "b") if write else None
    if a is None or b is None:
        return (_ISSUE_12, target, "—", "NOT RUN", "", "")
    ratio = b["records_per_s"] / a["records_per_s"]
    measured = (
        f"{ratio:.2f}x ({b['records_per_s']:,.0f} vs {a['records_per_s']:,.0f} records/s; "
        f"CPU {b['cpu_us_per_record']:.1f} vs {a['cpu_us_per_record']:.1f} µs/record)"
    )
    if ratio >= 0.7:
        return (_ISSUE_12, target, measured, "PASS", "", "")
    return (
        _ISSUE_12,
        target,
        measured,
        "MISS",
        f"{0.7 / ratio:.2f}x too slow",
        "each append() still pays its checks, its queue entry and its receipt in Python "
        "(about the CPU µs/record difference above); the encoding and hashing are batched "
        "when the queue is drained",
    )
