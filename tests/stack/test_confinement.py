"""Apps are confined: limits, capabilities and no-new-privileges on every container, one
network per app, a build deadline that holds, and a stored log that stops growing.

Containers are inspected through the Docker API and their cgroups read from the host
(cgroup v1, Docker's cgroupfs driver: /sys/fs/cgroup/<controller>/docker/<id>/).
"""
import http.client
import ipaddress
import re
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from deployments.application import apps
from deployments.dockerd.values import Container
from deployments.dockerd import containers, daemon, images, networks
from deployments.dockerd.values import LABEL_APP, LABEL_DEPLOYMENT, instance_labels, name_prefix
from deployments.engine.logs import DeploymentLog
from deployments.models import App, Deployment, LogLine
from deployments.traffic import readings
from tests.support.apprepo import AppRepo
from tests.support.eventually import eventually
from tests.support.stack import TEST_ACTOR

CGROUPS = Path("/sys/fs/cgroup")
MIB = 1024 * 1024


def _inspect(container_id: str) -> dict:
    return daemon.client().api.inspect_container(container_id)


def _exec(container_id: str, *command: str) -> tuple[int, str]:
    """Run a command in the container (every command given here bounds its own time)."""
    result = daemon.client().containers.get(container_id).exec_run(["/bin/busybox", *command])
    return result.exit_code, result.output.decode(errors="replace")


def _cgroup(controller: str, container_id: str, name: str) -> str:
    return (CGROUPS / controller / "docker" / container_id / name).read_text()


def _set(app: App, **fields) -> App:
    """As the panel's settings form would, between two deploys."""
    App.objects.filter(pk=app.pk).update(**fields)
    app.refresh_from_db()
    return app


def _log(deployment: Deployment) -> list[str]:
    return list(LogLine.objects.filter(deployment=deployment).order_by("seq").values_list("text", flat=True))


def _status_line(container_id: str, field: str) -> str:
    code, output = _exec(container_id, "grep", f"^{field}:", "/proc/self/status")
    assert code == 0, output
    return output.split(":", 1)[1].strip()


def test_containers_run_with_the_apps_limits_and_no_capabilities_and_pick_up_changes_on_the_next_deploy(
        stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="confined")
    first = stack.deploy_and_wait(app)
    assert first.state == "succeeded", first.error

    host = _inspect(first.containers[0].id)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"]) == (512 * MIB, 512 * MIB)
    assert (host["NanoCpus"], host["PidsLimit"]) == (1_000_000_000, 256)
    assert (host["SecurityOpt"], host["CapDrop"], host["CapAdd"] or []) == (["no-new-privileges"], ["ALL"], [])
    # What a process in the container really has; busybox httpd and its CGI scripts need none of it.
    assert _status_line(first.containers[0].id, "CapEff") == "0000000000000000"
    assert _status_line(first.containers[0].id, "NoNewPrivs") == "1"
    assert stack.get("confined.localhost") == (200, "v1")
    assert stack.get("confined.localhost", "/cgi-bin/page") == (200, "v1")

    _set(app, memory_limit_mb=128, cpu_limit=0.5, pids_limit=64, capabilities="NET_BIND_SERVICE KILL")
    app_repo.commit_version("v2")
    second = stack.deploy_and_wait(app)
    assert second.state == "succeeded", second.error

    host = _inspect(second.containers[0].id)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"], host["PidsLimit"]) == (
        128 * MIB, 128 * MIB, 500_000_000, 64)
    assert sorted(host["CapAdd"]) == ["KILL", "NET_BIND_SERVICE"]
    assert _status_line(second.containers[0].id, "CapEff") == f"{(1 << 5) | (1 << 10):016x}"  # KILL, NET_BIND_SERVICE
    assert stack.get("confined.localhost") == (200, "v2")
    assert any("Limits per container: 128 MiB memory, 0.5 CPU, 64 processes" in line for line in _log(second))


def test_an_apps_containers_reach_each_other_but_not_another_apps(stack, app_repo, tmp_path):
    app_repo.commit_version("a1")
    other_repo = AppRepo(tmp_path / "other")
    other_repo.commit_version("b1")
    a = stack.create_app(app_repo, name="tenant-a", replicas=2)
    b = stack.create_app(other_repo, name="tenant-b")
    a_release, b_release = stack.deploy_and_wait(a), stack.deploy_and_wait(b)
    assert (a_release.state, b_release.state) == ("succeeded", "succeeded"), (a_release.error, b_release.error)
    a1, a2 = a_release.containers
    (b1,) = b_release.containers

    pool = ipaddress.ip_network(settings.SWITCHYARD["APP_SUBNETS"])
    subnets = {}
    for app, container in ((a, a1), (a, a2), (b, b1)):
        attached = _inspect(container.id)["NetworkSettings"]["Networks"]
        assert list(attached) == [networks.network_name(app.name)]
        subnets[container.name] = ipaddress.ip_network(f"{container.ip}/{settings.SWITCHYARD['APP_SUBNET_PREFIX']}",
                                                          strict=False)
        assert subnets[container.name].subnet_of(pool)
    assert subnets[a1.name] == subnets[a2.name] != subnets[b1.name]

    assert _http_get_from(a1.id, a2.ip).startswith("HTTP/1.1 200")
    # The egress table refuses a connection to another app's bridge (engine/egress.py), before
    # Docker's isolation rules would drop it.
    assert _http_get_from(a1.id, b1.ip) == f"nc: can't connect to remote host ({b1.ip}): Connection refused"
    assert _http_get_from(b1.id, a1.ip) == f"nc: can't connect to remote host ({a1.ip}): Connection refused"

    # HAProxy (on the host) reaches both replicas of tenant-a, and tenant-b.
    assert [stack.get("tenant-a.localhost")[0] for _ in range(20)] == [200] * 20
    assert stack.get("tenant-b.localhost") == (200, "b1")
    a.refresh_from_db()
    served = [server.answered.total for server in readings.servers(a, a.live_colour, 2)]
    assert all(count > 0 for count in served), served


def _http_get_from(container_id: str, ip: str) -> str:
    """GET / of ip:8000 from inside the container: the answer's status line, or nc's error
    after 3 s. With nc: the static busybox's wget crashes in a FROM scratch image."""
    request = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 3 " + ip + " 8000 2>&1 | /bin/busybox head -1"
    return _exec(container_id, "sh", "-c", request)[1].strip()


def test_deleting_an_app_removes_its_network(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="short-lived")
    assert stack.deploy_and_wait(app).state == "succeeded"
    assert _network_exists(networks.network_name(app.name))

    apps.delete_app(app.name, actor=TEST_ACTOR)

    stack.eventually(lambda: not images.app_images(app.image_repository()), "the worker removes the images")
    assert containers.listed(app_name=app.name) == []
    assert not _network_exists(networks.network_name(app.name))


def test_reconcile_removes_networks_of_apps_that_no_longer_exist(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="forgotten")
    assert stack.deploy_and_wait(app).state == "succeeded"
    App.objects.filter(pk=app.pk).delete()  # as if deleted while the worker was down

    stack.reconcile()

    assert not _network_exists(networks.network_name("forgotten"))
    assert containers.listed("forgotten") == []


def test_a_container_on_the_shared_network_of_earlier_versions_keeps_its_address_until_the_network_empties(
        stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="upgraded")
    live = stack.deploy_and_wait(app)
    shared = settings.SWITCHYARD["DOCKER_NETWORK"]
    daemon.client().api.create_network(shared, driver="bridge", labels=instance_labels())
    old = daemon.client().containers.run(live.image, name=f"{name_prefix()}-upgraded-old", detach=True, network=shared,
                                         labels=instance_labels(**{LABEL_APP: app.name,
                                                                   LABEL_DEPLOYMENT: str(live.id)}))
    old.reload()
    assert containers.address(old.id) == old.attrs["NetworkSettings"]["Networks"][shared]["IPAddress"] != ""

    stack.reconcile()  # the shared network still has a container: it stays
    assert _network_exists(shared)
    containers.stop_and_remove(old.id, timeout=0)
    stack.reconcile()
    assert not _network_exists(shared)
    assert _network_exists(networks.network_name(app.name))


def _network_exists(name: str) -> bool:
    return any(network["Name"] == name for network in daemon.client().api.networks(names=[name]))


def test_a_build_that_never_ends_fails_at_the_apps_build_timeout_and_the_old_release_keeps_serving(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="slow-build")
    assert stack.deploy_and_wait(app).state == "succeeded"
    _set(app, build_timeout=5)
    app_repo.commit_endless_build()

    started = time.time()
    deployment = stack.deploy(app)
    run_step = eventually(lambda: _endless_run_step(started), "the RUN step did not start", 60)
    # The RUN step's container carries the build limits.
    build_host = _inspect(run_step)["HostConfig"]
    assert (build_host["Memory"], build_host["MemorySwap"]) == (settings.SWITCHYARD["BUILD_MEMORY_MB"] * MIB,) * 2
    answers = []
    deadline = time.monotonic() + 60  # far past the build timeout: a build that is not stopped fails here
    while not _refresh(deployment).is_final and time.monotonic() < deadline:
        answers.append(stack.get("slow-build.localhost"))
        time.sleep(0.2)
    # The build's last output line ("Running in …") is stored with the lines written just after
    # the final state (the RUN step prints nothing more): read the log once it is whole.
    deployment = stack.wait(deployment, timeout=10)

    assert (deployment.state, deployment.error) == ("failed", "build failed: timed out after 5 s")
    assert 5 <= deployment.phase_duration("build") < 8
    assert set(answers) == {(200, "v1")}
    assert stack.get("slow-build.localhost") == (200, "v1")
    assert _run_step_container(deployment) == run_step[:12]
    eventually(lambda: not _exists(run_step), "the RUN step's container was left behind", 10)
    assert _log(deployment)[-1] == "Deployment failed: build failed: timed out after 5 s"


def _endless_run_step(since: float) -> str | None:
    """The id of the build container running the endless RUN step (builds carry no labels)."""
    for container in daemon.client().api.containers(filters={"status": "running"}):
        if container["Command"] == "/bin/busybox sleep 100000" and container["Created"] >= int(since):
            return container["Id"]
    return None


def _run_step_container(deployment: Deployment) -> str | None:
    """The container of the build's first RUN step (the steps before it may run in containers too)."""
    run_step_seen = False
    for line in _log(deployment):
        run_step_seen = run_step_seen or bool(re.match(r"Step \d+/\d+ : RUN ", line.strip()))
        if run_step_seen and (match := re.search(r"Running in ([0-9a-f]{12})", line)):
            return match.group(1)
    return None


def _refresh(deployment: Deployment) -> Deployment:
    deployment.refresh_from_db()
    return deployment


def _exists(container_id: str) -> bool:
    return any(c["Id"].startswith(container_id) for c in daemon.client().api.containers(all=True))


def test_a_fork_bomb_stays_under_its_pids_limit_while_other_apps_and_the_panel_keep_answering(
        stack, app_repo, panel_server, tmp_path):
    app_repo.commit_fork_bomb(depth=9)  # 1,000+ processes if nothing stopped it
    neighbour_repo = AppRepo(tmp_path / "neighbour")
    neighbour_repo.commit_version("calm")
    bomb = stack.create_app(app_repo, name="bomb", pids_limit=64, cpu_limit=0.5)
    neighbour = stack.create_app(neighbour_repo, name="neighbour")
    bombed = stack.deploy_and_wait(bomb)
    assert bombed.state == "succeeded", bombed.error
    assert stack.deploy_and_wait(neighbour).state == "succeeded"
    container = _inspect(bombed.containers[0].id)["Id"]

    assert stack.get("bomb.localhost", "/cgi-bin/bomb") == (200, "started")
    peak, answers, panel = 0, [], []
    for _ in range(20):  # ~4 s from the bomb's start
        peak = max(peak, int(_cgroup("pids", container, "pids.current")))
        answers.append(stack.get("neighbour.localhost"))
        panel.append(_panel_status(panel_server))
        time.sleep(0.1)

    assert _cgroup("pids", container, "pids.max").strip() == "64"
    refused = int(_cgroup("pids", container, "pids.events").split()[1])
    assert refused > 0, "the bomb never reached the limit"
    assert peak <= 64
    assert set(answers) == {(200, "calm")}
    assert set(panel) == {200}


def _panel_status(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/login/", timeout=5) as response:
        return response.status


def test_a_process_that_outgrows_the_memory_limit_is_killed_and_the_app_keeps_serving(stack, app_repo):
    app_repo.commit_memory_hog()
    app = stack.create_app(app_repo, name="hog", memory_limit_mb=32)
    release = stack.deploy_and_wait(app)
    assert release.state == "succeeded", release.error
    container = release.containers[0]

    status = _direct_status(container, "/cgi-bin/hog")

    full_id = _inspect(container.id)["Id"]
    assert status != 200
    assert int(_cgroup("memory", full_id, "memory.max_usage_in_bytes")) <= 32 * MIB
    oom = dict(line.split() for line in _cgroup("memory", full_id, "memory.oom_control").splitlines())
    assert int(oom["oom_kill"]) >= 1
    assert stack.get("hog.localhost") == (200, "hog")


def _direct_status(container: Container, path: str) -> int:
    """Status of a request straight to the container (0: no HTTP answer)."""
    connection = http.client.HTTPConnection(container.ip, container.port, timeout=30)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (http.client.HTTPException, ConnectionError):
        return 0
    finally:
        connection.close()


@pytest.mark.django_db
def test_a_deployments_stored_output_is_cut_at_max_log_lines_and_the_log_still_ends_with_the_outcome(app_repo):
    app_repo.commit_version("v1")
    app = App.objects.create(name="chatty", repo_url=app_repo.url)
    deployment = Deployment.objects.create(app=app, ref="main")

    with override_settings(SWITCHYARD={**settings.SWITCHYARD, "MAX_LOG_LINES": 100}):
        log = DeploymentLog(deployment.id)
        log.write("==> build")
        for number in range(1, 1001):
            log.output(f"output {number}")
        log.write("Deployment failed: build failed: no space left")
        log.flush()

    lines = _log(deployment)
    assert lines[:3] == ["==> build", "output 1", "output 2"]
    assert lines[49] == "output 49"  # MAX_LOG_LINES minus its reserve (half of 100 here)
    assert lines[50] == "[log cut: output beyond 50 lines is not stored (SWITCHYARD_MAX_LOG_LINES=100)]"
    assert lines[51:] == ["[951 lines of output were not stored]", "Deployment failed: build failed: no space left"]


def test_a_build_with_more_output_than_max_log_lines_stores_the_cut_log_and_succeeds(stack, app_repo):
    limit = settings.SWITCHYARD["MAX_LOG_LINES"]
    app_repo.commit_chatty_build(lines=limit + 1000)
    app = stack.create_app(app_repo, name="chatty-build")

    deployment = stack.wait(stack.deploy(app), timeout=180)

    assert deployment.state == "succeeded", deployment.error
    lines = _log(deployment)
    assert limit - 100 < len(lines) <= limit, len(lines)
    assert sum("[log cut: output beyond" in line for line in lines) == 1
    assert any(re.fullmatch(r"\[[\d,]+ lines of output were not stored\]", line) for line in lines)
    assert lines[-1] == "Deployment succeeded"
