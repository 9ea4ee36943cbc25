"""The three ways of deploying the benchmark compares, behind one interface:
Switchyard zero-downtime, Switchyard recreate, and Dokku's method reproduced (nginx in front,
upstream rewritten and `nginx -s reload`, then the old container stopped)."""
import http.client
import io
import re
import subprocess
import threading
import time
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
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase (Switchyard)
    # From Switchyard's own log: HAProxy's UP seen → HAProxy routes to the new release, and
    # trouble detected → HAProxy routes back to the old one.
    routed_ms: float | None = None
    rollback_ms: float | None = None


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
        phases = {p: deployment.phase_duration(p) or 0.0 for p in Deployment.PHASES}
        log = "\n".join(deployment.log_lines.values_list("text", flat=True))
        return DeployRecord(release, deployment.created_at.timestamp(), deployment.finished_at.timestamp(),
                            deployment.state, health_ok, phases,
                            _number(ROUTED_LINE, log), _number(ROLLED_BACK_LINE, log))

    def close(self) -> None:
        apps.delete_app(self.name, actor=Actor.cli("bench"))


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
        start = time.time()
        sha = self.repo.commit_release(release)
        tag = f"{image_namespace()}/{self.name}:{sha[:12]}"
        builds.build_image(io.BytesIO(self._archive(sha)), tag, "Dockerfile", {LABEL_APP: self.name}, lambda line: None)
        new = containers.start_release_container(self.name, release.version, 0, tag, 8000, self.env,
                                                 containers.ContainerLimits.defaults())
        health_ok = self._wait_healthy(new)
        if health_ok is None:  # Dokku's CHECKS fail: the deploy aborts, the old container keeps serving
            containers.stop_and_remove(new.id, timeout=0)
            return DeployRecord(release, start, time.time(), "failed")
        self.front.route(self.name, (new.ip, new.port))
        if self.current:
            containers.stop_and_remove(self.current.id, timeout=self.stop_timeout)
        self.current = new
        return DeployRecord(release, start, time.time(), "succeeded", health_ok)

    def _archive(self, sha: str) -> bytes:
        return subprocess.run(["git", "archive", "--format=tar", sha], cwd=self.repo.path, check=True,
                              capture_output=True, timeout=30).stdout

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
