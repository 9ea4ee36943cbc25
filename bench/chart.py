"""The chart: successful (and failed) requests per 100 ms over time, deploys marked."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.metrics import ScenarioResult  # noqa: E402

BUCKET = 0.1
OUTCOME_COLOURS = {"succeeded": "#c7d2fe", "failed": "#fde68a", "rolled_back": "#fecaca"}


def draw(results: list[ScenarioResult], path: Path) -> None:
    figure, axes = plt.subplots(len(results), 1, figsize=(15, 3.6 * len(results)))
    for axis, result in zip(axes, results):
        _panel(axis, result)
    axes[-1].set_xlabel("seconds since the load started")
    figure.suptitle("Successful requests per 100 ms through the proxy during 10 deploys (failed in red)", fontsize=13)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _panel(axis, result: ScenarioResult) -> None:
    for record in result.records:
        axis.axvspan(record.start - result.started, record.end - result.started,
                     color=OUTCOME_COLOURS.get(record.outcome, "#e5e7eb"), alpha=0.6, lw=0)
        axis.text(record.start - result.started, 1.0, " " + record.release.version + _mark(record),
                  transform=axis.get_xaxis_transform(), fontsize=8, va="top", color="#374151")
    ok, failed = _buckets(result)
    xs = [i * BUCKET for i in range(len(ok))]
    axis.plot(xs, ok, color="#4338ca", lw=0.8, label="successful")
    axis.bar(xs, failed, width=BUCKET, color="#dc2626", label="failed")
    # Scaled to the successful traffic: fast error answers (503 storms) would flatten it.
    top = max(max(ok) * 1.35, 10)
    axis.set_ylim(0, top)
    clipped = " (red bars clipped at the top)" if max(failed, default=0) > top else ""
    axis.set_title(f"{result.name}: {len(result.everything):,} requests, {len(result.failed):,} failed{clipped}",
                   loc="left", fontsize=11)
    axis.set_ylabel("requests / 100 ms")
    axis.set_xlim(0, len(ok) * BUCKET)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)


def _mark(record) -> str:
    return {"failed": " ✗", "rolled_back": " ↩"}.get(record.outcome, "")


def _buckets(result: ScenarioResult) -> tuple[list[int], list[int]]:
    end = max(a.at for a in result.everything) - result.started
    count = int(end / BUCKET) + 1
    ok, failed = [0] * count, [0] * count
    for answer in result.everything:
        index = int((answer.at - result.started) / BUCKET)
        if 0 <= index < count:
            (ok if answer.status == 200 else failed)[index] += 1
    return ok, failed
