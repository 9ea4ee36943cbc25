"""Benchmark: 100 apps on one host, through Switchyard (zero-downtime).

One app first, redeployed to measure the switch and the costs at 1 app. Then 99 more created
one after another, each deployed as soon as it exists, then 10 of them redeployed at once, while a load runs on a
sample of 5 apps that are not deployed meanwhile. Then the first app redeployed again, for the
switch and the costs at 100 apps, and every app asked through HAProxy. HAProxy's and the
workers' memory and CPU are read from /proc around each phase. Writes its section of
bench/RESULTS.md. Everything it starts is stopped, and everything it creates removed.
"""
import http.client
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import installation  # noqa: E402
installation.configure(SWITCHYARD_DEFAULT_WATCH_WINDOW="0")  # an isolated installation on free ports, timed as shipped

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench import collector, dockerd_floor, figures, processes  # noqa: E402
from bench.deployers import ROUTED_LINE  # noqa: E402
from bench.metrics import longest_gap, percentile  # noqa: E402
from bench.results import replace_section  # noqa: E402
from bench.services import installation  # noqa: E402
from deployments.application import apps, deploys  # noqa: E402
from deployments.application.app_settings import AppSpec  # noqa: E402
from deployments.audit import Actor  # noqa: E402
from deployments.engine import reconcile  # noqa: E402
from deployments.haproxy import config  # noqa: E402
from deployments.models import App, Deployment  # noqa: E402
from deployments.traffic import readings, rows, target  # noqa: E402
from tests.support.apprepo import AppRepo  # noqa: E402
from tests.support.load import Answer, Load  # noqa: E402

APPS = 100
AT_ONCE = 10
SAMPLE = 5  # apps under load, never deployed while it runs
SWITCH_SAMPLES = 3  # redeploys of the first app, at 1 app and at 100
PAGE_SAMPLES = 10  # looks at the apps page, after the first
OWNERS = 10
ACTOR = Actor.cli("bench")


@dataclass
class Costs:
    """What one routing or panel operation costs at a number of apps."""
    apps: int
    switch_ms: list[float] = field(default_factory=list)  # HAProxy UP seen → routed, per redeploy
    deploy_seconds: list[float] = field(default_factory=list)  # each of those redeploys, asked → ended
    render_ms: float = 0.0  # snapshot of the database + config and map rendered
    stat_ms: float = 0.0  # one backend's servers read from HAProxy (what verify polls)
    reconcile_ms: float = 0.0
    page_ms: float = 0.0  # the apps page, as a superuser
    page_queries: int = 0
    seconds: float = 0.0  # what measuring all this took


@dataclass
class Phase:
    name: str
    seconds: float
    deploy_seconds: list[float]
    usage: processes.Usage


def name(index: int) -> str:
    return f"app{index:03d}"


def deploy_all(apps: list[App]) -> list[Deployment]:
    """Deploy these apps at the same moment and wait for every one."""
    return wait_all([deploys.deploy(app, ref=None, actor=ACTOR) for app in apps])


def create(index: int, repo: AppRepo) -> App:
    """App `index`, owned by one of OWNERS users in turn: one owner may run only
    SWITCHYARD_MAX_CONCURRENT_DEPLOYS_PER_USER deployments at once (2), and a shared host's apps
    have many owners."""
    app = apps.create_app(AppSpec.of(name=name(index), repo_url=repo.url), actor=ACTOR)
    owner, _ = get_user_model().objects.get_or_create(username=f"bench-owner-{index % OWNERS}")
    App.objects.filter(pk=app.pk).update(owner=owner)
    app.owner = owner
    return app


def wait_all(deployments: list[Deployment]) -> list[Deployment]:
    """Until every one has ended; each must have succeeded."""
    for deployment in deployments:
        while not deployment.is_final:
            time.sleep(0.05)
            deployment.refresh_from_db()
    failed = [f"{d.app.name}: {d.error}" for d in deployments if d.state != Deployment.State.SUCCEEDED]
    if failed:
        raise RuntimeError("deploys failed: " + "; ".join(failed[:3]))
    return deployments


def _ms(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def measure_costs(first: App, count: int) -> Costs:
    began, costs = time.monotonic(), Costs(count)
    for _ in range(SWITCH_SAMPLES):
        deployment = deploy_all([first])[0]
        log = "\n".join(deployment.log_lines.values_list("text", flat=True))
        costs.switch_ms.append(float(ROUTED_LINE.search(log).group(1)))
        costs.deploy_seconds.append((deployment.finished_at - deployment.created_at).total_seconds())
    location = target.paths()
    costs.render_ms = _ms(lambda: (config.render_config(rows.app_routes(), location, target.binds()),
                                   config.render_map(rows.app_routes())))
    first.refresh_from_db()
    costs.stat_ms = statistics.median(_ms(lambda: readings.servers(first, first.live_colour)) for _ in range(20))
    costs.reconcile_ms = _ms(reconcile.reconcile)
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-admin"))
    with CaptureQueriesContext(connection) as queries:  # the first look also compiles the templates
        client.get("/")
    costs.page_queries = len(queries)
    costs.page_ms = statistics.median(_ms(lambda: client.get("/")) for _ in range(PAGE_SAMPLES))
    costs.seconds = time.monotonic() - began
    return costs


@contextmanager
def phase(name_: str, phases: list[Phase], worker_pids: list[int]):
    """Times the block, and what HAProxy and the workers used in it; the block adds each
    deploy's duration to the list it is given."""
    started, before = time.monotonic(), processes.usage(target.paths(), worker_pids)
    deploy_seconds: list[float] = []
    yield deploy_seconds
    phases.append(Phase(name_, time.monotonic() - started, deploy_seconds,
                        processes.usage(target.paths(), worker_pids).since(before)))


def run(work: Path, worker_pids: list[int]) -> tuple[list[Costs], list[Phase], list[list[Answer]], int, float,
                                                     dockerd_floor.Floor]:
    """Returns the costs at 1 and 100 apps, the phases, each sample app's answers, how many apps
    answer at the end, the seconds from the first app created to the 100th serving, and what
    dockerd alone takes to start the redeployed apps' containers at once."""
    repo = AppRepo(work / "repo")
    repo.commit_version("v1")
    get_user_model().objects.create_superuser("bench-admin", "", "bench-password")
    began = time.monotonic()
    first = create(0, repo)
    deploy_all([first])
    costs = [measure_costs(first, 1)]
    phases: list[Phase] = []
    sample = [create(i, repo) for i in range(1, SAMPLE + 1)]
    deploy_all(sample)
    port = settings.SWITCHYARD["HTTP_BIND"][1]
    loads = [Load(port, f"{app.name}.localhost", threads=1, max_seconds=900) for app in sample]
    for load in loads:
        load.__enter__()
    try:
        created = f"{APPS - SAMPLE - 1} apps created one after another, each deployed as soon as it exists"
        print(f"== {created}", flush=True)
        with phase(created, phases, worker_pids) as times:
            started = [deploys.deploy(create(index, repo), ref=None, actor=ACTOR) for index in range(SAMPLE + 1, APPS)]
            times += [(d.finished_at - d.created_at).total_seconds() for d in wait_all(started)]
        measuring = time.monotonic() - began
        all_seconds = measuring - costs[0].seconds  # what measure_costs took at 1 app aside
        print(f"== {AT_ONCE} apps redeployed at once", flush=True)
        with phase(f"{AT_ONCE} apps redeployed at once", phases, worker_pids) as times:
            batch = [App.objects.get(name=name(i)) for i in range(APPS - AT_ONCE, APPS)]
            for deployment in deploy_all(batch):
                times.append((deployment.finished_at - deployment.created_at).total_seconds())
        print(f"== dockerd alone: {AT_ONCE} release containers started at once", flush=True)
        floor = dockerd_floor.measure(batch)  # under the same load
    finally:
        for load in loads:
            load.stop()
    costs.append(measure_costs(App.objects.get(pk=first.pk), APPS))
    serving = sum(1 for app in App.objects.all() if _answers(port, app))
    return costs, phases, [load.result.answers for load in loads], serving, all_seconds, floor


def _answers(port: int, app: App) -> bool:
    connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection_.request("GET", "/", headers={"Host": f"{app.name}.localhost"})
        return connection_.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection_.close()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    try:
        with installation(work) as started, collector.answers_frozen() as pauses:
            pids = [worker.pid for worker in started]
            costs, phases, sample, serving, all_seconds, floor = run(work, pids)
            haproxy_memory = processes.haproxy_rss_mib(target.paths())
            worker_memory = sum(processes.tree_rss_mib(pid) for pid in pids)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(costs, phases, sample, serving, haproxy_memory, worker_memory, all_seconds, pauses.longest, floor)


def report(costs: list[Costs], phases: list[Phase], sample: list[list[Answer]], serving: int, haproxy_mib: float,
           worker_mib: float, all_seconds: float, client_pause: float, floor: dockerd_floor.Floor) -> None:
    answers = [answer for answers in sample for answer in answers]
    failed = sum(1 for a in answers if a.status != 200)
    others_gap_ms = max(longest_gap(answers) for answers in sample) * 1000
    text = _SECTION.format(
        others=APPS - SAMPLE - 1, at_once=AT_ONCE, sample_apps=SAMPLE, apps=APPS, serving=serving, owners=OWNERS,
        sent=len(answers), failed=failed, haproxy_mib=haproxy_mib, others_gap_ms=others_gap_ms,
        client_pause_ms=client_pause * 1000,
        all_seconds=all_seconds, worker_mib=worker_mib, phase_table=_phase_table(phases), cost_table=_cost_table(costs),
        floor_count=floor.count, floor_at_once=floor.at_once_seconds, floor_alone=floor.alone_seconds)
    print(text)
    figures.record("many", at_once_max=max(phases[-1].deploy_seconds), single=statistics.median(costs[-1].deploy_seconds),
                   all_seconds=all_seconds, page_ms=costs[-1].page_ms, others_gap_ms=others_gap_ms, failed=failed,
                   floor_at_once=floor.at_once_seconds, floor_alone=floor.alone_seconds)
    replace_section("many", text)


def _cost_table(costs: list[Costs]) -> str:
    """What grows with the number of apps: the costs at 1 app and at 100, side by side."""
    one, many = costs
    rows = [
        ("switch (HAProxy UP seen → routed), median / max", lambda c: f"{statistics.median(c.switch_ms):.1f} / "
                                                                       f"{max(c.switch_ms):.1f} ms"),
        ("config and map rendered from the database", lambda c: f"{c.render_ms:.1f} ms"),
        ("one backend's servers read from HAProxy (verify polls it)", lambda c: f"{c.stat_ms:.2f} ms"),
        ("reconcile (all of it)", lambda c: f"{c.reconcile_ms:.0f} ms"),
        ("a redeploy of the first app, asked → ended, median", lambda c: f"{statistics.median(c.deploy_seconds):.1f} s"),
        ("the apps page: time (median of 10, after a first look) · database queries",
         lambda c: f"{c.page_ms:.0f} ms · {c.page_queries}"),
    ]
    return "\n".join(["| | 1 app | 100 apps |", "|---|---|---|"] +
                     [f"| {label} | {cell(one)} | {cell(many)} |" for label, cell in rows])


def _phase_table(phases: list[Phase]) -> str:
    return "\n".join(
        ["| phase | wall time | per deploy, median / p95 / max | HAProxy CPU | workers' CPU |", "|---|---|---|---|---|"] +
        [f"| {p.name} | {p.seconds:.0f} s | {statistics.median(p.deploy_seconds):.1f} / "
         f"{percentile(p.deploy_seconds, .95):.1f} / {max(p.deploy_seconds):.1f} s | {p.usage.haproxy_cpu:.1f} s | "
         f"{p.usage.worker_cpu:.1f} s |" for p in phases])


# The section of bench/RESULTS.md (`report` fills the braces).
_SECTION = """## 100 apps on one host

Switchyard zero-downtime, one small app per repository clone (busybox httpd, FROM scratch), the
deployments' worker at concurrency 4 and the control worker as in the Procfile; the apps belong
to {owners} users in turn (one user runs at most 2 deployments at once,
`SWITCHYARD_MAX_CONCURRENT_DEPLOYS_PER_USER`). While {others} apps are created one after another,
each deployed as soon as it exists (the deploy worker runs them as its slots free up), and then
{at_once} are redeployed at once, a load runs on {sample_apps} other apps (one keep-alive client
each, as fast as answered): they are not deployed meanwhile, so every failure or gap there is one
that other apps' changes caused. Only Switchyard's method runs here: what 100 apps add for the
others (a config change and a proxy reload per app) is what "A reload during a deploy" above
measures for all three methods.

| | |
|---|---|
| {apps} apps created and deployed: from the first created to the last serving (the measurements at 1 app aside) | {all_seconds:.0f} s |
| requests on the {sample_apps} apps not being deployed: sent / failed | {sent:,} / {failed:,} |
| longest gap without a successful answer on any one of those {sample_apps} apps | {others_gap_ms:.0f} ms |
| longest pause of the load clients' own garbage collector (bench/collector.py: it would show as a gap) | {client_pause_ms:.0f} ms |
| apps answering through HAProxy at the end | {serving} of {apps} |
| HAProxy memory at the end (master and workers, RSS) | {haproxy_mib:.0f} MiB |
| workers' memory at the end (both Celery workers and their children, RSS) | {worker_mib:.0f} MiB |

{phase_table}

Per deploy = deploy asked → ended, the wait for a worker slot included.

The floor under "redeployed at once", under the same load: dockerd alone (bench/dockerd_floor.py)
started {floor_count} of those apps' release containers at once, each as the start phase starts one
(the app's network, its limits, docker-init) and with nothing else around it, in {floor_at_once:.2f} s;
one alone took {floor_alone:.2f} s. No deployment of those apps can have its container running
sooner, whatever the panel does.

HAProxy's CPU is mostly
the load it serves on the sample meanwhile, plus one reload per app created (each new worker
parses the whole config); the workers' includes `haproxy -c` on every config change.

What grows with the number of apps, measured at 1 app and at 100:

{cost_table}

Reconcile lists the containers once per run; it used to inspect each live container (431 ms at
100 apps). What still grows in it is its job: rendering the config and the map (above) and
pushing every map entry and server slot to HAProxy.
"""


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(settings.DATA_DIR, ignore_errors=True)
