"""The pull of a base image the build check needs is bounded like the build: the registry decides
how fast and how much it sends, so a pull ends at the build's deadline, on the deployment's cancel,
and once its layers add up to more than SWITCHYARD_MAX_PULL_MB. No real registry is reachable
here: tests/support/registry.py plays one on 127.0.0.1 (which the build check itself refuses, so these
call images.pull_image directly)."""
import threading
import time
import uuid

import pytest

from deployments.dockerd import builds, image_removal, images
from tests.support.registry import fake_registry

GIB = 1024 ** 3


@pytest.fixture
def registry():
    with fake_registry() as served:
        yield served


@pytest.fixture
def pulled_images():
    references: list[str] = []
    yield references
    image_removal.remove_images(references)


def _name() -> str:
    return f"sy-pull-test/{uuid.uuid4().hex[:10]}"


def test_an_image_from_a_registry_is_pulled(registry, pulled_images):
    reference = registry.add_image(_name(), files={"x": b"hello"})
    pulled_images.append(reference)
    assert images.pull_image(reference) is True
    assert images.image_exists(reference)


def test_a_pull_whose_layers_add_up_past_the_cap_is_stopped(registry, pulled_images):
    """Two layers of 3 GiB each, under the default 4096 MiB alone, over it together."""
    reference = registry.add_image(_name(), declared_layers=(3 * GIB, 3 * GIB))
    pulled_images.append(reference)
    started = time.monotonic()
    with pytest.raises(builds.BuildFailed) as refused:
        images.pull_image(reference, timeout=120)
    assert str(refused.value) == f"pulling {reference} stopped: larger than 4096 MiB (SWITCHYARD_MAX_PULL_MB)"
    assert time.monotonic() - started < 30
    assert registry.hung_up.wait(15), "dockerd kept downloading after the pull was stopped"
    assert not images.image_exists(reference)


def test_a_trickling_pull_ends_at_the_build_deadline(registry, pulled_images):
    reference = registry.add_image(_name(), declared_layers=(GIB,))  # at 320 KiB/s: ~1 h
    pulled_images.append(reference)
    started = time.monotonic()
    with pytest.raises(builds.BuildFailed, match=rf"^pulling {reference} did not finish within 3 s$"):
        images.pull_image(reference, timeout=3)
    assert 3 <= time.monotonic() - started < 15
    assert registry.hung_up.wait(15), "dockerd kept downloading after the pull timed out"
    assert not images.image_exists(reference)


def test_a_trickling_pull_is_stopped_by_a_cancel(registry, pulled_images):
    reference = registry.add_image(_name(), declared_layers=(GIB,))
    pulled_images.append(reference)
    cancel = threading.Timer(2, lambda: None)
    cancel.start()
    started = time.monotonic()
    with pytest.raises(builds.BuildStopped):
        images.pull_image(reference, should_stop=lambda: not cancel.is_alive(), timeout=600)
    assert time.monotonic() - started < 15
    assert registry.hung_up.wait(15), "dockerd kept downloading after the pull was cancelled"
    assert not images.image_exists(reference)
