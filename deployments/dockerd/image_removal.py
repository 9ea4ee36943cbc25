"""Removing images without breaking a build that runs meanwhile (build_lock.py says why it could).

While no build runs, an image goes with its untagged parents, the layers its build left. While one
runs, only the image itself goes, and its parent is set aside under a tag of this installation's
(`<image namespace>.set-aside:sha256-<hex>`, a name no tenant may build from: base_images.py),
so it is neither lost nor taken from the build; the next removal that finds no build running, or
the periodic reconcile, removes what was set aside, with its own untagged parents.

A removal looks for layers set aside only if this installation marked that it set one aside (a
file in its data dir): listing images costs dockerd a read of every image on the daemon, whatever
the filter, and most removals find nothing set aside. The reconcile lists them anyway."""
from pathlib import Path
from typing import Iterable

import docker.errors
from django.conf import settings

from deployments.dockerd import build_lock, daemon, images
from deployments.dockerd.values import image_namespace


def remove_images(references: Iterable[str], force: bool = False) -> list[str]:
    """Remove images by tag (or ID, with `force` even one with several tags); one still used by a
    container is left alone (the next prune retries). Returns the references removed."""
    with build_lock.no_build_running() as with_parents:
        removed = [reference for reference in references if _remove(reference, with_parents, force)]
        if with_parents and _unmark_set_aside():
            _remove_set_aside()
    return removed


def remove_build_cache(image_ids: Iterable[str]) -> None:
    """Untagged images a build's own steps made (builds.StepImages), newest first: removed with
    their untagged parents while no build runs. While one runs, each is set aside instead, none
    removed: they are build cache, and that build may have just picked one for a step of its
    own (it then fails with `unable to find image`, as a test run side by side showed). One that
    dockerd refuses to remove is set aside too: a stopped build's RUN step container is still
    being removed when the build call returns, and holds the step before it."""
    with build_lock.no_build_running() as free:
        for image_id in image_ids:
            if not (free and _remove(image_id, with_parents=True, force=False)):
                _set_aside(image_id)


def set_aside() -> bool:
    """Whether any layer is set aside (a plain listing: cheap enough for every reconcile)."""
    return bool(daemon.client().api.images(name=_set_aside_repository(), quiet=True))


def remove_set_aside(wait: float = 0) -> bool:
    """Remove the parents set aside, once no build runs (waiting up to `wait` seconds); whether it could."""
    with build_lock.no_build_running(wait) as free:
        if free:
            _remove_set_aside()
    return free


def _remove(reference: str, with_parents: bool, force: bool) -> bool:
    api = daemon.client().api
    try:
        found = api.inspect_image(reference)
        api.remove_image(reference, force=force, noprune=not with_parents)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError:
        return False  # in use by a container (e.g. a release still draining)
    if not with_parents and found.get("Parent") and not images.image_exists(found["Id"]):
        _set_aside(found["Parent"])
    return True


def _set_aside(image_id: str) -> None:
    api = daemon.client().api
    try:
        # A build's output names its steps' images by a short id; a parent comes as a full one.
        full_id = image_id if image_id.startswith("sha256:") else api.inspect_image(image_id)["Id"]
        api.tag(full_id, _set_aside_repository(), tag="sha256-" + full_id.removeprefix("sha256:"))
    except docker.errors.NotFound:
        return  # another installation removed it: it was no build's
    _set_aside_mark().touch()  # after the tag: a removal that took the mark away before it lists it


def _unmark_set_aside() -> bool:
    """Whether a layer was marked as set aside; the mark goes (before the listing it calls for)."""
    try:
        _set_aside_mark().unlink()
    except FileNotFoundError:
        return False
    return True


def _set_aside_mark() -> Path:
    return Path(settings.DATA_DIR) / "image-layers-set-aside"


def _remove_set_aside() -> None:
    api = daemon.client().api
    for image in api.images(name=_set_aside_repository()):
        for tag in image.get("RepoTags") or ():
            try:
                api.remove_image(tag, noprune=False)  # just the tag if a build has made a child of it since
            except docker.errors.APIError:
                pass  # removed meanwhile by another installation's removal


def _set_aside_repository() -> str:
    return f"{image_namespace()}.set-aside"
