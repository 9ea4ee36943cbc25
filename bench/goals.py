"""Writes the goals section of bench/RESULTS.md: each goal of issue 25 with the figure that
judges it, met or not, from bench/figures.json (what the benchmarks of this run recorded)."""
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import figures  # noqa: E402
from bench.results import replace_section  # noqa: E402

GAP_LIMIT_MS = 50


@dataclass(frozen=True)
class Goal:
    text: str
    figure: str
    met: bool


def deploy_goals(d: dict) -> list[Goal]:
    whole_limit = 1.3 * d["whole_dokku"]
    return [
        Goal("A deploy's time to the new release serving ≤ Dokku's method's (medians)",
             f"{d['serving']:.2f} s against {d['serving_dokku']:.2f} s", d["serving"] <= d["serving_dokku"]),
        Goal("The whole deployment, watch window aside, ≤ 1.3 × Dokku's method's (medians)",
             f"{d['whole']:.2f} s against 1.3 × {d['whole_dokku']:.2f} s = {whole_limit:.2f} s",
             d["whole"] <= whole_limit),
        Goal("Panel overhead per deploy ≤ 0.1 s (median)", f"{d['overhead']:.2f} s", d["overhead"] <= 0.1),
    ]


def many_goals(m: dict) -> list[Goal]:
    return [
        Goal("10 apps redeployed at once: each ≤ 2 × a single deploy",
             f"slowest {m['at_once_max']:.1f} s against 2 × {m['single']:.1f} s{_floor(m)}",
             m["at_once_max"] <= 2 * m["single"]),
        Goal("100 apps created and deployed ≤ 120 s", f"{m['all_seconds']:.0f} s", m["all_seconds"] <= 120),
        Goal("The apps page ≤ 50 ms at 100 apps", f"{m['page_ms']:.0f} ms", m["page_ms"] <= 50),
    ]


def _floor(m: dict) -> str:
    """dockerd's own time to start those 10 containers at once, when the run measured it."""
    if "floor_at_once" not in m:
        return ""
    return f" (dockerd alone takes {m['floor_at_once']:.1f} s to start their 10 containers at once)"


def webhook_goals(w: dict) -> list[Goal]:
    floor = f" (a request refused at once: {w['floor']:.1f} ms)" if "floor" in w else ""
    return [Goal(f"Webhook answer p95 ≤ 10 ms, {kind}", f"{w[kind]:.1f} ms{floor}", w[kind] <= 10)
            for kind in ("queued", "ignored")]


def gap_goals(h: dict, m: dict) -> list[Goal]:
    """Apps created and deleted (one reload each) while other apps serve: the longest gap any of those saw."""
    gaps = [value for value in (h.get("bystander_gap_ms"), m.get("others_gap_ms")) if value is not None]
    worst = max(gaps) if gaps else float("nan")
    return [Goal(f"Creating or deleting an app never opens a gap over {GAP_LIMIT_MS} ms for any other app",
                 f"longest {worst:.0f} ms (bystanders of the reload case; the 100 apps' sample)",
                 bool(gaps) and worst <= GAP_LIMIT_MS)]


def zero_goals(found: dict) -> list[Goal]:
    """Every zero-failure figure stays 0 (the deploys' late-breaking release's own 5xx are the
    release's answers, not failures of the deploy)."""
    counts = {"ten deploys (failures besides the late-breaking release's own 5xx)": found.get("deploys", {}).get("failed_not_own"),
              "Compose app": found.get("compose", {}).get("failed"),
              "hard cases": found.get("hard", {}).get("failed"),
              "100 apps": found.get("many", {}).get("failed")}
    shown = {name: count for name, count in counts.items() if count is not None}
    return [Goal("Every zero-failure figure stays 0 (Switchyard zero-downtime)",
                 " · ".join(f"{name}: {count:.0f}" for name, count in shown.items()),
                 bool(shown) and not any(shown.values()))]


def goals(found: dict) -> list[Goal]:
    listed = []
    if "deploys" in found:
        listed += deploy_goals(found["deploys"])
    if "many" in found:
        listed += many_goals(found["many"])
    if "webhook" in found:
        listed += webhook_goals(found["webhook"])
    if "hard" in found or "many" in found:
        listed += gap_goals(found.get("hard", {}), found.get("many", {}))
    return listed + zero_goals(found)


def main() -> None:
    listed = goals(figures.read())
    rows = [f"| {goal.text} | {goal.figure} | {'met' if goal.met else '**not met**'} |" for goal in listed]
    met = sum(goal.met for goal in listed)
    text = "\n".join([
        "## Goals of issue 25 (fast deploys), from the figures above",
        "", f"{met} of {len(listed)} met.", "",
        "| goal | measured | |", "|---|---|---|", *rows, ""])
    print(text)
    replace_section("goals", text)


if __name__ == "__main__":
    main()
