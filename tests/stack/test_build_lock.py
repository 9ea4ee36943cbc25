"""Removing images while builds run (dockerd/build_lock.py, dockerd/image_removal.py).

The classic builder picks its cache layers from the image store and holds none of them, so a
removal that took an image's untagged parents could take the layer a running build had just
picked: the build failed with `unable to find image "sha256:..."` (seen in CI, when one test
process's cleanup removed its images while another built the same files). A build holds the lock;
a removal meanwhile takes the image only and sets its parent aside, for a removal that finds no
build running."""
import io
import threading
import uuid

import pytest

from deployments.dockerd import build_lock, builds, daemon, image_removal, images, networks
from deployments.dockerd.values import LABEL_APP, image_namespace
from tests.support.buildcontext import busybox_context

APP = "locktest"
NO_OTHER_BUILD_WITHIN = 120  # seconds: the other test processes' builds end by then


def _context(extra_step: str = "") -> io.BytesIO:
    """A FROM-scratch build of files no other test builds: its layers are this test's alone."""
    dockerfile = f'FROM scratch\nCOPY busybox /bin/busybox\nCOPY marker /marker\n{extra_step}CMD ["/bin/busybox", "true"]\n'
    return busybox_context(dockerfile, {"marker": uuid.uuid4().hex.encode()})


def _build(context: bytes, tag: str, said: list[str] | None = None) -> str:
    return builds.build_image(io.BytesIO(context), tag, "Dockerfile", {LABEL_APP: APP},
                              on_line=(said if said is not None else []).append)


@pytest.fixture
def tags(stack, app_repo):
    """Tags to remove afterwards; the builds are of an app that exists (else reconcile, which the
    worker's beat sends at its start, would remove the app's network as an orphan mid-build)."""
    app_repo.commit_version("v1")
    stack.create_app(app_repo, name=APP)
    made: list[str] = []
    yield made
    image_removal.remove_images(made)
    image_removal.remove_set_aside(wait=NO_OTHER_BUILD_WITHIN)
    networks.remove_app_network(APP)


def test_a_running_build_holds_the_lock_removals_wait_for(tags):
    tags.append(f"{image_namespace()}/{APP}:slow")
    said: list[str] = []
    built: list[str] = []
    context = _context('RUN ["/bin/busybox", "sleep", "3"]\n').getvalue()
    thread = threading.Thread(target=lambda: built.append(_build(context, tags[0], said)))
    thread.start()
    try:
        for _ in range(300):
            if any("Running in" in line for line in said):
                break
            threading.Event().wait(0.1)
        assert any("Running in" in line for line in said), said
        with build_lock.no_build_running() as free:
            assert free is False  # the build holds the lock for as long as it runs
    finally:
        thread.join(timeout=60)
    assert built and images.image_exists(built[0]), said  # the build itself went through
    with build_lock.no_build_running(wait=NO_OTHER_BUILD_WITHIN) as free:
        assert free is True


def test_a_removal_while_a_build_runs_sets_the_parent_aside_for_the_build_and_a_later_removal_takes_it(tags):
    tags += [f"{image_namespace()}/{APP}:first", f"{image_namespace()}/{APP}:second"]
    context = _context().getvalue()
    first = _build(context, tags[0])
    parent = daemon.client().api.inspect_image(first)["Parent"]
    assert parent
    with build_lock.building():  # as a build on another app's worker slot holds it
        assert image_removal.remove_images([tags[0]]) == [tags[0]]
        assert not images.image_exists(first) and images.image_exists(parent)
        assert daemon.client().api.inspect_image(parent)["RepoTags"] == [
            f"{image_namespace()}.set-aside:sha256-{parent.removeprefix('sha256:')}"]
        said: list[str] = []
        second = _build(context, tags[1], said)  # what a build that had picked the layer then does
        assert daemon.client().api.inspect_image(second)["Parent"] == parent
        steps = sum(line.startswith("Step ") for line in said)  # FROM, ..., the labels' one LABEL each
        assert sum("Using cache" in line for line in said) == steps - 2, said  # all but FROM and the image's own
    assert image_removal.remove_images([tags[1]]) == [tags[1]]
    assert image_removal.remove_set_aside(wait=NO_OTHER_BUILD_WITHIN) is True
    assert not images.image_exists(parent) and not image_removal.set_aside()
