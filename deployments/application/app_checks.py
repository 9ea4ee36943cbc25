"""The checks an app's values pass before any is written, shared by creating and updating it:
the model's own validation, environment keys, the repository (who may use its address, whether
the branch exists), a Compose app's file, the owner's quotas and HAProxy's verdict. Each returns
{field: [messages]}, empty when the values pass."""
from contextlib import ExitStack

from django.core.exceptions import ValidationError

from deployments import quotas
from deployments.audit import Actor
from deployments.compose import file as compose
from deployments.compose.for_app import load_for_app
from deployments.compose.project import ComposeError
from deployments.git import repo_files, repo_policy, source
from deployments.haproxy import process as haproxy_process
from deployments.masking import without_password
from deployments.models import App
from deployments.traffic import checks
from deployments.validators import validate_env_key

COMPOSE_SOURCE = ("compose_file", "repo_url", "branch", "web_service", "compose_profiles")  # a change reads the compose file again


def field_errors(app: App) -> dict[str, list[str]]:
    try:
        app.full_clean(exclude=["owner", "live_deployment"])
    except ValidationError as error:
        return error.message_dict
    return {}


def env_errors(env: dict[str, str | None]) -> dict[str, list[str]]:
    """The keys to be set (a None value removes its key and is not checked)."""
    messages = []
    for key in (key for key, value in env.items() if value is not None):
        try:
            validate_env_key(key)
        except ValidationError as error:
            messages += error.messages
    return {"env": messages} if messages else {}


def repo_access_errors(repo_url: str, actor: Actor) -> dict[str, list[str]]:
    """A repository on this machine (a path, file://) or on a private address would let a user
    read what Switchyard itself can reach: only someone with the machine's rights may
    (git/repo_policy.py; checked again at every fetch)."""
    if actor.trusted:
        return {}
    try:
        repo_policy.public_address(repo_policy.remote(repo_url))
    except repo_policy.Unresolvable:
        return {}  # reading the branches says so, as git puts it
    except repo_policy.Refused as error:
        return {"repo_url": [f"{without_password(repo_url)!r}: {error}"]}
    return {}


def totals_errors_locked(app: App, before: dict | None) -> dict[str, list[str]]:
    """The owner's app count and totals once more, under the owner's lock, in the transaction
    that then writes: checked only before (with git and HAProxy in between), two creates or
    settings changes at once would each count without the other. `before`: the app's settings
    before an update; None for a new app."""
    if app.owner is None:
        return {}
    if before is not None:
        # The app's row before the owner's, in the order claim takes them: the other order
        # deadlocks on PostgreSQL when a settings save meets a deploy of the same app.
        list(App.objects.select_for_update().filter(pk=app.pk).values_list("pk", flat=True))
    quotas.lock_owner(app.owner.pk)
    return (quotas.new_app_errors(app.owner) if before is None else {}) | quotas.settings_errors(app, before)


def haproxy_errors(app: App, domains: list[str]) -> dict[str, list[str]]:
    """HAProxy's own verdict (`haproxy -c`: 30-70 ms) on the config these values make, before any is saved."""
    try:
        checks.check_app_config(app, domains)
    except haproxy_process.HAProxyConfigInvalid as error:
        return {"haproxy": [f"HAProxy refuses the configuration these settings make: {error}"]}
    return {}


def compose_errors(app: App, environment: dict[str, str]) -> dict[str, list[str]]:
    """A Compose app's file, read at the branch's tip and checked as a deployment will check it
    (with the files of the repository it names, read there too): what it cannot deploy is refused
    now, not at the first deploy (which checks it again at its commit)."""
    if not app.compose_file:
        return {}
    try:
        text = source.read_remote_file(app.repo_url, app.branch, app.compose_file, compose.MAX_FILE_BYTES,
                                       _access(app))
        with ExitStack() as cleanup:
            tip = repo_files.BranchTip(app.repo_url, app.branch, _access(app), cleanup)
            project = load_for_app(app, text, environment, read_file=tip.read_file)
    except source.SourceError as error:
        return {"compose_file": [str(error)]}
    except ComposeError as error:
        return {"compose_file": [f"{app.compose_file}: {problem}" for problem in error.problems]}
    if problem := quotas.release_problem(app, sum(service.replicas for service in project.services)):
        return {"compose_file": [f"{app.compose_file}: {problem}"]}
    return {}


def remote_errors(app: App) -> dict[str, list[str]]:
    """The branch exists, read with the app's own deploy key (and, for a tenant's URL, from the
    public address that was checked)."""
    try:
        branches = source.remote_branches(app.repo_url, _access(app))
    except source.SourceError as error:
        return {"repo_url": [str(error)]}
    if app.branch not in branches:
        known = ", ".join(branches[:10]) or "none"
        return {"branch": [f"branch {app.branch!r} does not exist in the repository (branches: {known})"]}
    return {}


def _access(app: App) -> source.Access:
    return source.Access(private_key=app.deploy_private_key, allow_private=app.repo_private_allowed)
