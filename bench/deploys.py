"""Benchmark: ten deploys under a steady load, three ways, on this machine.

1. Switchyard zero-downtime (watch window 12 s), 2. Switchyard recreate, 3. Dokku's method
reproduced with nginx. Same app, same releases (bench/releases.py), same load: 4 keep-alive
clients asking /cgi-bin/page through the proxy as fast as they are answered, for the whole run,
plus 2 clients asking a 2-second page during the deploy of the "slow requests" release.
Each deploy is followed by 2 s of plain load (12 s after the late-breaking release, so it
breaks under every method). Writes the table into bench/RESULTS.md and the chart into
bench/deploys.png. Everything it starts is stopped, and everything it creates removed.
"""
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import installation  # noqa: E402
installation.configure(SWITCHYARD_DRAIN_TIMEOUT="30")  # an isolated installation on free ports, timed as shipped

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench import chart, collector, figures, metrics, phase_chart  # noqa: E402
from bench.deployers import NginxDeployer, NginxFront, SwitchyardDeployer, warm_build_cache  # noqa: E402
from bench.releases import INITIAL, RELEASES, BenchRepo  # noqa: E402
from bench.results import replace_section  # noqa: E402
from bench.services import free_port, redis_server, workers  # noqa: E402
from deployments.dockerd import cleanup  # noqa: E402
from deployments.haproxy import process as haproxy_process
from deployments.traffic import changes, target
from tests.support.load import Load  # noqa: E402

WATCH_WINDOW = 12
DWELL = 2.0
DWELL_AFTER_BREAK = 12.0
CHART = ROOT / "bench" / "deploys.png"
PHASE_CHART = ROOT / "bench" / "deploys_phases.png"


def run_scenario(name: str, deployer, port: int) -> metrics.ScenarioResult:
    print(f"== {name}", flush=True)
    deployer.deploy(INITIAL)
    time.sleep(1)
    records, slow_answers = [], []
    started = time.time()
    with Load(port, deployer.host, threads=4, path="/cgi-bin/page", max_seconds=900) as load:
        time.sleep(2)
        for release in RELEASES:
            slow = Load(port, deployer.host, threads=2, path="/cgi-bin/slow", max_seconds=120) \
                if release.kind == "slow_requests" else None
            if slow:
                slow.__enter__()
                time.sleep(0.5)  # the 2-second requests are in flight when the switch comes
            record = deployer.deploy(release)
            if slow:
                slow_answers += slow.stop().answers
            records.append(record)
            print(f"   {release.label}: {record.outcome} in {record.end - record.start:.1f}s", flush=True)
            time.sleep(DWELL_AFTER_BREAK if release.kind == "breaks_later" else DWELL)
    deployer.close()
    return metrics.ScenarioResult(name, started, load.result.answers, slow_answers, records)


def main() -> None:
    call_command("migrate", verbosity=0)
    work = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    results = []
    try:
        # As the Procfile runs them (a watch hands off to its own worker); the load's answers kept
        # out of the garbage collector's way (bench/collector.py).
        with redis_server(), workers(work), collector.answers_frozen():
            try:
                changes.sync_all()
                warm_build_cache(BenchRepo(work / "warm"), [INITIAL, *RELEASES])
                http_port = settings.SWITCHYARD["HTTP_BIND"][1]
                results.append(run_scenario("Switchyard zero-downtime", SwitchyardDeployer(
                    BenchRepo(work / "zd"), "zd", zero_downtime=True, watch_window=WATCH_WINDOW), http_port))
                results.append(run_scenario("Switchyard recreate", SwitchyardDeployer(
                    BenchRepo(work / "rc"), "rc", zero_downtime=False, watch_window=0), http_port))
                front = NginxFront(work / "nginx", free_port())
                try:
                    results.append(run_scenario("Dokku's method (nginx reload)", NginxDeployer(
                        BenchRepo(work / "dk"), "dk", front), front.port))
                finally:
                    front.close()
            finally:  # the worker started HAProxy when it came up: stop it whatever happened
                haproxy_process.stop(target.paths())
    finally:
        cleanup.remove_instance_resources()
        shutil.rmtree(work, ignore_errors=True)
    report(results)


def report(results: list[metrics.ScenarioResult]) -> None:
    table, phases = metrics.table(results), metrics.phase_table(results)
    record_figures(results)
    print(table, phases, sep="\n\n")
    chart.draw(results, CHART)
    phase_chart.draw(results, PHASE_CHART, "Where a deploy's time goes: ten deploys, median per phase")
    releases = ", ".join(r.label for r in RELEASES)
    replace_section("deploys", f"""## Ten deploys under load: Switchyard against Dokku's method

Same app (busybox httpd serving CGI pages, FROM scratch), same ten releases in this order:
{releases}. Same load: 4 keep-alive clients asking `/cgi-bin/page` through the proxy as fast as
they are answered, for the whole run, plus 2 clients asking a page that takes 2 s during the
deploy of v3. Every answer carries its length, as real apps' do (before, none did: HAProxy,
which does not re-chunk an HTTP/1.0 answer, then closed the client's connection after each
one, while nginx kept it; the extra connections, each tracked by the kernel for 2 minutes after
it closed, made every container stop slower, dockerd walks them all; the drain went from 1.05 s
to 0.70 s). Every release dies at once on SIGTERM (busybox httpd does). Switchyard's watch
window is {WATCH_WINDOW} s; its drain waits for requests in flight (up to 30 s). Dokku's method:
nginx in front, upstream rewritten and `nginx -s reload` once the new container answers its
health check, then the old container stopped at once (real Dokku waits `DOKKU_WAIT_TO_RETIRE`,
60 s by default, before stopping it; the issue asks for the method as stated).

{table}

Where the time goes, per phase (median of the deploys that went live; every method meets the
build cache in the same state: each release's files were built once before the first scenario):

{phases}

![median seconds per phase](deploys_phases.png)

Switch latency = from the moment the deployer knew the new release healthy (Switchyard: HAProxy
reported the new servers UP, which verify polls every 20 ms; Dokku's method: the health check
answered) to the send time of the first request the new version answered.
Panel overhead = total deploy time − build − boot-to-healthy (start + verify) − the watch
window and the drain (deliberate waits); that is queueing, fetch, switch and bookkeeping.

![successful requests per 100 ms](deploys.png)
""")


def record_figures(results: list[metrics.ScenarioResult]) -> None:
    """For bench/goals.py: zero-downtime (the first scenario) against Dokku's method (the last)."""
    ours, dokku = results[0], results[-1]
    figures.record("deploys", serving=statistics.median(ours.serving_seconds()),
                   serving_dokku=statistics.median(dokku.serving_seconds()),
                   whole=statistics.median(ours.seconds_without_watch()),
                   whole_dokku=statistics.median(dokku.seconds_without_watch()),
                   overhead=statistics.median(ours.overheads()),
                   failed_not_own=len(ours.failed) - ours.late_break()["errors"])


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(settings.DATA_DIR, ignore_errors=True)
