"""The build phase: every service's Dockerfile checked before the first build starts
(dockerfile/check.py), then each service's image built from the checked Dockerfile and tagged
with the commit; or, when an image built earlier for the app has the same source (its build
context's git tree, Dockerfile and build arguments), that image tagged with the commit instead."""
import hashlib
import json
from contextlib import ExitStack
from typing import BinaryIO

from django.conf import settings

from deployments.compose.project import ServiceSpec
from deployments.dockerd import builds, dockerignore, images, pins
from deployments.dockerd.values import LABEL_APP, LABEL_APP_ID, LABEL_BUILD_BASES, LABEL_SOURCE, instance_labels
from deployments.dockerfile import build_context, check
from deployments.engine.phases import pull
from deployments.engine.phases.context import Cancelled, DeploymentContext
from deployments.git import source


def build(ctx: DeploymentContext) -> None:
    """Every service's Dockerfile is checked before the first build starts (dockerfile/check.py).
    Each build context is archived once, for its check and its build."""
    built = [spec for spec in ctx.project.services if not spec.image]  # image services are pulled (pull.py)
    with ExitStack() as archives:
        contexts = {spec.name: archives.enter_context(source.archive(ctx.app.name, ctx.deployment.commit_sha,
                                                                     spec.build_context)) for spec in built}
        for spec in built:
            check_dockerfile(ctx, spec, contexts[spec.name])
        for spec in ctx.project.services:
            ctx.images[spec.name] = (pull.pin_service_image(ctx, spec) if spec.image else
                                     build_service(ctx, spec, contexts[spec.name]))
    ctx.save(image=ctx.images[ctx.project.web.name])


def release_images(ctx: DeploymentContext) -> dict[str, str]:
    """Each service's image as this deployment built or pinned it (for the task that carries on after verify)."""
    pinned = ctx.deployment.pinned_images
    return {spec.name: pinned[spec.name]["pinned"] if spec.image else image_tag(ctx, spec)
            for spec in ctx.project.services}


def image_tag(ctx: DeploymentContext, spec: ServiceSpec) -> str:
    return f"{ctx.app.service_image_repository(spec.docker_name)}:{ctx.deployment.commit_sha[:12]}"


def _prefix(ctx: DeploymentContext, spec: ServiceSpec) -> str:
    """A Compose app's lines name their service."""
    return f"[{spec.name}] " if ctx.deployment.compose_text else ""


def check_dockerfile(ctx: DeploymentContext, spec: ServiceSpec, context: BinaryIO) -> None:
    """The service's Dockerfile (read from its build context's archive) checked, and the
    canonical one the build will use kept for it."""
    app, prefix = ctx.app, _prefix(ctx, spec)
    text = build_context.dockerfile_from_context(context, spec.dockerfile)
    owner = check.Owner(app=app.name, app_id=app.id, instance=settings.SWITCHYARD["INSTANCE"])
    try:
        inspect, pull_base = _base_images_for(ctx)
        checked = check.check(text, owner=owner, build_args=dict(spec.build_args), inspect=inspect, pull=pull_base,
                              registries=settings.SWITCHYARD["PULL_REGISTRIES"],
                              trusted_private=settings.SWITCHYARD["PRIVATE_REGISTRIES"])
        ctx.checked[spec.name] = (checked, checked.target(spec.build_target))
    except check.Refused as refused:
        raise check.Refused(f"{prefix}{spec.dockerfile}: {refused}") from None
    except builds.BuildFailed as failed:  # a pull past its deadline or size
        raise builds.BuildFailed(f"{prefix}{spec.dockerfile}: {failed}") from None
    except builds.BuildStopped:
        raise Cancelled() from None
    ctx.log.write(f"{prefix}{spec.dockerfile} checked: no remote ADD; images used: "
                  f"{', '.join(checked.images) or 'none'}")


def _base_images_for(ctx: DeploymentContext):
    """(inspect, pull) for the check. An image Docker got from a registry counts as missing until
    this build pulled it, with this app's credentials, so that its registry checks this app's
    access: another app may have pulled it from a private registry with its own (the rule of
    image services, pull.py). An image made on this host has no registry to ask. What is pulled
    is held for the app (dockerd/pins.py) until the drain, so no other app's prune takes it
    from under the build."""
    pulled: set[str] = set()

    def inspect(reference: str):
        image = images.image_facts(reference)
        if image is None or reference in pulled or not images.repo_digests(image.id):
            return image
        return None

    def pull_base(reference: str) -> bool:
        if not images.pull_image(reference, should_stop=ctx.cancel_requested_in_thread, timeout=ctx.app.build_timeout,
                                 auth_config=pull.credentials_for(ctx.app, reference)):
            return False
        pulled.add(reference)
        image = images.image_facts(reference)
        if image and (pinned := pull.pinned_reference(reference, images.repo_digests(image.id))):
            pins.hold(ctx.app.id, pinned)
        return True
    return inspect, pull_base


def bases_of(checked: check.Checked) -> str:
    """LABEL_BUILD_BASES: the IDs of the images the Dockerfile builds on (each of checked.images
    is `REFERENCE (ID)`), hashed."""
    ids = sorted(used.rsplit(" (", 1)[-1].rstrip(")") for used in checked.images)
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()


def source_of(ctx: DeploymentContext, spec: ServiceSpec) -> tuple[str, str]:
    """(LABEL_SOURCE, the build context's git tree): everything a build reads, hashed. The tree
    is equal for two commits exactly when the context's files are (unless `export-subst` writes
    the commit into them: then the commit counts too); the checked Dockerfile names its base
    images by ID, so a base that moved makes another source."""
    checked, target = ctx.checked[spec.name]
    sha = ctx.deployment.commit_sha
    tree = source.tree_id(ctx.app.name, sha, spec.build_context)
    facts = {"tree": tree, "dockerfile": checked.dockerfile, "bases": bases_of(checked), "target": target,
             "build_args": sorted(dict(spec.build_args).items()),
             "commit": sha if source.substitutes_on_archive(ctx.app.name, sha) else ""}
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest(), tree


def reuse_image(ctx: DeploymentContext, spec: ServiceSpec, source_key: str, tree: str) -> bool:
    """Tag the image an earlier build made from the same source with this commit, if Docker still
    has it: a redeploy, or a commit that changed nothing the build reads, builds nothing."""
    tag = image_tag(ctx, spec)
    image_id = images.built_from_source(tag.rsplit(":", 1)[0], source_key, ctx.app.id)
    if not image_id or not images.tag_image(image_id, tag):
        return False
    ctx.log.write(f"{_prefix(ctx, spec)}Reused image {image_id.removeprefix('sha256:')[:12]} as {tag}, no build: "
                  f"its build context (git tree {tree[:12]}), Dockerfile and build arguments are unchanged")
    return True


def build_service(ctx: DeploymentContext, spec: ServiceSpec, archive: BinaryIO) -> str:
    app, tag, prefix = ctx.app, image_tag(ctx, spec), _prefix(ctx, spec)
    source_key, tree = source_of(ctx, spec)
    if reuse_image(ctx, spec, source_key, tree):
        return tag
    try:
        checked, target = ctx.checked[spec.name]
        labels = instance_labels(**{LABEL_APP: app.name, LABEL_APP_ID: str(app.id),
                                    LABEL_BUILD_BASES: bases_of(checked), LABEL_SOURCE: source_key})
        labelled = build_context.with_labels(checked.dockerfile, target, labels)  # built instead of the tenant's
        with build_context.for_build(archive, labelled, dockerignore.excluder) as (context, dockerfile):
            builds.build_image(context, tag, dockerfile, labels,
                               lambda line: ctx.log.output(prefix + line), on_quiet=ctx.log.flush_pending,
                               should_stop=ctx.cancel_requested_in_thread, timeout=app.build_timeout,
                               build_args=dict(spec.build_args), target=target, labels_in_dockerfile=True)
    except builds.BuildStopped:
        raise Cancelled() from None
    ctx.log.write(f"{prefix}Built {tag}")
    return tag
