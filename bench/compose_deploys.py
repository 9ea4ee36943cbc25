"""Benchmark: a Compose app deployed four times under load, the seed's way and Switchyard's.

The app is the test suite's (tests/support/composerepo.py): web with 2 replicas reading a counter from a
store that keeps it in a named volume, and a worker adding to it; every image FROM scratch with
busybox. Each release changes web and worker; the store stays as it is.

1. The seed's method (../shared/seeds/000_*.txt): HAProxy as a service of the project with its
   config verbatim (Docker DNS re-resolved every 2 s, `server-template`, retries with
   redispatch), and its deploy loop: for each web container, `docker stop` + `docker rm -f`, then
   `docker-compose up -d --no-deps --no-recreate` and wait until the new one is healthy. Debian's
   docker-compose 1.29 has no `up --wait`, so the wait polls Docker's health status, which is
   what `--wait` does. The worker is recreated after the loop (`up -d --no-deps worker`).
2. Switchyard: the same repository as a Compose app (`--compose compose.yaml`).
Same load for both: 4 keep-alive clients asking /cgi-bin/page as fast as they are answered.
Writes its section of bench/RESULTS.md. Everything it starts is stopped, and everything it
creates removed.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import installation  # noqa: E402
installation.configure()  # an isolated installation on free ports, timed as shipped

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench import metrics  # noqa: E402
from bench import collector, figures  # noqa: E402
from bench.results import replace_section  # noqa: E402
from bench.services import free_port, redis_server, workers  # noqa: E402
from deployments.application import apps, deploys  # noqa: E402
from deployments.application.app_settings import AppSpec  # noqa: E402
from deployments.audit import Actor  # noqa: E402
from deployments.dockerd import cleanup  # noqa: E402
from deployments.haproxy import process as haproxy_process  # noqa: E402
from deployments.models import App, Deployment  # noqa: E402
from deployments.traffic import changes, target  # noqa: E402
from tests.support.composerepo import ComposeRepo  # noqa: E402
from tests.support.load import Answer, Load  # noqa: E402

SEED_DIR = ROOT / "bench" / "seed"
RELEASES = ["v2", "v3", "v4", "v5"]
DWELL = 3.0  # plain load after each deploy
HEALTH_DEADLINE = 60.0
COMMAND_TIMEOUT = 300


@dataclass
class Scenario:
    name: str
    answers: list[Answer]
    deploy_seconds: list[float]
    outcomes: list[str]

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.answers if not 200 <= a.status < 300]

    def longest_gap(self) -> float:
        return metrics.longest_gap(self.answers)

    def served_releases(self) -> list[str]:
        return sorted({a.body.split()[0] for a in self.answers if a.status == 200})


class SeedDeployer:
    """The seed's Compose project and rolling loop, driven through Debian's docker-compose."""

    def __init__(self, repo: ComposeRepo, project: str) -> None:
        self.repo, self.project, self.port = repo, project, free_port()
        self.env = {**os.environ, "SEED_DIR": str(SEED_DIR), "SEED_PORT": str(self.port),
                    "BASE_IMAGE": os.environ.get("SWITCHYARD_BASE_IMAGE", "switchyard-base:bookworm")}

    host = "counter.localhost"

    def start(self) -> None:
        self._compose("up", "-d", "--build", "--scale", "web=2")
        self._wait_healthy()

    def deploy(self) -> str:
        self._compose("build", "web", "worker")
        for container in self._compose("ps", "-q", "web").split():
            subprocess.run(["docker", "stop", container], check=True, capture_output=True, timeout=COMMAND_TIMEOUT)
            subprocess.run(["docker", "rm", "-f", container], check=True, capture_output=True, timeout=COMMAND_TIMEOUT)
            self._compose("up", "-d", "--no-deps", "--no-recreate", "--scale", "web=2", "web")
            self._wait_healthy()
        self._compose("up", "-d", "--no-deps", "worker")
        return "succeeded"

    def close(self) -> None:
        self._compose("down", "--volumes", "--rmi", "local", "--remove-orphans", "--timeout", "1")

    def _wait_healthy(self) -> None:
        """What `docker compose up --wait` does: until every web container's healthcheck passes."""
        deadline = time.monotonic() + HEALTH_DEADLINE
        while time.monotonic() < deadline:
            ids = self._compose("ps", "-q", "web").split()
            states = [subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", cid], capture_output=True,
                                     text=True, timeout=30).stdout.strip() for cid in ids]
            if len(ids) == 2 and all(state == "healthy" for state in states):
                return
            time.sleep(0.2)
        raise TimeoutError("the seed's web containers did not become healthy")

    def _compose(self, *args: str) -> str:
        command = ["docker-compose", "-p", self.project, "-f", str(self.repo.path / "compose.yaml"),
                   "-f", str(SEED_DIR / "seed.yml"), *args]
        result = subprocess.run(command, cwd=self.repo.path, env=self.env, capture_output=True, text=True,
                                timeout=COMMAND_TIMEOUT)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()[-2000:]}")
        return result.stdout


class SwitchyardComposeDeployer:
    def __init__(self, repo: ComposeRepo, name: str) -> None:
        self.repo, self.name, self.app = repo, name, None
        self.port = settings.SWITCHYARD["HTTP_BIND"][1]

    @property
    def host(self) -> str:
        return f"{self.name}.localhost"

    def start(self) -> None:
        self.app = apps.create_app(AppSpec.of(name=self.name, repo_url=self.repo.url, compose_file="compose.yaml"), actor=Actor.cli("bench"))
        App.objects.filter(pk=self.app.pk).update(health_deadline=HEALTH_DEADLINE, watch_window=5)
        if self.deploy() != Deployment.State.SUCCEEDED:
            raise RuntimeError("the first Switchyard deploy failed")

    def deploy(self) -> str:
        deployment = deploys.deploy(App.objects.get(pk=self.app.pk), ref=None, actor=Actor.cli("bench"))
        while not deployment.is_final:
            time.sleep(0.1)
            deployment.refresh_from_db()
        return deployment.state

    def close(self) -> None:
        if self.app is not None:
            apps.delete_app(self.name, actor=Actor.cli("bench"))


def run(name: str, repo: ComposeRepo, deployer) -> Scenario:
    print(f"== {name}", flush=True)
    repo.commit_release("v1")
    deployer.start()
    durations, outcomes = [], []
    with Load(deployer.port, deployer.host, threads=4, path="/cgi-bin/page", max_seconds=600) as load:
        time.sleep(2)
        for release in RELEASES:
            repo.commit_release(release)
            started = time.monotonic()
            outcomes.append(deployer.deploy())
            durations.append(time.monotonic() - started)
            print(f"   {release}: {outcomes[-1]} in {durations[-1]:.1f}s", flush=True)
            time.sleep(DWELL)
    return Scenario(name, load.result.answers, durations, outcomes)


def main() -> None:
    call_command("migrate", verbosity=0)
    work = Path(tempfile.mkdtemp(prefix="switchyard-compose-bench-"))
    results = []
    try:
        seed = SeedDeployer(ComposeRepo(work / "seed"), f"sy-bench-seed-{os.getpid()}")
        try:
            results.append(run("The seed's method (docker-compose + HAProxy DNS)", seed.repo, seed))
        finally:
            seed.close()
        # As the Procfile runs them (a watch hands off to its own worker); the load's answers kept
        # out of the garbage collector's way (bench/collector.py).
        with redis_server(), workers(work), collector.answers_frozen():
            try:
                changes.sync_all()
                repo = ComposeRepo(work / "sy")
                deployer = SwitchyardComposeDeployer(repo, "counter")
                try:
                    results.append(run("Switchyard (Compose app)", repo, deployer))
                finally:
                    deployer.close()
            finally:
                haproxy_process.stop(target.paths())
    finally:
        cleanup.remove_instance_resources()
        shutil.rmtree(work, ignore_errors=True)
    report(results)


def table(results: list[Scenario]) -> str:
    rows = [
        ("requests sent", lambda r: f"{len(r.answers):,}"),
        ("failed (non-2xx or connection error)", lambda r: f"{len(r.failed):,}"),
        ("longest gap without a successful response", lambda r: f"{r.longest_gap() * 1000:.0f} ms"),
        ("time per deploy, median / max",
         lambda r: f"{sorted(r.deploy_seconds)[len(r.deploy_seconds) // 2]:.1f} / {max(r.deploy_seconds):.1f} s"),
        ("deploys succeeded", lambda r: f"{r.outcomes.count('succeeded')} of {len(r.outcomes)}"),
        ("releases answered", lambda r: ", ".join(r.served_releases())),
    ]
    lines = ["| | " + " | ".join(r.name for r in results) + " |", "|" + "---|" * (len(results) + 1)]
    lines += ["| " + " | ".join([name, *[cell(r) for r in results]]) + " |" for name, cell in rows]
    return "\n".join(lines)


def report(results: list[Scenario]) -> None:
    text = table(results)
    print(text)
    figures.record("compose", failed=len(results[-1].failed))  # Switchyard's, for bench/goals.py
    replace_section("compose", f"""## A Compose app: the seed's method against Switchyard

The test suite's Compose app (web × 2 reading a counter from a store with a named volume, a worker
adding to it; FROM scratch with busybox), v1 then {len(RELEASES)} releases that change web and
worker, under 4 keep-alive clients asking `/cgi-bin/page` as fast as they are answered.
The seed's method: HAProxy as a project service with the seed's config verbatim (Docker DNS
re-resolved every 2 s, `server-template`, `retries 3`, `option redispatch 1`, `retry-on ...`) and
its loop: per web container `docker stop` + `docker rm -f`, then `docker-compose up -d --no-deps
--no-recreate` and a wait until it is healthy (Debian's docker-compose 1.29 has no `--wait`; the
wait polls Docker's health status as `--wait` does); the worker is recreated after the loop.
Switchyard: the same repository as a Compose app, watch window 5 s.

{text}
""")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(settings.DATA_DIR, ignore_errors=True)
