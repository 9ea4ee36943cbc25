"""The images of a Compose app's image services (`image:` and no `build`), in the build phase:
each reference checked by the same rules as a Dockerfile's FROM (dockerfile/base_images.py:
listed registries only, no private address unless the administrator trusts it, never another
app's or Switchyard's own image), pulled within the build's bounds as its pull_policy says, then
pinned: the release runs, and records, `repository@sha256:...` as the registry served it, so a
redeploy or a rollback runs exactly that, whatever the tag points to later.

An image already on the host is used without a pull only if a deployment of this app pinned it:
one another app pulled (with its own credentials) is pulled again, so that the registry checks
this app's access. The app's registry credentials go with a pull only when the image names the registry they were
stored for (never to another registry, nor to one a redirect leads to: dockerd gets them for
that pull alone). Each pinned image is held for the app (dockerd/pins.py): no other app's prune
removes it while this app keeps it."""
from django.conf import settings

from deployments.compose.project import ServiceSpec
from deployments.dockerd import builds, daemon, images, pins
from deployments.dockerfile.base_images import ImageResolver, Owner, registry_of
from deployments.dockerfile.syntax import Refused
from deployments.engine.phases.context import Cancelled, DeploymentContext
from deployments.models import App

PINS_LOOKED_AT = 100  # the app's latest deployments with image services


def pin_service_image(ctx: DeploymentContext, spec: ServiceSpec) -> str:
    """The service's image pulled as its pull_policy says and checked; returns the pinned reference."""
    where = f"services.{spec.name}.image:"
    policy = _effective_policy(ctx, spec)
    pulled_before = _pulled_before_by(ctx.app, spec.image)
    if policy == "never" and not pulled_before:
        raise Refused(f"{where} {spec.image}: pull_policy never, and this app never pulled it: an image on the "
                      "host that another app pulled is not this app's to use (pull it once: pull_policy missing)")
    if policy == "missing" and not pulled_before and images.image_exists(spec.image):
        ctx.log.write(f"[{spec.name}] {spec.image} is on the host but this app never pulled it: pulling it, so that "
                      "its registry checks this app's access")
    try:
        image = _resolver(ctx, spec, pull_first=policy == "always" or not pulled_before,
                          may_pull=policy != "never").resolve(spec.image, where)
    except builds.BuildStopped:
        raise Cancelled() from None
    except builds.BuildFailed as failed:  # past the deadline or MAX_PULL_MB
        raise builds.BuildFailed(f"{where} {failed}") from None
    pinned = pinned_reference(spec.image, images.repo_digests(image.id))
    if not pinned:
        raise Refused(f"{where} {spec.image}: Docker has no registry digest for it (an image made on this host, "
                      "never pulled); a release runs an image pinned by the digest its registry serves")
    pins.hold(ctx.app.id, pinned)  # at once: another app's prune lets go of it only if no app holds it
    ctx.deployment.pinned_images[spec.name] = {"reference": spec.image, "pinned": pinned, "image_id": image.id}
    ctx.save(pinned_images=ctx.deployment.pinned_images)
    ctx.log.write(f"[{spec.name}] {spec.image} (pull_policy {policy}): runs {pinned} (image {image.id[:19]})")
    return pinned


def ensure_pinned(ctx: DeploymentContext) -> None:
    """The release's image services at their pinned digests (a redeploy's: those its release ran),
    each held for the app (dockerd/pins.py, so that no prune takes it from under the release). One
    Docker no longer has (removed by hand, or let go of in between) is pulled again by digest,
    through the same registry rules and bounds."""
    if ctx.deployment.redeploy_of_id and ctx.deployment.redeploy_of.pinned_images:
        ctx.save(pinned_images=ctx.deployment.redeploy_of.pinned_images)
    for spec in ctx.project.services:
        pinned = ctx.deployment.pinned_images.get(spec.name, {}).get("pinned")
        if pinned and not pins.hold(ctx.app.id, pinned):
            _pull_again(ctx, spec, pinned)
            pins.hold(ctx.app.id, pinned)


def _pull_again(ctx: DeploymentContext, spec: ServiceSpec, pinned: str) -> None:
    where = f"services.{spec.name}.image:"
    _resolver(ctx, spec, pull_first=False, may_pull=True).check_registry(pinned, where)
    try:
        pulled = _pull(ctx, spec)(pinned)
    except builds.BuildStopped:
        raise Cancelled() from None
    if not pulled:
        raise daemon.RuntimeFailure(f"{where} {pinned} is gone from Docker and its registry; deploy again")
    ctx.log.write(f"[{spec.name}] pulled {pinned} again by digest")


def credentials_for(app: App, reference: str) -> dict | None:
    """The app's registry credentials, for a pull from the very host they were stored for."""
    host = app.registry_host.lower()
    if not host or not app.registry_username or registry_of(reference) != host:
        return None
    return {"username": app.registry_username, "password": app.registry_password}


def _pulled_before_by(app: App, reference: str) -> bool:
    """Whether the image Docker has as `reference` is one a deployment of this app pinned: then the
    app's access to it was checked by its registry. An image another app pulled (from a private
    registry, with its own credentials) is never used without a pull of this app's own."""
    image = images.image_facts(reference)
    if image is None:
        return False
    pinned = app.deployments.exclude(pinned_images={}).values_list("pinned_images", flat=True)[:PINS_LOOKED_AT]
    return any(entry.get("image_id") == image.id for entries in pinned for entry in entries.values())


def _effective_policy(ctx: DeploymentContext, spec: ServiceSpec) -> str:
    if spec.pull_policy in ("always", "never", "missing"):
        return spec.pull_policy
    ctx.log.write(f"[{spec.name}] pull_policy {spec.pull_policy}: pulled when missing (Switchyard keeps "
                  "no schedule of pulls; pull_policy always pulls at every deploy)")
    return "missing"


def _resolver(ctx: DeploymentContext, spec: ServiceSpec, *, pull_first: bool, may_pull: bool) -> ImageResolver:
    owner = Owner(app=ctx.app.name, app_id=ctx.app.id, instance=settings.SWITCHYARD["INSTANCE"])
    inspect = _inspect_after_a_pull() if pull_first else images.image_facts
    return ImageResolver(owner, inspect, _pull(ctx, spec) if may_pull else None,
                         registries=settings.SWITCHYARD["PULL_REGISTRIES"],
                         trusted_private=settings.SWITCHYARD["PRIVATE_REGISTRIES"])


def _inspect_after_a_pull():
    """pull_policy always: the first look finds nothing, so the resolver pulls (after its registry checks)."""
    asked: list[str] = []

    def inspect(reference: str):
        if not asked:
            asked.append(reference)
            return None
        return images.image_facts(reference)
    return inspect


def _pull(ctx: DeploymentContext, spec: ServiceSpec):
    def pull(reference: str) -> bool:
        ctx.log.write(f"[{spec.name}] pulling {reference}")
        return images.pull_image(reference, should_stop=ctx.cancel_requested_in_thread,
                                 timeout=ctx.app.build_timeout, auth_config=credentials_for(ctx.app, reference),
                                 platform=spec.platform)
    return pull


def pinned_reference(reference: str, repo_digests: tuple[str, ...]) -> str:
    """The RepoDigest of the repository `reference` names (Docker writes Docker Hub's short)."""
    if "@sha256:" in reference:
        return reference
    repository = _familiar(reference.rsplit(":", 1)[0] if ":" in reference.rsplit("/", 1)[-1] else reference)
    return next((digest for digest in repo_digests if _familiar(digest.split("@")[0]) == repository), "")


def _familiar(repository: str) -> str:
    for prefix in ("docker.io/", "index.docker.io/", "library/"):
        repository = repository.removeprefix(prefix)
    return repository.lower()
