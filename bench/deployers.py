"""The three ways of deploying the benchmark compares, behind one interface:
Switchyard zero-downtime, Switchyard recreate, and Dokku's method reproduced (nginx in front,
upstream rewritten and `nginx -s reload`, then the old container stopped)."""
import http.client
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.releases import BenchRepo, Release
from deployments import services
from deployments.containers import Container
from deployments.audit import Actor
from deployments.engine import runtime
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
    """Deploys through Switchyard itself: services.deploy, the Celery worker, HAProxy."""

    def __init__(self, repo: BenchRepo, name: str, zero_downtime: bool, watch_window: int) -> None:
        self.repo, self.name = repo, name
        self.app = services.create_app(services.AppSpec(name=name, repo_url=repo.url, health_path="/cgi-bin/health",
                                                         zero_downtime=zero_downtime), Actor.cli("bench"))
        App.objects.filter(pk=self.app.pk).update(watch_window=watch_window, health_deadline=HEALTH_DEADLINE)

    @property
    def host(self) -> str:
        return f"{self.name}.localhost"

    def deploy(self, release: Release) -> DeployRecord:
        self.repo.commit_release(release)
        deployment = services.deploy(App.objects.get(pk=self.app.pk), None, Actor.cli("bench"))
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
        services.delete_app(self.name, Actor.cli("bench"))


class NginxDeployer:
    """Dokku's method: build, start the new container, wait for its health check, point the
    nginx upstream at it and `nginx -s reload`, then stop the old container right away."""

    def __init__(self, repo: BenchRepo, name: str, workdir: Path, port: int) -> None:
        self.repo, self.name, self.workdir, self.port = repo, name, workdir, port
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.current: Container | None = None
        self.nginx: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"{self.name}.localhost"

    def deploy(self, release: Release) -> DeployRecord:
        start = time.time()
        sha = self.repo.commit_release(release)
        tag = f"switchyard/{self.name}:{sha[:12]}"
        runtime.build_image(self._archive(sha), tag, "Dockerfile", {runtime.LABEL_APP: self.name}, lambda line: None)
        new = runtime.start_release_container(self.name, release.version, 0, tag, 8000, {},
                                              runtime.ContainerLimits.defaults())
        health_ok = self._wait_healthy(new)
        if health_ok is None:  # Dokku's CHECKS fail: the deploy aborts, the old container keeps serving
            runtime.stop_and_remove(new.id, timeout=0)
            return DeployRecord(release, start, time.time(), "failed")
        self._route_to(new)
        if self.current:
            runtime.stop_and_remove(self.current.id, timeout=10)
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
                connection.request("GET", "/cgi-bin/health")
                if connection.getresponse().status == 200:
                    return time.time()
            except OSError:
                pass
            time.sleep(0.2)
        return None

    def _route_to(self, container: Container) -> None:
        (self.workdir / "nginx.conf").write_text(_nginx_config(self.workdir, self.port, container))
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
        for container in runtime.containers(self.name):
            runtime.stop_and_remove(container.id, timeout=0)
        runtime.remove_images(runtime.app_images(f"switchyard/{self.name}"))


def _nginx_config(workdir: Path, port: int, container: Container) -> str:
    """The parts of Dokku's nginx template that matter for a deploy."""
    return f"""worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi; uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;
  upstream app-8000 {{ server {container.ip}:{container.port}; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app-8000;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
  }}
}}
"""
