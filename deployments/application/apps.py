"""An app's life: created, its settings and domains changed, its switches flipped, its keys
rotated, its environment set, deleted. Every value is checked first (app_checks.py,
domains.py), then all of it is written in one transaction: a refused change changes nothing."""
from dataclasses import dataclass, field

from django.db import transaction

from deployments import enqueue, masking, quotas
from deployments.application import app_checks, domains as app_domains
from deployments.application.app_settings import SETTINGS_FIELDS, SWITCHES, AppSpec
from deployments.application.errors import InvalidInput
from deployments.audit import Actor, record
from deployments.engine import lifecycle
from deployments.masking import without_password
from deployments.models import App, Domain, EnvVar


@dataclass(frozen=True)
class AppChanges:
    """What an update asks for; what it leaves out stays as it is. env: {KEY: value} sets,
    {KEY: None} removes; domains: the app's whole list."""
    settings: dict = field(default_factory=dict)
    domains: list[str] | None = None
    env: dict[str, str | None] = field(default_factory=dict)
    zero_downtime: bool | None = None
    auto_deploy: bool | None = None

    @property
    def switches(self) -> dict[str, bool]:
        return {name: getattr(self, name) for name in SWITCHES if getattr(self, name) is not None}


@dataclass(frozen=True)
class _Hosts:
    """The app's domains before an update and after it."""
    current: set[str]
    wanted: list[str]


def create_app(spec: AppSpec, *, actor: Actor, owner=None) -> App:
    """The app is owned by `owner`, or else by whoever creates it."""
    hosts = app_domains.unique_hosts(spec.domains)
    app = App(name=spec.name, owner=owner or actor.user, repo_url=spec.repo_url, repo_private_allowed=actor.trusted,
              zero_downtime=spec.zero_downtime, **spec.settings)
    app.new_deploy_key()
    errors = (app_checks.field_errors(app) | app_domains.new_domain_errors(hosts, owner=app.owner)
              | app_domains.count_errors(hosts) | app_checks.env_errors(spec.env))
    if not errors:
        errors = (quotas.new_app_errors(app.owner) if app.owner is not None else {}) | quotas.settings_errors(app)
    if "repo_url" not in errors:
        errors |= app_checks.repo_access_errors(spec.repo_url, actor)
    if not errors:
        errors = (app_checks.remote_errors(app) or app_checks.compose_errors(app, spec.env)
                  or app_checks.haproxy_errors(app, hosts))
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        if errors := app_checks.totals_errors_locked(app, None):
            raise InvalidInput(errors)
        app.save()
        Domain.objects.bulk_create(Domain(app=app, hostname=h) for h in hosts)
        EnvVar.objects.bulk_create(EnvVar(app=app, key=k, value=v) for k, v in spec.env.items())
        record(actor, "app.create", app, f"from {without_password(app.repo_url)} ({app.branch})")
        enqueue.request_certificate(app)
        enqueue.send_apply_routing()
    return app


def update_app(app: App, changes: AppChanges, *, actor: Actor) -> App:
    """Validate everything first, then write it all in one transaction and refresh routing.
    Settings take effect at the next deployment; domains at once."""
    before = App.objects.values(*SETTINGS_FIELDS).get(pk=app.pk)  # `app` may hold a form's values already
    _assign_settings(app, changes.settings, before=before, actor=actor)
    current = set(app.domains.values_list("hostname", flat=True))
    hosts = _Hosts(current, app_domains.unique_hosts(changes.domains) if changes.domains is not None
                   else sorted(current))
    if errors := _update_errors(app, changes, before=before, hosts=hosts, actor=actor):
        app.refresh_from_db()
        raise InvalidInput(errors)
    with transaction.atomic():
        if errors := app_checks.totals_errors_locked(app, before):
            app.refresh_from_db()
            raise InvalidInput(errors)
        _write_update(app, changes, hosts)
        if summary := _change_summary(app, changes, before=before, hosts=hosts):
            record(actor, "app.settings", app, summary)
        enqueue.request_certificate(app)
        enqueue.send_apply_routing()
    return app


def _assign_settings(app: App, settings: dict, *, before: dict, actor: Actor) -> None:
    if masking.is_masked_form_of(settings.get("repo_url", ""), before["repo_url"]):
        settings = {**settings, "repo_url": before["repo_url"]}  # the masked URL sent back: unchanged
    for name in SETTINGS_FIELDS:
        if name in settings:
            setattr(app, name, settings[name])
    if app.repo_url != before["repo_url"]:
        app.repo_private_allowed = actor.trusted


def _update_errors(app: App, changes: AppChanges, *, before: dict, hosts: _Hosts, actor: Actor) -> dict:
    """Cheap checks first; git, the compose file and HAProxy only once those pass."""
    errors = (app_checks.field_errors(app)
              | app_domains.new_domain_errors([h for h in hosts.wanted if h not in hosts.current], owner=app.owner)
              | app_domains.count_errors(hosts.wanted) | app_checks.env_errors(changes.env))
    if not errors:
        errors = quotas.settings_errors(app, before)
    repo_changed = app.repo_url != before["repo_url"]
    if repo_changed and "repo_url" not in errors:
        errors |= app_checks.repo_access_errors(app.repo_url, actor)
    if not errors and (repo_changed or app.branch != before["branch"]):
        errors = app_checks.remote_errors(app)
    if not errors and any(getattr(app, name) != before[name] for name in app_checks.COMPOSE_SOURCE):
        set_env = {k: v for k, v in changes.env.items() if v is not None}
        errors = app_checks.compose_errors(app, {**app.environment(), **set_env})
    if not errors:
        errors = app_checks.haproxy_errors(app, hosts.wanted)
    return errors


def _write_update(app: App, changes: AppChanges, hosts: _Hosts) -> None:
    # Only these columns: live_colour and live_deployment belong to the deploy engine,
    # and this instance may have been loaded before a switch.
    app.save(update_fields=[*SETTINGS_FIELDS, "repo_private_allowed"])
    if changes.switches:
        App.objects.filter(pk=app.pk).update(**changes.switches)
    app.domains.exclude(hostname__in=hosts.wanted).delete()
    Domain.objects.bulk_create(Domain(app=app, hostname=h) for h in hosts.wanted if h not in hosts.current)
    for key, value in changes.env.items():
        _write_env(app, key, value)


def _change_summary(app: App, changes: AppChanges, *, before: dict, hosts: _Hosts) -> str:
    """What an update changed, for the audit log: field names and hosts, env var names only."""
    parts = [f"{name}={without_password(str(getattr(app, name)))}" for name in SETTINGS_FIELDS
             if getattr(app, name) != before[name]]
    parts += [f"{name}={value}" for name, value in changes.switches.items()]
    parts += [f"+domain {host}" for host in hosts.wanted if host not in hosts.current]
    parts += [f"-domain {host}" for host in sorted(hosts.current - set(hosts.wanted))]
    parts += [f"{'-' if value is None else ''}env {key}" for key, value in changes.env.items()]
    return "; ".join(parts)


def delete_app(name: str, *, actor: Actor) -> bool:
    """Delete the app's rows; a worker then removes its routing, containers, network, images and
    clone cache. False if unknown."""
    app = App.objects.filter(name=name).first()
    if app is None:
        return False
    with transaction.atomic():
        record(actor, "app.delete", app)
        lifecycle.cancel_all_of_app(app.pk, "the app was deleted")
        deployment_ids, app_id = sorted(app.deployments.values_list("id", flat=True)), app.pk
        app.delete()  # clears app.pk
        enqueue.send_apply_routing()
        enqueue.send_remove_app_resources(app, app_id, deployment_ids)
    return True


def set_switch(app: App, *, name: str, enabled: bool, actor: Actor) -> None:
    """Turn one of the app's SWITCHES on or off (takes effect at the next deploy or push)."""
    if name not in SWITCHES:
        raise ValueError(f"{name!r} is not a switch")
    with transaction.atomic():
        App.objects.filter(pk=app.pk).update(**{name: enabled})
        record(actor, "app.settings", app, f"{name}={enabled}")


def rotate_deploy_key(app: App, *, actor: Actor) -> str:
    """A new deploy key pair for the app; the old one stops working here at once (remove it at
    the git host). Returns the new public key."""
    with transaction.atomic():
        app.new_deploy_key()
        app.save(update_fields=["deploy_public_key", "encrypted_deploy_key"])
        record(actor, "deploy_key.rotate", app, app.deploy_public_key.split()[1][:16] + "…")
    return app.deploy_public_key


def rotate_webhook_secret(app: App, *, actor: Actor) -> str:
    with transaction.atomic():
        secret = app.rotate_webhook_secret()
        record(actor, "webhook.rotate", app)
    return secret


def set_env(app: App, *, key: str, value: str, actor: Actor) -> None:
    if errors := app_checks.env_errors({key: value}):
        raise InvalidInput(errors)
    with transaction.atomic():
        _write_env(app, key, value)
        record(actor, "env.set", app, key)


def delete_env(app: App, *, key: str, actor: Actor) -> None:
    with transaction.atomic():
        if EnvVar.objects.filter(app=app, key=key).exists():
            _write_env(app, key, None)
            record(actor, "env.delete", app, key)


def _write_env(app: App, key: str, value: str | None) -> None:
    if value is None:
        EnvVar.objects.filter(app=app, key=key).delete()
        return
    var = EnvVar.objects.filter(app=app, key=key).first() or EnvVar(app=app, key=key)
    var.value = value
    var.save()
