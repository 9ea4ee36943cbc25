"""A build that fails leaves no image behind (dockerd/builds.py, StepImages): the classic builder
keeps the image of every step before the failing one, untagged and without the labels that
would let a prune find it, so each failed deploy would leave layers on the daemon for good.
While another build runs (another test process), the removal sets them all aside instead
(dockerd/image_removal.remove_build_cache): that build may have picked one from the cache. They go
once no build runs."""
import io
import threading
import uuid

import pytest

from deployments.dockerd import build_lock, builds, daemon, image_removal, networks
from deployments.dockerd.values import LABEL_APP, image_namespace
from tests.support.buildcontext import busybox_context
from tests.support.eventually import eventually

APP = "cleanup"
NO_OTHER_BUILD_WITHIN = 120  # seconds: the other test processes' builds end by then


def _context(nonce: str, run: str = '["/bin/busybox", "false"]') -> io.BytesIO:
    """Two steps of this test's own (the label and the file carry its nonce), then a RUN that fails."""
    dockerfile = (f"FROM scratch\nLABEL test-nonce={nonce}\nCOPY busybox /bin/busybox\nCOPY marker /marker\n"
                  f"RUN {run}\n")
    return busybox_context(dockerfile, {"marker": nonce.encode()})


def _images_labelled(nonce: str) -> list[str]:
    return daemon.client().api.images(all=True, quiet=True, filters={"label": f"test-nonce={nonce}"})


@pytest.fixture
def app(stack, app_repo):
    """An app that exists (reconcile would remove the network of one that does not, mid-build)."""
    app_repo.commit_version("v1")
    stack.create_app(app_repo, name=APP)
    yield APP
    networks.remove_app_network(APP)


def test_a_failed_build_leaves_none_of_its_steps_images(app):
    nonce = uuid.uuid4().hex
    said: list[str] = []
    with pytest.raises(builds.BuildFailed, match="non-zero code"):
        builds.build_image(_context(nonce), f"switchyard/{APP}:failing", "Dockerfile", {LABEL_APP: APP},
                           on_line=said.append)

    made = [line for line in said if line.strip().startswith("---> ") and "Running in" not in line]
    assert len(made) >= 3, said  # the label's and the two copies': the builder committed them
    for image in _images_labelled(nonce):  # only if a build ran meanwhile: set aside
        assert all(tag.startswith(f"{image_namespace()}.set-aside:")
                   for tag in daemon.client().api.inspect_image(image)["RepoTags"]), said
    assert image_removal.remove_set_aside(wait=NO_OTHER_BUILD_WITHIN)
    assert _images_labelled(nonce) == [], said


def test_while_another_build_runs_every_step_image_of_a_failed_build_is_set_aside_none_removed(app):
    """They are build cache: the other build may have just picked one for a step of its own, and
    would fail with `unable to find image` if it went (a full test run showed it)."""
    nonce = uuid.uuid4().hex
    said: list[str] = []
    with build_lock.building():  # another build, as far as a removal can tell
        with pytest.raises(builds.BuildFailed, match="non-zero code"):
            builds.build_image(_context(nonce), f"switchyard/{APP}:failing", "Dockerfile", {LABEL_APP: APP},
                               on_line=said.append)
        kept = _images_labelled(nonce)

    assert len(kept) == 3, said  # the label's step and the two copies'
    for image in kept:
        tags = daemon.client().api.inspect_image(image)["RepoTags"]
        assert tags and all(tag.startswith(f"{image_namespace()}.set-aside:") for tag in tags), said
    assert image_removal.remove_set_aside(wait=NO_OTHER_BUILD_WITHIN)
    assert _images_labelled(nonce) == [], said


def _set_aside_images_go(nonce: str) -> None:
    """The next removals take every step image of the build: dockerd may still be removing the
    stopped RUN step's container, which holds the step before it, at the first one."""
    def gone() -> bool:
        assert image_removal.remove_set_aside(wait=NO_OTHER_BUILD_WITHIN)
        return _images_labelled(nonce) == []
    eventually(gone, lambda: f"no step image left: {_images_labelled(nonce)}", 30, interval=1)


def _running_its_run_step(said: list[str]) -> bool:
    steps = [index for index, line in enumerate(said) if line.startswith("Step ") and " : RUN " in line]
    return bool(steps) and any("Running in" in line for line in said[steps[-1]:])


def test_a_stopped_build_leaves_none_of_its_steps_images(app):
    """Stopped in its RUN step (a cancel, a deadline): dockerd still removes that step's container
    when the build call returns, and refuses to remove the image the container was made from
    meanwhile; so that image is set aside, for the next removal, and not left for good."""
    nonce = uuid.uuid4().hex
    said: list[str] = []
    with pytest.raises(builds.BuildStopped):
        builds.build_image(_context(nonce, run='["/bin/busybox", "sleep", "600"]'), f"switchyard/{APP}:stopped",
                           "Dockerfile", {LABEL_APP: APP}, on_line=said.append,
                           should_stop=lambda: _running_its_run_step(said))

    _set_aside_images_go(nonce)


def test_an_error_on_the_callers_side_ends_the_build_and_leaves_none_of_its_steps_images(app):
    """The output is read in a thread of its own (dockerd/quiet_ticks.py): when storing it fails
    (the log's database write, here a raise from on_quiet while the RUN step works), the build's
    stream is closed, so dockerd cancels the build and that thread ends, and its step images go."""
    nonce = uuid.uuid4().hex
    said: list[str] = []

    def store_fails() -> None:
        if _running_its_run_step(said):
            raise RuntimeError("the log could not be stored")

    with pytest.raises(RuntimeError, match="could not be stored"):
        builds.build_image(_context(nonce, run='["/bin/busybox", "sleep", "600"]'), f"switchyard/{APP}:caller-failed",
                           "Dockerfile", {LABEL_APP: APP}, on_line=said.append, on_quiet=store_fails)

    eventually(lambda: not [t for t in threading.enumerate() if t.name == "quiet-ticks"], "the reader thread ending", 10)
    _set_aside_images_go(nonce)
