"""The web process needs neither the Docker socket nor HAProxy's files (in the compose stack it
has neither): what it changes reaches HAProxy and Docker through a worker, HAProxy's view of
the apps comes from a stats page that cannot change anything, and live output through a proxy
that lets only GET .../logs reach Docker (compose/docker-logs-proxy.cfg)."""
import http.client
import os
import socket
import subprocess
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from deployments.application import apps
from deployments.application.app_settings import SETTINGS_FIELDS
from deployments.application.apps import AppChanges
from deployments.dockerd import daemon, live_output
from deployments.haproxy import runtime_api
from deployments.haproxy.config import Paths
from deployments.models import App
from deployments.traffic import readings, target
from tests.support.processes import answers, free_port
from tests.support.stack import TEST_ACTOR, Stack

ROOT = Path(__file__).resolve().parents[2]
PROXY_CONFIG = ROOT / "compose" / "docker-logs-proxy.cfg"


def test_a_domain_saved_by_the_web_process_is_routed_by_the_worker(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="routed")
    def status() -> int:
        return stack.get("shop.example.com")[0]

    assert status() == 404  # no app is served at this host yet

    apps.update_app(App.objects.get(pk=app.pk), AppChanges(domains=["shop.example.com"]), actor=TEST_ACTOR)

    stack.eventually(lambda: status() != 404, "the worker routes the domain")
    assert status() == 503  # the app's backend: no release yet
    apps.delete_app(app.name, actor=TEST_ACTOR)
    stack.eventually(lambda: status() == 404, "the worker withdraws the domain")


def test_the_panel_reads_health_from_the_stats_page_alone_and_it_cannot_change_anything(stack, app_repo, monkeypatch):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="watched")
    deployment = stack.deploy_and_wait(app)
    assert deployment.state == "succeeded", deployment.error
    live = App.objects.select_related("live_deployment").get(pk=app.pk)
    stats_socket = target.paths().stats_socket

    # As in the web service: HAProxy's directory is not there, only the stats socket.
    monkeypatch.setattr(target, "paths", lambda: Paths(Path("/nonexistent"), stats=stats_socket))
    assert readings.live_health([live]) == {"watched": "UP"}

    backend = live.backend_name(live.live_colour)
    answer = _stats_post(stats_socket, f"s=slot0&action=maint&b={backend}")
    assert "st=DENY" in answer  # HAProxy's answer to an action on a stats page without `stats admin`
    assert readings.live_health([live]) == {"watched": "UP"}
    assert stack.get("watched.localhost") == (200, "v1")


def test_the_health_the_panel_reads_is_down_when_a_live_server_is_not_up(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="watched", replicas=2)
    stack.deploy_live(app)
    live = App.objects.select_related("live_deployment").get(pk=app.pk)
    second = f"{live.backend_name(live.live_colour)}/s2"
    assert readings.live_health([live]) == {"watched": "UP"}

    runtime_api.run(target.paths().admin_socket, f"set server {second} state maint")
    try:  # the stats page is read with ;up, which leaves this server out: one of two is not UP
        assert readings.live_health([live]) == {"watched": "DOWN"}
    finally:
        runtime_api.run(target.paths().admin_socket, f"set server {second} state ready")
    stack.eventually(lambda: readings.live_health([live]) == {"watched": "UP"}, "HAProxy finds s2 UP again")


def _stats_post(stats_socket: Path, body: str) -> str:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        conn.connect(str(stats_socket))
        conn.sendall(f"POST / HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
        return b"".join(iter(lambda: conn.recv(65536), b"")).decode(errors="replace")


def test_the_panel_pages_and_actions_work_without_docker_or_haproxy_files(transactional_db, django_user_model,
                                                                         app_repo, handed_over, monkeypatch,
                                                                         settings, tmp_path):
    settings.SWITCHYARD = {**settings.SWITCHYARD, "HAPROXY_DIR": tmp_path / "not-here",
                           "HAPROXY_STATS_SOCKET": tmp_path / "stats.sock"}  # as in the web service
    app_repo.commit_version("v1")
    owner = django_user_model.objects.create_user("owner")
    app = App.objects.create(name="paneled", repo_url=app_repo.url, owner=owner)

    def no_docker():
        raise AssertionError("the web process used Docker")

    monkeypatch.setattr(daemon, "client", no_docker)
    monkeypatch.setattr(runtime_api, "send", lambda *args, **kwargs: no_docker())  # the admin socket
    client = Client()
    client.force_login(owner)
    page = reverse("app", kwargs={"name": app.name})

    assert client.get(reverse("apps")).status_code == 200
    assert client.get(page).status_code == 200
    data = {name: getattr(app, name) for name in SETTINGS_FIELDS} | {"domains": "paneled.example.com"}
    assert client.post(reverse("app_settings", kwargs={"name": app.name}), data).status_code == 302
    assert client.post(reverse("app_delete", kwargs={"name": app.name}), {"confirm": app.name}).status_code == 302
    assert not App.objects.filter(name=app.name).exists()
    assert not (tmp_path / "not-here").exists()
    assert [name for name, _ in handed_over] == ["deployments.tasks.apply_routing"] * 2 + [
        "deployments.tasks.remove_app_resources"]


@pytest.fixture
def logs_proxy(tmp_path):
    """compose/docker-logs-proxy.cfg run by HAProxy in front of this machine's Docker socket."""
    port = free_port()
    env = {"PATH": os.environ["PATH"], "DOCKER_LOGS_BIND": f"127.0.0.1:{port}",
           "DOCKER_SOCKET": "/var/run/docker.sock"}
    with open(tmp_path / "proxy.log", "w") as log:
        process = subprocess.Popen(["haproxy", "-db", "-f", str(PROXY_CONFIG)], env=env, stdout=subprocess.DEVNULL,
                                   stderr=log)
        Stack.eventually(lambda: answers(port) or process.poll() is not None, "the logs proxy answers")
        assert process.poll() is None, (tmp_path / "proxy.log").read_text()
        yield port
        process.terminate()
        process.wait(timeout=10)


def _status(port: int, method: str, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_logs_proxy_lets_only_a_containers_output_through(stack, app_repo, logs_proxy, settings):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="chatty")
    deployment = stack.deploy_and_wait(app)
    assert deployment.state == "succeeded", deployment.error
    container = deployment.containers[0]

    assert _status(logs_proxy, "GET", f"/v1.41/containers/{container.id}/logs?stdout=1&tail=5") == 200
    assert _status(logs_proxy, "GET", "/_ping") == 200
    for method, path in [("GET", "/containers/json"), ("GET", f"/containers/{container.id}/json"),
                         ("POST", f"/containers/{container.id}/stop"), ("POST", "/containers/create"),
                         ("GET", f"/containers/{container.id}/logs/../json"), ("GET", "/containers/../images/json/logs"),
                         ("GET", "/containers/%2e%2e/logs"), ("DELETE", f"/containers/{container.id}/logs"),
                         ("GET", "/images/json"), ("POST", f"/containers/{container.id}/exec")]:
        assert _status(logs_proxy, method, path) == 403, (method, path)

    settings.SWITCHYARD = {**settings.SWITCHYARD, "DOCKER_LOGS_URL": f"tcp://127.0.0.1:{logs_proxy}"}
    stream = live_output.follow_output(container.id, tail=5)
    assert stream.next_line() == "serving v1"
    stream.close()
