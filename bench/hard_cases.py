"""Benchmark: the cases where real apps lose requests in a deploy, three ways on this machine
(Switchyard zero-downtime, Switchyard recreate, Dokku's method with nginx; bench/methods.py).

1. POSTs and long-lived connections through ten deploys. Two apps deployed side by side ten
   times: one answers short GETs, POSTs (each a unique id the app reports to a recorder outside
   its container) and event streams; the other is websocketd, a WebSocket stream per client.
2. A reload during a deploy: app A deploys five times under GETs and POSTs while other apps are
   created and deleted every 0.25 s (each a config change and a proxy reload), and two
   bystander apps serve their own load.
3. Slow and dying releases: a release whose p99 is above 1 s, then one that is slow and ignores
   SIGTERM (only SIGKILL after the 10 s stop timeout ends it), then a plain one, under load.
Writes its section of bench/RESULTS.md and bench/hard_cases.png. Everything it starts is
stopped, and everything it creates removed.
"""
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import installation  # noqa: E402
installation.configure(SWITCHYARD_DRAIN_TIMEOUT="30")  # an isolated installation on free ports, timed as shipped
# The apps report each POST to a recorder on the host, at their network's gateway: the egress
# rules keep containers off the host's services unless allowed, as an administrator allows one.
os.environ.setdefault("SWITCHYARD_EGRESS_ALLOW", os.environ.get("SWITCHYARD_APP_SUBNETS", "172.16.0.0/16"))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench import collector, hard_report  # noqa: E402
from bench.hard_apps import StreamsRepo, WebSocketRepo  # noqa: E402
from bench.hard_report import CaseResult  # noqa: E402
from bench.methods import DokkuMethod, SwitchyardMethod  # noqa: E402
from bench.recorder import serve as serve_recorder  # noqa: E402
from bench.releases import Release  # noqa: E402
from bench.services import installation  # noqa: E402
from bench.streams import EventStreamClient, WebSocketClient  # noqa: E402
from tests.support.load import Load  # noqa: E402

DEPLOYS = 10
RELOAD_DEPLOYS = 5
CHURN_INTERVAL = 0.25
LONG_LIVED_CLIENTS = 3
MAX_SECONDS = 600  # every load and client ends by itself after this


def deploy_together(pairs: list) -> list:
    """Deploy each (deployer, release) in a thread of its own; their records, in order."""
    def deploy(pair):
        try:
            return pair[0].deploy(pair[1])
        finally:
            connection.close()  # each thread has its own database connection
    with ThreadPoolExecutor(len(pairs)) as pool:
        return list(pool.map(deploy, pairs))


def unique_ids(prefix: str):
    counter = itertools.count()
    return lambda: f"{prefix}-{next(counter)}"


def posts_and_streams(method, work: Path, recorder_port: int) -> CaseResult:
    print(f"== posts and streams: {method.name}", flush=True)
    env = {"RECORDER_PORT": str(recorder_port)}
    web_repo, ws_repo = StreamsRepo(work / f"{method.prefix}-web"), WebSocketRepo(work / f"{method.prefix}-ws")
    web_repo.commit_release(Release("v0"))
    ws_repo.commit_release(Release("v0"))
    web = method.deployer(web_repo, "web", env=env)
    ws = method.deployer(ws_repo, "ws", health_path="/health")
    deploy_together([(web, Release("v0")), (ws, Release("v0"))])
    result = CaseResult(method.name, time.time())
    with Load(method.port, web.host, threads=2, path="/cgi-bin/page", max_seconds=MAX_SECONDS) as gets, \
            Load(method.port, web.host, threads=2, path="/cgi-bin/post", max_seconds=MAX_SECONDS,
                 body=unique_ids(method.prefix)) as posts:
        streams = [EventStreamClient(method.port, web.host, MAX_SECONDS).start() for _ in range(LONG_LIVED_CLIENTS)]
        sockets = [WebSocketClient(method.port, ws.host, MAX_SECONDS).start() for _ in range(LONG_LIVED_CLIENTS)]
        time.sleep(1)
        for number in range(1, DEPLOYS + 1):
            records = deploy_together([(web, Release(f"v{number}")), (ws, Release(f"v{number}"))])
            result.records += records
            print(f"   v{number}: {', '.join(f'{r.outcome} in {r.end - r.start:.1f}s' for r in records)}", flush=True)
        time.sleep(1)
        result.streams = [client.stop() for client in streams]
        result.sockets = [client.stop() for client in sockets]
    result.gets, result.posts = gets.result.answers, posts.result.answers
    web.close()
    ws.close()
    return result


def reload_during_deploy(method, work: Path, recorder_port: int) -> CaseResult:
    print(f"== reload during a deploy: {method.name}", flush=True)
    env = {"RECORDER_PORT": str(recorder_port)}
    repos = {name: StreamsRepo(work / f"{method.prefix}-{name}") for name in ("a", "b1", "b2")}
    for repo in repos.values():
        repo.commit_release(Release("v0"))
    deployers = {name: method.deployer(repo, name, env=env) for name, repo in repos.items()}
    deploy_together([(deployer, Release("v0")) for deployer in deployers.values()])
    a, bystanders = deployers["a"], [deployers["b1"], deployers["b2"]]
    result = CaseResult(method.name, time.time())
    churning = threading.Event()
    churn = threading.Thread(target=_churn, args=(method, repos["a"].url, churning, result), daemon=True)
    loads = [Load(method.port, b.host, threads=2, path="/cgi-bin/page", max_seconds=MAX_SECONDS) for b in bystanders]
    with Load(method.port, a.host, threads=2, path="/cgi-bin/page", max_seconds=MAX_SECONDS) as gets, \
            Load(method.port, a.host, threads=2, path="/cgi-bin/post", max_seconds=MAX_SECONDS,
                 body=unique_ids(f"{method.prefix}-r")) as posts, loads[0], loads[1]:
        time.sleep(1)
        churn.start()
        for number in range(1, RELOAD_DEPLOYS + 1):
            record = a.deploy(Release(f"v{number}"))
            result.records.append(record)
            print(f"   v{number}: {record.outcome} in {record.end - record.start:.1f}s", flush=True)
        churning.set()
        churn.join(timeout=60)
        time.sleep(1)
    result.gets, result.posts = gets.result.answers, posts.result.answers
    result.bystanders = [answer for load in loads for answer in load.result.answers]
    for deployer in deployers.values():
        deployer.close()
    return result


def _churn(method, repo_url: str, done: threading.Event, result: CaseResult) -> None:
    """Create an app, and delete the one created two steps before, until `done`."""
    created = []
    try:
        for number in itertools.count():
            if done.is_set():
                break
            method.create_other(f"churn{number}", repo_url)
            created.append(f"churn{number}")
            result.config_changes += 1
            if len(created) > 2:
                method.delete_other(created.pop(0))
                result.config_changes += 1
            time.sleep(CHURN_INTERVAL)
        for name in created:
            method.delete_other(name)
    finally:
        connection.close()


def slow_and_dying(method, work: Path, recorder_port: int) -> CaseResult:
    print(f"== slow and dying releases: {method.name}", flush=True)
    repo = StreamsRepo(work / f"{method.prefix}-slow")
    repo.commit_release(Release("v0"))
    app = method.deployer(repo, "slow", env={"RECORDER_PORT": str(recorder_port)})
    app.deploy(Release("v0"))
    result = CaseResult(method.name, time.time())
    with Load(method.port, app.host, threads=4, path="/cgi-bin/page", max_seconds=MAX_SECONDS) as gets:
        time.sleep(1)
        for release in (Release("v1", "slow"), Release("v2", "ignores_sigterm"), Release("v3")):
            record = app.deploy(release)
            result.records.append(record)
            print(f"   {release.label}: {record.outcome} in {record.end - record.start:.1f}s", flush=True)
            time.sleep(3)  # the release serves (slowly) before the next one replaces it
    result.gets = gets.result.answers
    app.close()
    return result


CASES = {"posts_and_streams": posts_and_streams, "reload_during_deploy": reload_during_deploy,
         "slow_and_dying": slow_and_dying}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    results: dict[str, list[CaseResult]] = {case: [] for case in CASES}
    try:
        with installation(work), serve_recorder() as (recorder, recorder_port), collector.answers_frozen() as pauses:
            for method in (SwitchyardMethod(True), SwitchyardMethod(False), DokkuMethod(work / "nginx")):
                try:
                    for case, run in CASES.items():
                        result = run(method, work, recorder_port)
                        result.recorded = recorder.seen
                        results[case].append(result)
                finally:
                    method.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"longest pause of this process's garbage collector: {pauses.longest * 1000:.0f} ms", flush=True)
    hard_report.write(results)


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(settings.DATA_DIR, ignore_errors=True)
