"""The three ways of deploying the benchmark compares, behind one interface:
Switchyard zero-downtime, Switchyard recreate, and Dokku's method reproduced (nginx in front,
upstream rewritten and `nginx -s reload`, then the old container stopped)."""
import http.client
import io
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.releases import BenchRepo, Release
from deployments.application import apps, deploys
from deployments.application.app_settings import AppSpec
from deployments.dockerd.values import Container
from deployments.audit import Actor
from deployments.dockerd import builds, containers, image_removal, images
from deployments.dockerd.values import LABEL_APP, image_namespace
from deployments.models import App, Deployment

HEALTH_DEADLINE = 10.0
ROUTED_LINE = re.compile(r"([\d.]+) ms after HAProxy reported it UP")
ROLLED_BACK_LINE = re.compile(r"Rolled back in ([\d.]+) ms")


@dataclass
class DeployRecord:
    release: Release
    start: float  # wall clock
    end: float
    outcome: str  # succeeded | failed | rolled_back
    health_ok: float | None = None  # when the new release was known healthy (switch may follow)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase (PHASES), both methods
    # From Switchyard's own log: HAProxy's UP seen → HAProxy routes to the new release, and
    # trouble detected → HAProxy routes back to the old one.
    routed_ms: float | None = None
    rollback_ms: float | None = None


# Where a deploy's time goes, in order, for both methods: queued (the deploy asked for → a worker
# starts it) and finish (the last phase's end → the deployment recorded final) are Switchyard's
# own bookkeeping; Dokku's method has neither, and no canary or watch.
PHASES = ("queued", "fetch", "build", "start", "verify", "canary", "switch", "watch", "drain", "finish")


def _number(pattern: re.Pattern, text: str) -> float | None:
    found = pattern.search(text)
    return float(found.group(1)) if found else None


def _timestamp(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


class SwitchyardDeployer:
    """Deploys through Switchyard itself: application.deploys.deploy, the Celery worker, HAProxy."""

    def __init__(self, repo: BenchRepo, name: str, zero_downtime: bool, watch_window: int,
                 health_path: str = "/cgi-bin/health", env: dict[str, str] | None = None, stop_timeout: int = 10) -> None:
        self.repo, self.name = repo, name
        self.app = apps.create_app(AppSpec.of(name=name, repo_url=repo.url, health_path=health_path, zero_downtime=zero_downtime, env=env or {}), actor=Actor.cli("bench"))
        App.objects.filter(pk=self.app.pk).update(watch_window=watch_window, health_deadline=HEALTH_DEADLINE,
                                                  stop_timeout=stop_timeout)

    @property
    def host(self) -> str:
        return f"{self.name}.localhost"

    def deploy(self, release: Release) -> DeployRecord:
        self.repo.commit_release(release)
        deployment = deploys.deploy(App.objects.get(pk=self.app.pk), ref=None, actor=Actor.cli("bench"))
        while not deployment.is_final:
            time.sleep(0.05)
            deployment.refresh_from_db()
        verify = deployment.phase_times.get("verify", {})
        health_ok = _timestamp(verify.get("end")) if deployment.phase_duration("verify") is not None and \
            deployment.state != Deployment.State.FAILED else None
        phases = _switchyard_phases(deployment)
        log = "\n".join(deployment.log_lines.values_list("text", flat=True))
        return DeployRecord(release, deployment.created_at.timestamp(), deployment.finished_at.timestamp(),
                            deployment.state, health_ok, phases,
                            _number(ROUTED_LINE, log), _number(ROLLED_BACK_LINE, log))

    def close(self) -> None:
        apps.delete_app(self.name, actor=Actor.cli("bench"))


def _switchyard_phases(deployment: Deployment) -> dict[str, float]:
    phases = {p: deployment.phase_duration(p) or 0.0 for p in Deployment.PHASES}
    starts = [_timestamp(t.get("start")) for t in deployment.phase_times.values() if t.get("start")]
    ends = [_timestamp(t.get("end")) for t in deployment.phase_times.values() if t.get("end")]
    if starts:
        phases["queued"] = min(starts) - deployment.created_at.timestamp()
    if ends:
        phases["finish"] = max(0.0, deployment.finished_at.timestamp() - max(ends))
    return phases


class _PhaseClock:
    """Seconds per phase of one deploy of Dokku's method, phase by phase."""

    def __init__(self) -> None:
        self.started = time.time()
        self.phases: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.time()
        try:
            yield
        finally:
            self.phases[name] = time.time() - began


class NginxFront:
    """One nginx in front of every app of a scenario, one `server` block per app (by Host), as
    Dokku keeps it: each change rewrites the config and runs `nginx -s reload`."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port = workdir, port
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.upstreams: dict[str, tuple[str, int]] = {}
        self.nginx: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def route(self, name: str, address: tuple[str, int]) -> None:
        with self._lock:
            self.upstreams[name] = address
            self._apply()

    def remove(self, name: str) -> None:
        with self._lock:
            if self.upstreams.pop(name, None):
                self._apply()

    def _apply(self) -> None:
        (self.workdir / "nginx.conf").write_text(_nginx_config(self.workdir, self.port, self.upstreams))
        if self.nginx is None:
            self.nginx = subprocess.Popen(["nginx", "-p", str(self.workdir), "-c", "nginx.conf", "-g", "daemon off;"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(0.5)
        else:
            subprocess.run(["nginx", "-p", str(self.workdir), "-c", "nginx.conf", "-s", "reload"], check=True,
                           timeout=10, capture_output=True)

    def close(self) -> None:
        if self.nginx:
            self.nginx.terminate()
            self.nginx.wait(timeout=10)


class NginxDeployer:
    """Dokku's method: build, start the new container, wait for its health check, point the
    nginx upstream at it and `nginx -s reload`, then stop the old container right away."""

    def __init__(self, repo: BenchRepo, name: str, front: NginxFront, health_path: str = "/cgi-bin/health",
                 env: dict[str, str] | None = None, stop_timeout: int = 10) -> None:
        self.repo, self.name, self.front = repo, name, front
        self.health_path, self.env, self.stop_timeout = health_path, env or {}, stop_timeout
        self.current: Container | None = None

    @property
    def host(self) -> str:
        return f"{self.name}.localhost"

    def deploy(self, release: Release) -> DeployRecord:
        sha = self.repo.commit_release(release)  # the push, before either method's deploy starts
        clock = _PhaseClock()
        with clock.phase("fetch"):
            archive = archive_commit(self.repo, sha)
        with clock.phase("build"):
            tag = build_commit(self.name, sha, archive)
        with clock.phase("start"):
            new = containers.start_release_container(self.name, release.version, 0, tag, 8000, self.env,
                                                     containers.ContainerLimits.defaults())
        with clock.phase("verify"):
            health_ok = self._wait_healthy(new)
        if health_ok is None:  # Dokku's CHECKS fail: the deploy aborts, the old container keeps serving
            containers.stop_and_remove(new.id, timeout=0)
            return DeployRecord(release, clock.started, time.time(), "failed", phases=clock.phases)
        with clock.phase("switch"):
            self.front.route(self.name, (new.ip, new.port))
        with clock.phase("drain"):
            if self.current:
                containers.stop_and_remove(self.current.id, timeout=self.stop_timeout)
        self.current = new
        return DeployRecord(release, clock.started, time.time(), "succeeded", health_ok, phases=clock.phases)

    def _wait_healthy(self, container: Container) -> float | None:
        deadline = time.monotonic() + HEALTH_DEADLINE
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection(container.ip, container.port, timeout=2)
                connection.request("GET", self.health_path)
                if connection.getresponse().status == 200:
                    return time.time()
            except OSError:
                pass
            time.sleep(0.2)
        return None

    def close(self) -> None:
        self.front.remove(self.name)
        for container in containers.listed(self.name):
            containers.stop_and_remove(container.id, timeout=0)
        image_removal.remove_images(images.app_images(f"{image_namespace()}/{self.name}"))


def archive_commit(repo: BenchRepo, sha: str) -> bytes:
    return subprocess.run(["git", "archive", "--format=tar", sha], cwd=repo.path, check=True,
                          capture_output=True, timeout=30).stdout


def build_commit(name: str, sha: str, archive: bytes) -> str:
    """The commit's image, built as Dokku builds it (its Dockerfile as written); returns its tag."""
    tag = f"{image_namespace()}/{name}:{sha[:12]}"
    builds.build_image(io.BytesIO(archive), tag, "Dockerfile", {LABEL_APP: name}, lambda line: None)
    return tag


def warm_build_cache(repo: BenchRepo, releases: list[Release]) -> None:
    """Each release's files built once before the first scenario: every method then meets the
    build cache in the same state (the first one would otherwise build cold what the others find)."""
    for release in releases:
        sha = repo.commit_release(release)
        build_commit("warm", sha, archive_commit(repo, sha))


def _nginx_config(workdir: Path, port: int, upstreams: dict[str, tuple[str, int]]) -> str:
    """The parts of Dokku's nginx template that matter for a deploy, with response buffering
    off (`dokku nginx:set APP proxy-buffering off`, which event streams need)."""
    servers = "".join(f"""
  upstream {name}-8000 {{ server {addr}:{app_port}; }}
  server {{
    listen 127.0.0.1:{port};
    server_name {name}.localhost;
    location / {{
      proxy_pass http://{name}-8000;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $http_connection;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_buffering off;
    }}
  }}""" for name, (addr, app_port) in sorted(upstreams.items()))
    return f"""worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi; uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;{servers}
}}
"""
