"""The release's source and its services: the commit fetched (a Compose app's file read at it),
the project loaded from it, and a redeploy's images taken from the release it redeploys."""
from deployments.compose.file import MAX_FILE_BYTES
from deployments.compose.for_app import load_for_app, summary
from deployments.compose.project import single_service
from deployments.dockerd import daemon
from deployments.engine import hooks, lifecycle
from deployments.engine.phases.context import DeploymentContext, PhaseFailed
from deployments.git import repo_files, source
from deployments.models import Deployment


def fetch(ctx: DeploymentContext) -> None:
    """The ref (or the pushed commit a webhook pinned) fetched into the app's bare cache."""
    deployment, app = ctx.deployment, ctx.app
    pinned = deployment.commit_sha  # a webhook deploys exactly the pushed commit
    access = source.Access(private_key=app.deploy_private_key, allow_private=app.repo_private_allowed,
                           known_hosts=source.known_hosts(app.name))
    sha = source.fetch(app.name, app.repo_url, pinned or deployment.ref, access)
    ctx.save(commit_sha=sha)
    ctx.log.write(f"Pushed commit {sha} on {deployment.ref}" if pinned else f"{deployment.ref} is commit {sha}")
    if app.compose_file:
        ctx.save(compose_text=source.read_file(app.name, sha, app.compose_file, MAX_FILE_BYTES))


def load_project(ctx: DeploymentContext, *, quiet: bool = False) -> None:
    """The release's services: from the compose file at the commit, or the app's one Dockerfile.
    A web service that cannot run twice at once is deployed by recreate, and the log says why
    (quiet: not again, in the task that carries on after verify)."""
    say = (lambda text: None) if quiet else ctx.log.write
    app = ctx.app
    if ctx.deployment.compose_text:
        files = repo_files.at_commit(app.name, ctx.deployment.commit_sha)
        ctx.project = load_for_app(app, ctx.deployment.compose_text, ctx.environment, read_file=files.read_file)
        if not quiet:  # here, where the repository's files are (what an include or extends names)
            lifecycle.record_compose_summary(ctx.deployment, summary(ctx.project))
        for notice in ctx.project.notices:
            say(f"{app.compose_file}: {notice}")
        say(f"{app.compose_file}: services " + ", ".join(
            f"{s.name} ({s.role.value}{f', {s.replicas} replicas' if s.replicas > 1 else ''})"
            for s in ctx.project.services))
    else:
        ctx.project = single_service(app.dockerfile, app.replicas)
    # Ceilings are checked again here: a Compose file's containers are known only now, and the
    # administrator may have lowered a ceiling since the app's limits were set (not again past
    # verify). What the release starts with is recorded: its owner's totals count it from now.
    if not quiet and (problem := lifecycle.reserve_release(ctx.deployment,
                                                          sum(s.replicas for s in ctx.project.services))):
        raise PhaseFailed(ctx.deployment.phase, problem)
    if not quiet:  # for whatever stops its containers later, a reconcile too (engine/hooks.py)
        ctx.save(encrypted_pre_stop=Deployment.sealed_pre_stop(hooks.recorded_pre_stop(ctx.project)))
    reasons = ctx.project.web.recreate_reasons()
    if reasons and not ctx.recreate:
        ctx.recreate = True
        say(f"Recreate instead of zero-downtime: service {ctx.project.web.name}: {'; '.join(reasons)}")


def redeploy_images(ctx: DeploymentContext) -> dict[str, str]:
    """The images of the release redeployed, one per service of its compose file."""
    deployment = ctx.deployment
    images = {service.name: service.image for service in deployment.redeploy_of.services}
    images[ctx.project.web.name] = deployment.image
    images.update({name: pinned["pinned"] for name, pinned in deployment.redeploy_of.pinned_images.items()})
    missing = [spec.name for spec in ctx.project.services if spec.name not in images]
    if missing:
        raise daemon.RuntimeFailure(f"deployment #{deployment.redeploy_of_id} has no image of "
                                    f"{', '.join(missing)}; deploy its commit instead")
    return images
