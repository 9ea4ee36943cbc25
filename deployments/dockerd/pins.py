"""Pulled images held per app: the images of image services (`image:`, no build) are shared on the
Docker daemon by digest, whichever app (of whichever Switchyard installation on the daemon)
pulled them, so none of them may remove one by its registry name while another still keeps it.

Each app that pins an image gives it a reference of its own, a hold tag
`<image namespace>.pins/app-<app id>:sha256-<digest>` (values.hold_repository). An app lets go of
an image by removing its own hold tag only; the image's registry references (`repository@sha256:...`
and the tags of that repository on it) go once no hold tag of any app or installation is left on it
and no container, of whoever, was made from it. Docker then removes the image; layers another
image holds stay. Every removal goes through image_removal.py: a pulled image is the very image a
build on this daemon made if their configs match, and then its parents are build cache that a
running build may have picked. A hold tag names no image a tenant may use (base_images.py ignores them)."""
import docker.errors

from deployments.dockerd import daemon, image_removal
from deployments.dockerd.values import hold_repository, is_hold_tag

HOLD_TAG_PREFIX = "sha256-"


def hold_tag(app_id: int, pinned: str) -> str:
    """The app's hold tag for `repository@sha256:HEX`."""
    return f"{hold_repository(app_id)}:{HOLD_TAG_PREFIX}{pinned.rsplit('@sha256:', 1)[1]}"


def hold(app_id: int, pinned: str) -> bool:
    """Tag the image Docker has as `pinned` with the app's hold tag; False if Docker has no such image."""
    repository, tag = hold_tag(app_id, pinned).rsplit(":", 1)
    try:
        daemon.client().api.tag(pinned, repository, tag=tag)
    except docker.errors.NotFound:
        return False
    return True


def held_digests(app_id: int) -> set[str]:
    """The digests (sha256:HEX) the app holds an image for."""
    digests = set()
    for image in daemon.client().api.images(name=hold_repository(app_id)):  # a plain listing: no inspect
        digests |= {"sha256:" + tag.rsplit(":" + HOLD_TAG_PREFIX, 1)[1] for tag in image.get("RepoTags") or ()
                    if tag.startswith(hold_repository(app_id) + ":" + HOLD_TAG_PREFIX)}
    return digests


def held_app_ids() -> set[int]:
    """The apps (by id) this installation holds pulled images for."""
    prefix = hold_repository(0).removesuffix("0")
    return {int(tag[len(prefix):].split(":", 1)[0])
            for image in daemon.client().api.images(name=prefix.rsplit("/", 1)[0] + "/*")
            for tag in image.get("RepoTags") or () if tag.startswith(prefix) and is_hold_tag(tag)}


def let_go_all(app_id: int) -> list[str]:
    """A deleted app's holds let go of; returns the digests."""
    digests = sorted(held_digests(app_id))
    for digest in digests:
        let_go(app_id, digest)
    return digests


def let_go(app_id: int, digest: str) -> list[str]:
    """Remove the app's hold on the image of `digest` (sha256:HEX); then, if nobody else holds or
    runs it, its registry references too (Docker removes the image with the last). Returns what
    was removed beside the hold tag."""
    tag = f"{hold_repository(app_id)}:{HOLD_TAG_PREFIX}{digest.removeprefix('sha256:')}"
    try:
        found = daemon.client().api.inspect_image(tag)
    except docker.errors.NotFound:
        return []
    if not image_removal.remove_images([tag]):  # gone meanwhile, or its last name and a container uses it
        return []
    if any(is_hold_tag(name) and name != tag for name in found.get("RepoTags") or ()) or _made_containers(found["Id"]):
        return []
    return _remove_registry_references(found, digest)


def _made_containers(image_id: str) -> bool:
    """Whether any container on the daemon (running or not, of any installation) was made from it."""
    return bool(daemon.client().api.containers(all=True, quiet=True, filters={"ancestor": image_id}))


def _remove_registry_references(found: dict, digest: str) -> list[str]:
    """The image's `repository@digest` references, then its tags in those repositories; others
    (another repository's name for the same image) are not this pin's to remove."""
    digests = [name for name in found.get("RepoDigests") or () if name.endswith("@" + digest)]
    repositories = {name.rsplit("@", 1)[0] for name in digests}
    tags = [name for name in found.get("RepoTags") or ()
            if not is_hold_tag(name) and name.rsplit(":", 1)[0] in repositories]
    # One gone with the previous name (a tag's removal takes its repository's digests along) is
    # skipped; if a container was made from the image meanwhile, it stays: the next deploy looks again.
    return image_removal.remove_images([*digests, *tags])
