"""matplotlib figures of a run's results, as PNGs for docs/benchmarks.md.

Each function draws one figure from one bench's saved results and returns the file name it
wrote, so the report links exactly the figures that exist.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks._harness import JsonDict

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OURS: Final = "#1f6feb"  # auditlog's cases
PEERS: Final = "#8c959f"  # what platforms use today
DPI: Final = 110


def _figure(width: float, height: float, columns: int = 1) -> tuple[Figure, list[Axes]]:
    # Imported here so that the benches run (and the tests pass) without matplotlib; only
    # drawing needs it. Agg: no display is needed or wanted.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, columns, figsize=(width, height), squeeze=False)
    return figure, list(axes[0])


def _save(figure: Figure, directory: Path, name: str) -> str:
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(directory / name, dpi=DPI)
    plt.close(figure)
    return name


def write_side_by_side(write: JsonDict, directory: Path) -> str:
    """Records/s and bytes/record of every write case, ours in blue."""
    cases = list(reversed(write["cases"]))  # barh draws bottom-up; keep (a) on top
    labels = [f"({c['key']}) {c['name']}" for c in cases]
    colors = [OURS if c["key"] in "abc" else PEERS for c in cases]
    figure, (speed, size) = _figure(12, 0.45 * len(cases) + 1.6, columns=2)
    speed.barh(labels, [c["records_per_s"] for c in cases], color=colors)
    speed.set_xlabel("records/s (higher is better)")
    _label_bars(speed, [c["records_per_s"] for c in cases], "{:,.0f}")
    size.barh(labels, [c["bytes_per_record"] for c in cases], color=colors)
    size.set_xlabel("bytes/record on disk (lower is better)")
    size.tick_params(labelleft=False)  # the labels are on the left panel already
    _label_bars(size, [c["bytes_per_record"] for c in cases], "{:.0f}")
    params = write["params"]
    figure.suptitle(
        f"Write path, same {params['records']:,} records, one run (median of {params['repeat']})"
    )
    return _save(figure, directory, "write_side_by_side.png")


def _label_bars(axes: Axes, values: list[float], template: str) -> None:
    for position, value in enumerate(values):
        axes.text(value, position, " " + template.format(value), va="center", fontsize=8)
    axes.margins(x=0.18)


def _count_formatter() -> Any:
    from matplotlib.ticker import EngFormatter

    return EngFormatter(sep="")  # 10k, 100k, 1M: counts, not scientific notation


def profile_breakdown(profile: JsonDict, directory: Path) -> str:
    """Per-record µs of each write-path stage, measured alone."""
    stages = list(reversed(profile["stages"]))
    figure, (axes,) = _figure(9, 0.4 * len(stages) + 1.4)
    colors = [OURS if s["in_append_many"] else PEERS for s in stages]
    axes.barh([s["stage"] for s in stages], [s["us_per_record"] for s in stages], color=colors)
    _label_bars(axes, [s["us_per_record"] for s in stages], "{:.2f}")
    axes.set_xlabel("µs per record (grey: not paid by append_many)")
    axes.set_title(
        f"Write-path stages in isolation; append_many whole: "
        f"{profile['append_many_us_per_record']:.1f} µs/record (warm log)"
    )
    return _save(figure, directory, "profile_breakdown.png")


def scale_size(scale: JsonDict, directory: Path) -> str:
    """Throughput and peak RSS against size, and per-chunk throughput of the largest run."""
    rows = sorted(scale["sizes"], key=lambda row: row["records"])
    sizes = [row["records"] for row in rows]
    figure, (speed, memory, chunks) = _figure(15, 4.2, columns=3)
    speed.plot(sizes, [row["records_per_s"] for row in rows], "o-", color=OURS)
    speed.set(xscale="log", xlabel="records written", ylabel="records/s", ylim=(0, None))
    speed.xaxis.set_major_formatter(_count_formatter())
    speed.set_title("append_many throughput")
    peaks = [row["peak_rss_bytes"] / 1e6 for row in rows]
    memory.plot(sizes, peaks, "o-", color=OURS, label="peak")
    for key, style, label in (
        ("rss_before_bytes", "s--", "before the first append"),
        ("rss_after_bytes", "^:", "after the last flush"),
    ):
        memory.plot(sizes, [row[key] / 1e6 for row in rows], style, color=PEERS, label=label)
    memory.axhline(200, color="#cf222e", linewidth=1, label="target: 200 MB")
    memory.set(xscale="log", xlabel="records written", ylabel="RSS, MB", ylim=(0, None))
    memory.xaxis.set_major_formatter(_count_formatter())
    memory.set_title("writer process memory")
    memory.legend(fontsize=8)
    largest = rows[-1]
    points: list[Any] = largest["chunk_rates"]
    written = [p[0] for p in points]
    rates = [p[1] for p in points]
    chunks.plot(written, rates, color=PEERS, linewidth=0.6, label="each chunk")
    chunks.plot(written, _rolling_median(rates, 9), color=OURS, linewidth=1.6, label="median of 9")
    chunks.legend(fontsize=8)
    chunks.set(xlabel="records written so far", ylabel="records/s of the chunk", ylim=(0, None))
    chunks.xaxis.set_major_formatter(_count_formatter())
    chunks.set_title(f"per chunk, {largest['records']:,}-record run (flat = constant cost)")
    return _save(figure, directory, "scale_size.png")


def _rolling_median(values: list[float], width: int) -> list[float]:
    """Each value replaced by the median of the ``width`` values centred on it (fewer at ends)."""
    half = width // 2
    out = []
    for position in range(len(values)):
        window = sorted(values[max(0, position - half) : position + half + 1])
        out.append(window[len(window) // 2])
    return out


def group_commit(scale: JsonDict, directory: Path) -> str:
    """Saturated throughput per window, and append-to-durable latency saturated and paced."""
    rows = scale["group_commit"]
    names = [row["window"].replace("GroupCommit", "GC") for row in rows]
    positions = list(range(len(rows)))
    figure, (speed, latency) = _figure(14, 4.8, columns=2)
    speed.bar(positions, [row["saturated"]["records_per_s"] for row in rows], color=OURS)
    speed.set(ylabel="records/s, appending as fast as possible")
    speed.set_title("throughput per window")
    for load, marker, color in (("saturated", "o", OURS), ("paced", "s", PEERS)):
        shown = [(x, row[load]) for x, row in zip(positions, rows, strict=True) if row[load]]
        for quantile, style in (("latency_p50_ms", "-"), ("latency_p99_ms", ":")):
            latency.plot(
                [x for x, _ in shown],
                [result[quantile] for _, result in shown],
                marker=marker,
                linestyle=style,
                color=color,
                label=f"{load} {quantile.split('_')[1]}",
            )
    offered = scale["params"]["paced_rate"]
    latency.set(ylabel="append → durable, ms", yscale="log")
    latency.set_title(f"latency (paced: {offered:,.0f} records/s offered)")
    latency.legend(fontsize=8)
    for axes in (speed, latency):
        axes.set_xticks(positions, names, rotation=30, ha="right", fontsize=8)
    return _save(figure, directory, "group_commit.png")


def read_side(read: JsonDict, directory: Path) -> str:
    """Keyless and full verification next to raw SHA-256 over the same bytes, in MB/s."""
    names = ["raw SHA-256", "keyless verify", "full verify"]
    values = [read["sha256_mb_per_s"], read["keyless_mb_per_s"], read["full_mb_per_s"]]
    figure, (axes,) = _figure(8, 2.6)
    axes.barh(list(reversed(names)), list(reversed(values)), color=[OURS, OURS, PEERS])
    _label_bars(axes, list(reversed(values)), "{:,.0f}")
    axes.set_xlabel("MB/s over the segment bytes")
    axes.set_title(f"Verification, {read['params']['records']:,} records")
    return _save(figure, directory, "read_side.png")


def index_growth(index: JsonDict, before: JsonDict | None, directory: Path) -> str:
    """Read-by-index p99 and open-for-write time at each size, and before issue 12 if kept."""
    figure, (reads, opens) = _figure(9, 2.8, columns=2)
    runs = [("now", index, OURS)] + ([("before", before, PEERS)] if before else [])
    width = 0.8 / len(runs)
    for number, (label, run, colour) in enumerate(runs):
        sizes = [f"{row['records']:,}" for row in run["sizes"]]
        places = [i + number * width for i in range(len(sizes))]
        p99 = [row["read"]["p99_ms"] for row in run["sizes"]]
        opens_ms = [row["open"]["open_s"] * 1e3 for row in run["sizes"]]
        reads.bar(places, p99, width, color=colour, label=label)
        opens.bar(places, opens_ms, width, color=colour, label=label)
        for axes in (reads, opens):
            axes.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(sizes))])
            axes.set_xticklabels(sizes)
    reads.set_ylabel("read by index p99 (ms)")
    opens.set_ylabel("open for write (ms)")
    reads.set_xlabel("records")
    opens.set_xlabel("records")
    reads.legend()
    return _save(figure, directory, "index_growth.png")


def draw_all(results: dict[str, JsonDict], directory: Path) -> dict[str, str]:
    """Every figure whose results exist: bench name -> PNG file name in ``directory``.

    Without matplotlib (it is in the ``bench`` extra only) nothing is drawn and the page
    renders without figures.
    """
    drawn: dict[str, str] = {}
    if importlib.util.find_spec("matplotlib") is None:
        return drawn
    if "write" in results:
        drawn["write"] = write_side_by_side(results["write"], directory)
    if "profile" in results:
        drawn["profile"] = profile_breakdown(results["profile"], directory)
    if "scale" in results:
        drawn["scale"] = scale_size(results["scale"], directory)
        drawn["group_commit"] = group_commit(results["scale"], directory)
    if "read" in results:
        drawn["read"] = read_side(results["read"], directory)
    if "index" in results:
        before = results.get("index_before_issue12")
        drawn["index"] = index_growth(results["index"], before, directory)
    return drawn
