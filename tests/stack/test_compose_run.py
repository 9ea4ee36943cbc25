"""How a release's services run together, against the real stack: a one-shot `migrate` service
the web one waits for (service_completed_successfully), run to its end at each deploy before the
web containers start, a failing one leaving the running release serving; hostname and a
restart: on-failure:N policy applied; lifecycle hooks run with docker exec in a real container."""
import uuid

import pytest

from deployments.dockerd import build_lock, containers, daemon, image_removal, networks
from deployments.dockerd.containers import ContainerLimits, RunOptions
from deployments.dockerd.values import LABEL_APP, name_prefix
from deployments.engine import hooks
from deployments.compose.hooks import Hook
from deployments.models import Deployment

MIGRATED = """services:
  web:
    build: .
    hostname: front
    restart: on-failure:3
    depends_on: {{migrate: {{condition: service_completed_successfully}}}}
  migrate:
    build: .
    command: [/bin/busybox, sh, -c, "echo migrating to {version}; exit {exit_code}"]
"""
HOST_PAGE = "echo 'Status: 200 OK'\necho\n/bin/busybox hostname"


def commit(app_repo, version: str, exit_code: int = 0) -> None:
    app_repo.commit_version(version)
    app_repo._cgi("host", HOST_PAGE)
    (app_repo.path / "compose.yaml").write_text(MIGRATED.format(version=version, exit_code=exit_code))
    app_repo._commit(f"compose {version}")


def test_a_one_shot_service_runs_to_its_end_before_the_web_one_and_a_failing_one_keeps_the_old_release(
        stack, app_repo):
    commit(app_repo, "v1")
    app = stack.create_app(app_repo, name="migrated", compose_file="compose.yaml")
    first = stack.deploy_and_wait(app)

    assert first.state == Deployment.State.SUCCEEDED, first.error
    lines = list(first.log_lines.values_list("text", flat=True))
    completed = lines.index("[migrate] completed successfully")
    assert any("migrating to v1" in line for line in lines[:completed])
    assert completed < next(i for i, line in enumerate(lines) if line.startswith("[web] Started "))
    assert "migrate" not in [s.name for s in first.services]  # it ran; nothing of it is kept
    assert not any("-migrate-job" in c.name for c in containers.listed(app.name))  # removed once it ended
    host = "migrated.localhost"
    assert stack.get(host) == (200, "v1")
    assert stack.get(host, "/cgi-bin/host") == (200, "front")
    policy = daemon.client().api.inspect_container(first.containers[0].id)["HostConfig"]["RestartPolicy"]
    assert policy == {"Name": "on-failure", "MaximumRetryCount": 3}

    commit(app_repo, "v2", exit_code=3)
    second = stack.deploy_and_wait(app)

    assert second.state == Deployment.State.FAILED and second.phase == "start", second.error
    assert "service migrate: exited with code 3" in second.error and "migrating to v2" in second.error
    assert stack.get(host) == (200, "v1")
    assert all(containers.state(c.id).running for c in first.containers)
    assert not any(c.deployment == str(second.id) for c in containers.listed(app.name))


@pytest.fixture
def busybox_container(app_repo):
    """A running container of a busybox image built here (nothing is pulled), removed afterwards.
    Its label makes the image its own: without one it is the very image every app build of these
    files makes at its CMD step, and removing it while such a build ran took the layer that build
    had just picked (`unable to find image "sha256:..."` in another test process)."""
    app_repo.commit_version("v1")
    with build_lock.building():
        image, _ = daemon.client().images.build(path=str(app_repo.path), tag=f"{name_prefix()}-hooks-test:1", rm=True,
                                                labels={"switchyard-test.image": uuid.uuid4().hex})
    container = containers.start_container(f"{name_prefix()}-hooks_test-1", image.id, 8000, {"GREETING": "hi"},
                                           {LABEL_APP: "hooks"}, ContainerLimits.defaults(), RunOptions())
    yield container
    containers.stop_and_remove(container.id, timeout=0)
    networks.remove_app_network("hooks")
    image_removal.remove_images([image.id], force=True)


def test_hooks_run_in_the_container_with_its_environment_and_a_failure_says_why(busybox_container):
    said: list[str] = []
    marker = Hook(command=("/bin/busybox", "sh", "-c", 'echo "$GREETING $EXTRA" > /www/hooked'),
                  environment=(("EXTRA", "there"),))
    hooks.run_post_start((marker,), service="web", container_id=busybox_container.id,
                         container_name=busybox_container.name, say=said.append)
    written = daemon.client().containers.get(busybox_container.id).exec_run(["/bin/busybox", "cat", "/www/hooked"])
    assert written.output.decode().strip() == "hi there"
    assert said == [f"[web] post_start '/bin/busybox sh -c echo \"$GREETING $EXTRA\" > /www/hooked' in "
                    f"{busybox_container.name} done"]

    failing = Hook(command=("/bin/busybox", "sh", "-c", "echo not ready >&2; exit 2"))
    with pytest.raises(hooks.HookFailed, match=r"service web: post_start .* exited with code 2; output:\nnot ready"):
        hooks.run_post_start((failing,), service="web", container_id=busybox_container.id,
                             container_name=busybox_container.name, say=said.append)

    slow = Hook(command=("/bin/busybox", "sleep", "5"))
    hooks.run_pre_stop((failing, slow), service="web", container_id=busybox_container.id, grace_seconds=1,
                       say=said.append)
    assert said[-2:] == ["[web] pre_stop '/bin/busybox sh -c echo not ready >&2; exit 2' exited with code 2; "
                         "stopping the container anyway: not ready",
                         "[web] pre_stop '/bin/busybox sleep 5' still running after 1s; stopping the container anyway"]
