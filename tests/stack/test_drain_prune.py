"""The drain prunes the app's old images while the previous release stops (engine/phases/drain.py):
an image a container still uses is refused at first, and removed again once the container is
gone, without listing the images again. Real Docker; no worker needed."""
import io
import tarfile
import uuid

import pytest
from django.conf import settings

from deployments.dockerd import containers, daemon, image_removal, images
from deployments.dockerd.values import LABEL_INSTANCE
from deployments.engine.phases import drain


def _import(tag: str) -> None:
    """An image of busybox alone, labelled as this installation's (what app_images lists)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        archive.add("/bin/busybox", arcname="bin/busybox")
    repository, version = tag.rsplit(":", 1)
    daemon.client().api.import_image_from_data(
        data.getvalue(), repository=repository, tag=version,
        changes=[f'LABEL {LABEL_INSTANCE}="{settings.SWITCHYARD["INSTANCE"]}"', 'CMD ["/bin/busybox", "sleep", "300"]'])


@pytest.fixture
def repository():
    name = f"switchyard-test-prune-{uuid.uuid4().hex[:8]}"
    yield name
    image_removal.remove_images(images.app_images(name), force=True)


def test_an_image_the_stopping_release_still_uses_is_removed_again_once_it_stopped(repository):
    old, new = f"{repository}:old", f"{repository}:new"
    _import(old)
    _import(new)
    kept = drain.KeptImages(app_id=0, repository=repository, tags=frozenset({new}), digests=frozenset())
    stopping = daemon.client().containers.run(old, detach=True, network_mode="none")
    try:
        pruned = drain.prune_builds(kept)
        assert pruned == drain.Pruned(removed=(), refused=(old,))  # Docker refuses it while a container uses it
        assert pruned.lines() == []
        assert set(images.app_images(repository)) == {old, new}
    finally:
        containers.stop_and_remove(stopping.id, timeout=0)

    assert pruned.again().lines() == [f"Removed old images: {old}"]
    assert images.app_images(repository) == [new]
