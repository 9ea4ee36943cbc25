"""Compose's lifecycle hooks through a whole compose file on the real stack
(tests/support/hookrepo.py): `post_start` runs in each new container, `pre_stop` in each
container of a release that served before it stops: the drain's, a rollback's, a recreate's and
a replaced store's. Each hook records itself in the store's named volume, and the web service
answers that record over HTTP; `depends_on` on a profile-disabled service with
`required: false` is left out."""
import pytest

from deployments.dockerd import containers, volumes
from deployments.models import App, Deployment
from tests.support.hookrepo import HookRepo

HOST = "hooks.example.com"
LEFT_OUT = "services.web.depends_on.debug: not in this file and not required: left out"


@pytest.fixture
def hook_repo(tmp_path) -> HookRepo:
    return HookRepo(tmp_path / "repo")


@pytest.fixture
def hooked_app(stack, hook_repo):
    """The app, its v1 deployed; its volume removed afterwards."""
    hook_repo.commit_release("v1")
    app = stack.create_app(hook_repo, name="hooks", compose_file="compose.yaml", domains=[HOST],
                           health_path="/cgi-bin/health", health_deadline=60)
    first = stack.wait(stack.deploy(app), timeout=180)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    yield app, first
    stack.wait_until_idle()
    for container in containers.listed(app.name):
        containers.stop_and_remove(container.id, timeout=0)
    volumes.remove_app_volumes(app.id)


def events(stack) -> list[tuple[str, ...]]:
    """The hooks that ran, in order: (hook, service, release, hostname, ...details)."""
    status, body = stack.get(HOST, "/cgi-bin/events")
    assert status == 200, body
    return [tuple(line.split(",")) for line in body.splitlines() if line]


def hostnames(release_containers) -> set[str]:
    """Docker's default hostname: the container's short id (also once it is removed)."""
    return {c.id[:12] for c in release_containers}


def web_hooks(seen, hook: str, release: str) -> dict[str, tuple[str, ...]]:
    """hostname → what the web hook recorded (uid, cwd, greeting, up) in that container."""
    return {event[3]: event[4:] for event in seen if event[:3] == (hook, "web", release)}


def position(seen, hook: str, service: str, release: str) -> list[int]:
    return [index for index, event in enumerate(seen) if event[:3] == (hook, service, release)]


def deploy(stack, app, hook_repo, release: str, **release_options) -> Deployment:
    hook_repo.commit_release(release, **release_options)
    return stack.wait(stack.deploy(app), timeout=180)


def test_post_start_runs_in_each_new_container_as_its_hook_says_and_a_missing_optional_dependency_is_left_out(
        stack, hooked_app):
    app, first = hooked_app
    seen = events(stack)
    started = web_hooks(seen, "post_start", "v1")
    assert set(started) == hostnames(first.containers) and len(started) == 2, seen
    assert all(details[:3] == ("uid=65534", "cwd=/www/cgi-bin", "hi") for details in started.values()), started
    store = next(s for s in first.services if s.name == "store")
    assert [event[:4] for event in seen if event[1] == "store"] == [
        ("post_start", "store", "s1", *hostnames(store.containers))]
    assert not [event for event in seen if event[0] == "pre_stop"], seen
    assert [s.name for s in first.services] == ["store"]
    assert any(LEFT_OUT in line for line in first.log_lines.values_list("text", flat=True))


def test_pre_stop_runs_in_each_old_web_container_while_it_still_serves_then_it_stops(stack, hook_repo, hooked_app):
    app, first = hooked_app
    second = deploy(stack, app, hook_repo, "v2")

    assert second.state == Deployment.State.SUCCEEDED, second.error
    seen = events(stack)
    stopped = web_hooks(seen, "pre_stop", "v1")
    assert set(stopped) == hostnames(first.containers), seen
    assert all(details == ("uid=65534", "cwd=/www/cgi-bin", "hi", "up=ok") for details in stopped.values()), stopped
    assert min(position(seen, "pre_stop", "web", "v1")) > max(position(seen, "post_start", "web", "v2"))  # the drain
    assert set(web_hooks(seen, "post_start", "v2")) == hostnames(second.containers)
    assert all(containers.state(c.id).status == "removed" for c in first.containers)
    assert not web_hooks(seen, "pre_stop", "v2")


def test_a_rollback_runs_the_new_releases_pre_stop_and_leaves_the_old_one_serving(stack, hook_repo, hooked_app):
    """The new web containers and the store that replaced v1's served during the watch: each
    stops with its pre_stop (the web first: it uses the store); v1's web and store serve on."""
    app, first = hooked_app
    App.objects.filter(pk=app.pk).update(watch_window=30)
    second = deploy(stack, app, hook_repo, "v2", store_release="s2", health_breaks_after=6)

    assert second.state == Deployment.State.ROLLED_BACK, second.error
    seen = events(stack)
    assert set(web_hooks(seen, "pre_stop", "v2")) == hostnames(second.containers) != set(), seen
    assert all(details[-1] == "up=ok" for details in web_hooks(seen, "pre_stop", "v2").values())
    assert not web_hooks(seen, "pre_stop", "v1"), seen  # it serves on
    assert len(position(seen, "pre_stop", "store", "s2")) == 1, seen
    assert position(seen, "pre_stop", "store", "s2") > position(seen, "pre_stop", "web", "v2")
    assert all(containers.state(c.id).running for c in first.containers)
    old_store = next(s for s in first.services if s.name == "store")
    assert all(containers.state(c.id).running for c in old_store.containers)
    assert all(containers.state(c.id).status == "removed" for c in second.containers)


def test_a_recreate_runs_pre_stop_in_the_old_containers_before_the_new_ones_start(stack, hook_repo, hooked_app):
    app, first = hooked_app
    App.objects.filter(pk=app.pk).update(zero_downtime=False)
    second = deploy(stack, app, hook_repo, "v2", store_release="s2")

    assert second.state == Deployment.State.SUCCEEDED, second.error
    seen = events(stack)
    assert set(web_hooks(seen, "pre_stop", "v1")) == hostnames(first.containers), seen
    assert max(position(seen, "pre_stop", "web", "v1")) < min(position(seen, "post_start", "web", "v2"))
    old_store = next(s for s in first.services if s.name == "store")
    [stopped_store] = [event for event in seen if event[:3] == ("pre_stop", "store", "s1")]
    assert stopped_store[3:] == tuple(hostnames(old_store.containers))
    assert position(seen, "pre_stop", "store", "s1") < position(seen, "post_start", "store", "s2")
    assert "Recreate: stopping the running release first" in "\n".join(
        second.log_lines.values_list("text", flat=True))
