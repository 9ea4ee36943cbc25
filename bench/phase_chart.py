"""The chart of where a deploy's time goes: median seconds per phase, one bar per method,
phases stacked in their order (the watch window left out: a wait the user configures)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.deployers import PHASES  # noqa: E402
from bench.metrics import ScenarioResult  # noqa: E402

COLOURS = dict(zip(PHASES, ("#9ca3af", "#60a5fa", "#2563eb", "#34d399", "#059669", "#fbbf24", "#f97316",
                            "#e5e7eb", "#a78bfa", "#6b7280")))


def draw(results: list[ScenarioResult], path: Path, title: str) -> None:
    figure, axis = plt.subplots(figsize=(12, 1.2 + 0.8 * len(results)))
    names = [r.name for r in results][::-1]  # the first method on top
    lefts = [0.0] * len(results)
    for phase in (p for p in PHASES if p != "watch"):
        widths = [r.phase_medians()[phase] for r in results][::-1]
        axis.barh(names, widths, left=lefts, color=COLOURS[phase], label=phase, edgecolor="white", lw=0.5)
        for row, (left, width) in enumerate(zip(lefts, widths)):
            if width >= 0.25:  # room for its figure
                axis.text(left + width / 2, row, f"{width:.1f}", ha="center", va="center", fontsize=8)
        lefts = [left + width for left, width in zip(lefts, widths)]
    axis.set_xlabel("seconds, median per deploy (watch window left out)")
    axis.set_title(title, loc="left", fontsize=11)
    axis.legend(ncol=len(PHASES), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.35 - 0.05 * len(results)))
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
