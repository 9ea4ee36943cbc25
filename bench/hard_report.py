"""What the hard cases' answers amount to: their tables in bench/RESULTS.md and their chart."""
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench import figures  # noqa: E402
from bench.deployers import DeployRecord  # noqa: E402
from bench.metrics import longest_gap, percentile  # noqa: E402
from bench.results import replace_section  # noqa: E402
from bench.streams import Reconnect, StreamRecord  # noqa: E402
from tests.support.load import Answer  # noqa: E402

CHART = Path(__file__).resolve().parent / "hard_cases.png"


@dataclass
class CaseResult:
    name: str  # the method
    started: float
    records: list[DeployRecord] = field(default_factory=list)
    gets: list[Answer] = field(default_factory=list)
    posts: list[Answer] = field(default_factory=list)
    bystanders: list[Answer] = field(default_factory=list)
    streams: list[StreamRecord] = field(default_factory=list)
    sockets: list[StreamRecord] = field(default_factory=list)
    config_changes: int = 0
    recorded: Counter = field(default_factory=Counter)  # POST id → times it reached an app

    def post_delivery(self) -> tuple[int, int, int]:
        """POSTs whose id reached the app exactly once, more than once, never."""
        times = [self.recorded[answer.sent] for answer in self.posts]
        return sum(t == 1 for t in times), sum(t > 1 for t in times), sum(t == 0 for t in times)

    def wrong_post_answers(self) -> int:
        """200s that do not carry the id they were sent for (a mixed-up answer)."""
        return sum(1 for a in self.posts if a.status == 200 and a.body.split()[-1:] != [a.sent])


def failed(answers: list[Answer]) -> int:
    return sum(1 for a in answers if not 200 <= a.status < 300)


def _sent_failed(answers: list[Answer]) -> str:
    return f"{len(answers):,} / {failed(answers):,}"


def _reconnects(records: list[StreamRecord]) -> list[Reconnect]:
    return [r for record in records for r in record.reconnects]


def _reconnect_times(records: list[StreamRecord]) -> str:
    times = [r.seconds * 1000 for r in _reconnects(records)]
    if not times:
        return "no reconnect"
    return f"{len(times)} · {statistics.median(times):.0f} / {max(times):.0f} ms"


def _lost(records: list[StreamRecord]) -> str:
    lost = [r.lost_messages for r in _reconnects(records)]
    if not lost:
        return "0"
    return f"{statistics.median(lost):.0f} / {max(lost)} ({sum(lost)} in all)"


def _final_releases(records: list[StreamRecord]) -> str:
    """The release each client's last message came from (the last one deployed, if it followed)."""
    finals = [record.releases[-1] if record.releases else "none" for record in records]
    return ", ".join(finals)


def _phase(results: CaseResult, phase: str) -> str:
    values = [r.phases[phase] for r in results.records if r.phases.get(phase)]
    return f"{statistics.median(values):.2f} / {max(values):.2f} s" if values else "–"


def _deploy_times(result: CaseResult) -> str:
    values = [r.end - r.start for r in result.records]
    return f"{statistics.median(values):.1f} / {max(values):.1f} s" if values else "–"


def _outcomes(result: CaseResult) -> str:
    counts = Counter(r.outcome for r in result.records)
    return ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in sorted(counts.items()))


def _latency(answers: list[Answer]) -> str:
    times = [(a.at - a.started) * 1000 for a in answers if a.status == 200]
    return f"{percentile(times, .5):.0f} / {percentile(times, .99):.0f} / {max(times, default=0):.0f} ms"


def _per_release_times(result: CaseResult) -> str:
    return " · ".join(f"{r.release.version} {r.end - r.start:.1f} s" for r in result.records)


def _table(results: list[CaseResult], rows: list[tuple]) -> str:
    lines = ["| | " + " | ".join(r.name for r in results) + " |", "|" + "---|" * (len(results) + 1)]
    lines += ["| " + " | ".join([label, *[cell(r) for r in results]]) + " |" for label, cell in rows]
    return "\n".join(lines)


def posts_and_streams_table(results: list[CaseResult]) -> str:
    return _table(results, [
        ("short GETs sent / failed", lambda r: _sent_failed(r.gets)),
        ("POSTs sent / failed", lambda r: _sent_failed(r.posts)),
        ("POST ids that reached the app exactly once / twice or more / never", lambda r: " / ".join(
            f"{n:,}" for n in r.post_delivery())),
        ("POST answers with another request's id", lambda r: f"{r.wrong_post_answers():,}"),
        ("event streams: reconnects · time to the new stream, median / max",
         lambda r: _reconnect_times(r.streams)),
        ("event streams: messages lost per reconnect, median / max", lambda r: _lost(r.streams)),
        ("event streams: release of each client's last message", lambda r: _final_releases(r.streams)),
        ("WebSockets: reconnects · time to the new stream, median / max", lambda r: _reconnect_times(r.sockets)),
        ("WebSockets: messages lost per reconnect, median / max", lambda r: _lost(r.sockets)),
        ("WebSockets: release of each client's last message", lambda r: _final_releases(r.sockets)),
        ("drain per deploy, median / max", lambda r: _phase(r, "drain")),
        ("time per deploy, median / max", _deploy_times),
        ("deploys", _outcomes),
    ])


def reload_table(results: list[CaseResult]) -> str:
    return _table(results, [
        ("apps created and deleted during A's deploys (each a reload)", lambda r: f"{r.config_changes}"),
        ("A: short GETs sent / failed", lambda r: _sent_failed(r.gets)),
        ("A: POSTs sent / failed", lambda r: _sent_failed(r.posts)),
        ("A: POST ids that reached the app exactly once / twice or more / never", lambda r: " / ".join(
            f"{n:,}" for n in r.post_delivery())),
        ("bystander apps: requests sent / failed", lambda r: _sent_failed(r.bystanders)),
        ("bystander apps: longest gap without a successful answer",
         lambda r: f"{longest_gap(r.bystanders) * 1000:.0f} ms"),
        ("A's deploys", _outcomes),
    ])


def slow_table(results: list[CaseResult]) -> str:
    return _table(results, [
        ("requests sent / failed", lambda r: _sent_failed(r.gets)),
        ("latency p50 / p99 / max", lambda r: _latency(r.gets)),
        ("time per deploy", _per_release_times),
        ("drain per deploy, median / max", lambda r: _phase(r, "drain")),
        ("deploys", _outcomes),
    ])


def draw(results: dict[str, list[CaseResult]], path: Path) -> None:
    figure, (failures, reconnects) = plt.subplots(1, 2, figsize=(15, 4.8))
    cases = [("posts_and_streams", "GETs + POSTs,\n10 deploys"), ("reload_during_deploy", "reload during\na deploy"),
             ("slow_and_dying", "slow and\ndying releases")]
    methods = [r.name for r in results["posts_and_streams"]]
    width = 0.8 / len(methods)
    for index, method in enumerate(methods):
        counts = [failed(_case_answers(results[case][index])) for case, _ in cases]
        bars = failures.bar([c + index * width for c in range(len(cases))], [max(n, 0.8) for n in counts], width,
                            label=method)
        failures.bar_label(bars, labels=[f"{n:,}" for n in counts], fontsize=8)
    failures.set_yscale("log")
    failures.set_ylim(0.5, failures.get_ylim()[1] * 30)  # room for the legend above the bars
    failures.set_xticks([c + width * (len(methods) - 1) / 2 for c in range(len(cases))], [label for _, label in cases])
    failures.set_title("Failed requests (log scale; 0 drawn as a stub)", loc="left")
    failures.legend(fontsize=8, loc="upper left", ncol=3)
    kinds = (("event stream", "o", "#4338ca"), ("WebSocket", "^", "#ea580c"))
    for index, result in enumerate(results["posts_and_streams"]):
        for offset, (records, (kind, marker, colour)) in enumerate(zip((result.streams, result.sockets), kinds)):
            times = [r.seconds * 1000 for r in _reconnects(records)]
            reconnects.scatter([index - 0.1 + offset * 0.2] * len(times), times, marker=marker, color=colour,
                               alpha=0.6, label=kind if index == 0 else None)
    reconnects.set_xticks(range(len(methods)), methods, fontsize=9)
    reconnects.set_yscale("log")
    reconnects.set_ylabel("ms, end of a stream → next one's first message")
    reconnects.set_title("Long-lived clients: time to reconnect, each reconnect", loc="left")
    reconnects.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _case_answers(result: CaseResult) -> list[Answer]:
    return result.gets + result.posts + result.bystanders


def write(results: dict[str, list[CaseResult]]) -> None:
    tables = {"posts_and_streams": posts_and_streams_table(results["posts_and_streams"]),
              "reload_during_deploy": reload_table(results["reload_during_deploy"]),
              "slow_and_dying": slow_table(results["slow_and_dying"])}
    for table in tables.values():
        print(table)
    draw(results, CHART)
    ours = [case[0] for case in results.values()]  # Switchyard zero-downtime's, for bench/goals.py
    figures.record("hard", failed=sum(failed(r.gets) + failed(r.posts) + failed(r.bystanders) for r in ours),
                   bystander_gap_ms=longest_gap(results["reload_during_deploy"][0].bystanders) * 1000)
    first = results["posts_and_streams"][0]
    replace_section("hard", _SECTION.format(streams=len(first.streams), sockets=len(first.sockets), **tables))


# The section of bench/RESULTS.md: how each case is run, then its table (`write` fills the braces).
_SECTION = """## The hard cases: POSTs, long-lived connections, reloads, slow and dying releases

Apps FROM scratch: busybox httpd with CGI pages (`bench/hard_apps.py`), and Debian's websocketd
(copied into the image with the loader and libc it links: Debian builds it dynamically).
Switchyard's watch window is 2 s and its drain waits up to 30 s for requests waiting for an
answer; Dokku's method stops the old container right after `nginx -s reload` (`docker stop`,
10 s grace), with nginx configured as Dokku's template does (HTTP/1.1 upstream, Upgrade passed,
response buffering off). Each long-lived client reconnects at once when its connection ends.

### 1. POSTs exactly once, and long-lived connections, through ten deploys

Two apps deployed side by side ten times: one under 2 clients of short GETs, 2 clients of POSTs
(each with a unique id, which the app reports to a recorder outside its container before it
answers) and {streams} event streams; the other (websocketd) with
{sockets} WebSocket clients. Every stream sends a message every 100 ms;
"lost" is the time between the last message on the old connection and the first on the new,
in messages, less one.

{posts_and_streams}

### 2. A reload during a deploy

App A deploys five times under 2 clients of GETs and 2 of POSTs while another app is created
every 0.25 s and the one created two steps before deleted (each a config change and a reload
of the proxy); two bystander apps serve 2 clients each meanwhile.

{reload_during_deploy}

### 3. Slow and dying releases

Under 4 clients asking the page as fast as they are answered: v1 is slow (one request in 20
takes 1.5 s), v2 is slow and ignores SIGTERM (only SIGKILL after the 10 s stop timeout ends
it), v3 is plain. Each serves 3 s before the next deploy replaces it.

{slow_and_dying}

![failed requests per case, and reconnect times](hard_cases.png)
"""
