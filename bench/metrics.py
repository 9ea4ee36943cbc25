"""What one scenario's answers and deploy records amount to: the numbers of the results table."""
import statistics
from dataclasses import dataclass

from bench.deployers import PHASES, DeployRecord
from tests.support.load import Answer


@dataclass
class ScenarioResult:
    name: str
    started: float
    answers: list[Answer]  # the steady load on /cgi-bin/page
    slow_answers: list[Answer]  # the 2-second requests sent during one deploy
    records: list[DeployRecord]

    @property
    def everything(self) -> list[Answer]:
        return self.answers + self.slow_answers

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.everything if not 200 <= a.status < 300]

    def longest_gap(self) -> float:
        return longest_gap(self.answers)

    def switch_latencies_ms(self) -> list[float]:
        """Per deploy that went live: health OK → first request answered by the new version
        (measured at the moment that request was sent, so its own duration does not count)."""
        return [max(0.0, first - record.health_ok) * 1000 for record in self.succeeded()
                if record.health_ok is not None and (first := self.first_answer(record)) is not None]

    def first_answer(self, record: DeployRecord) -> float | None:
        """When the first request the record's release answered was sent."""
        return min((a.started for a in self.answers if a.body == record.release.version), default=None)

    def serving_seconds(self) -> list[float]:
        """Per deploy that went live: the deploy asked for → the first request the new release
        answered (at that request's send time)."""
        return [max(0.0, first - record.start) for record in self.succeeded()
                if (first := self.first_answer(record)) is not None]

    def seconds_without_watch(self) -> list[float]:
        """Per deploy that went live: the whole deployment, the configured watch window aside."""
        return [r.end - r.start - r.phases.get("watch", 0.0) for r in self.succeeded()]

    def phase_medians(self) -> dict[str, float]:
        """Median seconds of each phase over the deploys that went live (0 for a phase it lacks)."""
        records = self.succeeded()
        return {phase: statistics.median(r.phases.get(phase, 0.0) for r in records) if records else 0.0
                for phase in PHASES}

    def succeeded(self) -> list[DeployRecord]:
        return [r for r in self.records if r.outcome == "succeeded"]

    def latencies_during_deploys_ms(self) -> list[float]:
        windows = [(r.start, r.end) for r in self.records]
        return sorted((a.at - a.started) * 1000 for a in self.answers
                      if a.status == 200 and any(start <= a.started <= end for start, end in windows))

    def overheads(self) -> list[float]:
        """Switchyard only: total − build − boot-to-healthy (start + verify) − the watch window
        and the drain (both deliberate waits): what the panel itself adds."""
        result = []
        for record in self.records:
            if record.outcome == "succeeded" and record.phases:
                waits = sum(record.phases.get(p, 0.0) for p in ("build", "start", "verify", "watch", "drain"))
                result.append(record.end - record.start - waits)
        return result

    def late_break(self) -> dict:
        """For the late-breaking release: 5xx users saw, and first 5xx → old release answering again."""
        index = next(i for i, r in enumerate(self.records) if r.release.kind == "breaks_later")
        record = self.records[index]
        until = self.records[index + 1].start if index + 1 < len(self.records) else float("inf")
        previous = self.records[index - 1].release.version
        # 500 is what the release itself answers once broken (HAProxy's own gap answers are 503).
        errors = sorted((a for a in self.answers if a.status == 500 and record.start <= a.at < until), key=lambda a: a.at)
        if not errors:
            return {"errors": 0, "recovery": None, "caught": record.outcome == "rolled_back"}
        recovered = min((a.at for a in self.answers if a.body == previous and a.at > errors[0].at), default=None)
        recovery = (recovered - errors[0].at) if recovered and recovered < until else None
        return {"errors": len(errors), "recovery": recovery, "caught": record.outcome == "rolled_back"}


def longest_gap(answers: list[Answer]) -> float:
    """Seconds without any successful answer."""
    times = sorted(a.at for a in answers if a.status == 200)
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def table(results: list[ScenarioResult]) -> str:
    header = ["", *[r.name for r in results]]
    rows = [
        ("requests sent", lambda r: f"{len(r.everything):,}"),
        ("failed (non-2xx or connection error)", lambda r: f"{len(r.failed):,}"),
        ("failure %", lambda r: f"{100 * len(r.failed) / max(1, len(r.everything)):.2f} %"),
        ("  of which the late-breaking release's own 5xx", lambda r: f"{r.late_break()['errors']:,}"),
        ("longest gap without a successful response", lambda r: f"{r.longest_gap() * 1000:.0f} ms"),
        ("switch latency (health OK → first new answer), median / max",
         lambda r: _pair(r.switch_latencies_ms(), "{:.1f} ms")),
        ("  of which inside Switchyard (UP seen → HAProxy routes to it), median / max",
         lambda r: _pair([x.routed_ms for x in r.records if x.routed_ms is not None], "{:.1f} ms")),
        ("latency during deploys p50 / p99",
         lambda r: f"{percentile(r.latencies_during_deploys_ms(), .5):.1f} / "
                   f"{percentile(r.latencies_during_deploys_ms(), .99):.1f} ms"),
        ("time to the new release serving (deploy asked → first new answer), median / max",
         lambda r: _pair(r.serving_seconds(), "{:.2f} s")),
        ("whole deployment, watch window aside, median / max", lambda r: _pair(r.seconds_without_watch(), "{:.2f} s")),
        ("panel overhead per deploy, median / max", lambda r: _pair(r.overheads(), "{:.2f} s") if r.overheads() else "–"),
        ("late-breaking release caught", lambda r: "yes, rolled back" if r.late_break()["caught"] else "no"),
        ("first 5xx → old release serving again", lambda r: _recovery(r.late_break())),
        ("  of which rollback (trouble detected → HAProxy routes back)",
         lambda r: " / ".join(f"{x.rollback_ms:.0f} ms" for x in r.records if x.rollback_ms is not None) or "–"),
        ("deploys: succeeded / failed / rolled back",
         lambda r: " / ".join(str(sum(1 for x in r.records if x.outcome == o)) for o in ("succeeded", "failed", "rolled_back"))),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([name, *[cell(r) for r in results]]) + " |" for name, cell in rows]
    return "\n".join(lines)


def phase_table(results: list[ScenarioResult]) -> str:
    """Median seconds per phase, one column per method (deploys that went live)."""
    medians = [r.phase_medians() for r in results]
    lines = ["| phase, median | " + " | ".join(r.name for r in results) + " |", "|" + "---|" * (len(results) + 1)]
    lines += [f"| {phase} | " + " | ".join(f"{m[phase]:.2f} s" for m in medians) + " |" for phase in PHASES]
    lines.append("| **sum, watch window aside** | " + " | ".join(
        f"**{sum(v for k, v in m.items() if k != 'watch'):.2f} s**" for m in medians) + " |")
    return "\n".join(lines)


def _recovery(late: dict) -> str:
    if late["errors"] == 0:
        return "no 5xx reached users"
    if late["recovery"] is None:
        return "not until the next deploy"
    return f"{late['recovery'] * 1000:.0f} ms"


def _pair(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    return f"{fmt.format(statistics.median(values))} / {fmt.format(max(values))}"
