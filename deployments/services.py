"""What the CLI, the panel and the API do to apps: create, delete, deploy.

Input is validated completely before anything is written, so bad input changes nothing.
"""
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from deployments import masking, quotas, tasks, webhooks
from deployments.audit import Actor, Via, record
from deployments.compose import project as compose
from deployments.engine import certificates, lifecycle, queue, repo_policy, source
from deployments.haproxy import process as haproxy_process, tls
from deployments.masking import without_password
from deployments.models import ApiToken, App, Certificate, Deployment, Domain, EnvVar, Membership, WebhookDelivery
from deployments.traffic import checks
from deployments.validators import validate_domain, validate_env_key, validate_git_ref


class InvalidInput(Exception):
    """Bad input; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()))


class TooSoon(InvalidInput):
    """Asked again before the administrator's minimum interval passed (API: 429)."""


@dataclass
class AppSpec:
    name: str
    repo_url: str
    branch: str = "main"
    dockerfile: str = "Dockerfile"
    compose_file: str = ""  # a Compose app: the compose file in the repository
    web_service: str = "web"  # ...and the service its domains go to
    port: int = 8000
    health_path: str = "/health"
    domains: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    zero_downtime: bool = True
    settings: dict = field(default_factory=dict)  # more of SETTINGS_FIELDS (e.g. limits); model defaults otherwise


def create_app(spec: AppSpec, actor: Actor, owner=None) -> App:
    """The app is owned by `owner`, or else by whoever creates it."""
    spec.domains = _unique_hosts(spec.domains)
    app = App(name=spec.name, owner=owner or actor.user, repo_url=spec.repo_url, branch=spec.branch,
              dockerfile=spec.dockerfile, compose_file=spec.compose_file, web_service=spec.web_service, port=spec.port,
              health_path=spec.health_path, replicas=spec.replicas,
              zero_downtime=spec.zero_downtime, repo_private_allowed=actor.trusted, **spec.settings)
    app.new_deploy_key()
    errors = (_field_errors(app) | _domain_errors(spec.domains, app.owner) | _domain_count_errors(spec.domains)
              | _env_errors(spec.env))
    if not errors:
        errors = (quotas.new_app_errors(app.owner) if app.owner is not None else {}) | quotas.settings_errors(app)
    if "repo_url" not in errors:
        errors |= _repo_access_errors(spec.repo_url, actor)
    if not errors:
        errors = _remote_errors(app) or _compose_errors(app, spec.env) or _haproxy_errors(app, spec.domains)
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        if errors := _totals_errors_locked(app, None):
            raise InvalidInput(errors)
        app.save()
        Domain.objects.bulk_create(Domain(app=app, hostname=h.lower()) for h in spec.domains)
        EnvVar.objects.bulk_create(EnvVar(app=app, key=k, value=v) for k, v in spec.env.items())
        record(actor, "app.create", app, f"from {without_password(app.repo_url)} ({app.branch})")
        tasks.request_certificate(app)
        tasks.send_apply_routing()
    return app


def delete_app(name: str, actor: Actor) -> bool:
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
        tasks.send_apply_routing()
        tasks.send_remove_app_resources(app, app_id, deployment_ids)
    return True


class NotPossible(Exception):
    """The action cannot be done in the current state; the message says why."""


def cancel(deployment: Deployment, actor: Actor) -> Deployment:
    """Queued: ends at once. Running before the switch: the pipeline stops, removes what it
    started and ends `cancelled`. After the switch it is too late (the new release serves)."""
    outcome = lifecycle.request_cancel(deployment.pk, actor.name)
    if outcome in (lifecycle.CancelOutcome.CANCELLED, lifecycle.CancelOutcome.REQUESTED):
        return _recorded(actor, "deployment.cancel", deployment)
    if outcome == lifecycle.CancelOutcome.TOO_LATE:
        raise NotPossible("Too late to cancel: traffic has moved to the new release. Redeploy the previous one instead.")
    deployment.refresh_from_db()
    raise NotPossible(f"Deployment #{deployment.pk} already ended ({deployment.state}).")


def promote(deployment: Deployment, actor: Actor) -> Deployment:
    """Skip the rest of a canary (all traffic to the new release now) or of the watch window
    (the old release drains and retires now)."""
    if lifecycle.request_promote(deployment.pk, actor.name):
        return _recorded(actor, "deployment.promote", deployment)
    deployment.refresh_from_db()
    raise NotPossible(f"Deployment #{deployment.pk} is not in a canary or being watched ({_where(deployment)}).")


def abort(deployment: Deployment, actor: Actor) -> Deployment:
    """End a canary: all traffic back on the old release at once, the new one removed."""
    if lifecycle.request_abort(deployment.pk, actor.name):
        return _recorded(actor, "deployment.abort", deployment)
    deployment.refresh_from_db()
    raise NotPossible(f"Deployment #{deployment.pk} is not in a canary ({_where(deployment)}); "
                      "cancel it before the switch, or redeploy the previous release after it.")


def _where(deployment: Deployment) -> str:
    return f"it is {deployment.state}" + (f", {deployment.phase}" if deployment.state == Deployment.State.RUNNING else "")


def _recorded(actor: Actor, action: str, deployment: Deployment) -> Deployment:
    record(actor, action, deployment.app, f"deployment #{deployment.pk}")
    return Deployment.objects.get(pk=deployment.pk)


# How a deployment records where it came from (its `trigger`), by the channel of the actor.
TRIGGER_OF = {Via.PANEL: Deployment.Trigger.UI, Via.ADMIN: Deployment.Trigger.UI, Via.API: Deployment.Trigger.API,
              Via.CLI: Deployment.Trigger.CLI, Via.WEBHOOK: Deployment.Trigger.WEBHOOK}


def redeploy(source: Deployment, actor: Actor) -> Deployment:
    """Roll back (or forward) to a kept release: its image again, without fetch or build."""
    if source.state != Deployment.State.SUCCEEDED or not source.image:
        raise NotPossible(f"Deployment #{source.pk} did not succeed; only successful releases can be redeployed.")
    if source.image not in source.app.kept_images():
        raise NotPossible(f"The image {source.image} is no longer kept (only the last "
                          f"{settings.SWITCHYARD['KEEP_IMAGES']} are); deploy its commit instead.")
    with transaction.atomic():
        deployment = queue.enqueue(source.app, source.ref, TRIGGER_OF[actor.via], actor.name, redeploy_of=source)
        tasks.dispatch(deployment.id)
        record(actor, "deployment.redeploy", source.app, f"deployment #{deployment.pk} redeploys #{source.pk}")
    return deployment


def deploy(app: App, ref: str | None, actor: Actor) -> Deployment:
    ref = ref or app.branch
    try:
        validate_git_ref(ref)
    except ValidationError as error:
        raise InvalidInput({"ref": error.messages})
    with transaction.atomic():
        deployment = queue.enqueue(app, ref, TRIGGER_OF[actor.via], actor.name)
        tasks.dispatch(deployment.id)
        record(actor, "deploy", app, f"deployment #{deployment.pk} of {ref}")
    return deployment


def _field_errors(app: App) -> dict[str, list[str]]:
    try:
        app.full_clean(exclude=["owner", "live_deployment"])
    except ValidationError as error:
        return error.message_dict
    return {}


def _domain_count_errors(domains: list[str]) -> dict[str, list[str]]:
    """Each domain is an SNI filter on the app's crt-list line: too many and HAProxy refuses the line."""
    most = settings.SWITCHYARD["MAX_APP_DOMAINS"]
    if len(domains) <= most:
        return {}
    return {"domains": [f"an app has at most {most} domains (SWITCHYARD_MAX_APP_DOMAINS); this one would have "
                        f"{len(domains)}"]}


def _domain_errors(domains: list[str], owner) -> dict[str, list[str]]:
    messages = []
    for hostname in domains:
        try:
            validate_domain(hostname.lower())
        except ValidationError as error:
            messages += error.messages
            continue
        messages += _domain_claim_errors(hostname.lower(), owner)
    return {"domains": messages} if messages else {}


def _domain_claim_errors(host: str, owner) -> list[str]:
    """A name is refused if it is the panel's (or under it), any app's already, or under or above
    another owner's domain: a parent domain can set cookies for its children and a child can be
    mistaken for its parent's service, so one name tree belongs to one owner."""
    panel = settings.SWITCHYARD["PANEL_DOMAIN"]
    if panel and (host == panel or host.endswith(f".{panel}")):
        return [f"{host!r} is the panel's own domain or a name under it (SWITCHYARD_PANEL_DOMAIN); give the app another"]
    if Domain.objects.filter(hostname=host).exists():
        return [f"{host!r} is already a domain of another app"]
    labels = host.split(".")
    parents = [".".join(labels[i:]) for i in range(1, len(labels))]
    others = Domain.objects.exclude(app__owner=owner)  # apps without an owner are the administrator's
    clash = (others.filter(hostname__in=parents).values_list("hostname", flat=True).first()
             or others.filter(hostname__endswith=f".{host}").values_list("hostname", flat=True).first())
    if clash:
        return [f"{host!r} is under or above {clash!r}, a domain of another owner's app; use a name of your own"]
    return []


def _env_errors(env: dict[str, str]) -> dict[str, list[str]]:
    messages = []
    for key in env:
        try:
            validate_env_key(key)
        except ValidationError as error:
            messages += error.messages
    return {"env": messages} if messages else {}


def _repo_access_errors(repo_url: str, actor: Actor) -> dict[str, list[str]]:
    """A repository on this machine (a path, file://) or on a private address would let a user
    read what Switchyard itself can reach: only someone with the machine's rights may
    (engine/repo_policy.py; checked again at every fetch)."""
    if actor.trusted:
        return {}
    try:
        repo_policy.public_address(repo_policy.remote(repo_url))
    except repo_policy.Unresolvable:
        return {}  # reading the branches says so, as git puts it
    except repo_policy.Refused as error:
        return {"repo_url": [f"{without_password(repo_url)!r}: {error}"]}
    return {}


def _totals_errors_locked(app: App, before: dict | None) -> dict[str, list[str]]:
    """The owner's app count and totals once more, under the owner's lock, in the transaction
    that then writes: checked only before (with git and HAProxy in between), two creates or
    settings changes at once would each count without the other."""
    if app.owner is None:
        return {}
    if before is not None:
        # The app's row before the owner's, in the order claim takes them: the other order
        # deadlocks on PostgreSQL when a settings save meets a deploy of the same app.
        list(App.objects.select_for_update().filter(pk=app.pk).values_list("pk", flat=True))
    quotas.lock_owner(app.owner.pk)
    return (quotas.new_app_errors(app.owner) if before is None else {}) | quotas.settings_errors(app, before)


def _haproxy_errors(app: App, domains: list[str]) -> dict[str, list[str]]:
    """HAProxy's own verdict (`haproxy -c`: 30-70 ms) on the config these values make, before any is saved."""
    try:
        checks.check_app_config(app, domains)
    except haproxy_process.HAProxyConfigInvalid as error:
        return {"haproxy": [f"HAProxy refuses the configuration these settings make: {error}"]}
    return {}


COMPOSE_SOURCE = ("compose_file", "repo_url", "branch", "web_service")  # a change reads the compose file again


def _compose_errors(app: App, environment: dict[str, str]) -> dict[str, list[str]]:
    """A Compose app's file, read at the branch's tip and checked as a deployment will check it:
    what it cannot deploy is refused now, not at the first deploy (which checks it again at its commit)."""
    if not app.compose_file:
        return {}
    try:
        text = source.read_remote_file(app.repo_url, app.branch, app.compose_file, compose.MAX_FILE_BYTES,
                                       _access(app))
        project = compose.load(text, app.web_service, environment, default_replicas=app.replicas)
    except source.SourceError as error:
        return {"compose_file": [str(error)]}
    except compose.ComposeError as error:
        return {"compose_file": [f"{app.compose_file}: {problem}" for problem in error.problems]}
    if problem := quotas.release_problem(app, sum(service.replicas for service in project.services)):
        return {"compose_file": [f"{app.compose_file}: {problem}"]}
    return {}


def _access(app: App) -> source.Access:
    return source.Access(private_key=app.deploy_private_key, allow_private=app.repo_private_allowed)


def _remote_errors(app: App) -> dict[str, list[str]]:
    """The branch exists, read with the app's own deploy key (and, for a tenant's URL, from the
    public address that was checked)."""
    branch = app.branch
    access = _access(app)
    try:
        branches = source.remote_branches(app.repo_url, access)
    except source.SourceError as error:
        return {"repo_url": [str(error)]}
    if branch not in branches:
        known = ", ".join(branches[:10]) or "none"
        return {"branch": [f"branch {branch!r} does not exist in the repository (branches: {known})"]}
    return {}


# The app's settings a user may change, in the order the panel shows them. The settings
# form, the API's schemas and the CLI's options are all derived from this list.
SETTINGS_FIELDS = ("repo_url", "branch", "dockerfile", "compose_file", "web_service", "port", "health_path",
                   "health_status", "health_timeout", "health_deadline", "health_host", "replicas", "stop_timeout",
                   "watch_window",
                   "watch_error_percent", "watch_min_requests", "canary_steps", "canary_step_seconds",
                   "canary_error_margin", "canary_latency_margin", "canary_min_requests", "release_command",
                   "memory_limit_mb", "cpu_limit", "pids_limit",
                   "capabilities", "build_timeout", "https_redirect", "hsts")


def update_app(app: App, actor: Actor, settings: dict, domains: list[str] | None = None, env: dict | None = None,
               zero_downtime: bool | None = None, auto_deploy: bool | None = None) -> App:
    """Validate everything first, then write it all in one transaction and refresh routing:
    a refused change changes nothing. env: {KEY: value} sets, {KEY: None} removes.
    Settings take effect at the next deployment; domains at once."""
    before = App.objects.values(*SETTINGS_FIELDS).get(pk=app.pk)  # `app` may hold a form's values already
    if masking.is_masked_form_of(settings.get("repo_url", ""), before["repo_url"]):
        settings = {**settings, "repo_url": before["repo_url"]}  # the masked URL sent back: unchanged
    for name in SETTINGS_FIELDS:
        if name in settings:
            setattr(app, name, settings[name])
    if app.repo_url != before["repo_url"]:
        app.repo_private_allowed = actor.trusted
    current = set(app.domains.values_list("hostname", flat=True))
    wanted = _unique_hosts(domains) if domains is not None else sorted(current)
    errors = (_field_errors(app) | _domain_errors([h for h in wanted if h not in current], app.owner)
              | _domain_count_errors(wanted)
              | _env_errors({k: v for k, v in (env or {}).items() if v is not None}))
    if not errors:
        errors = quotas.settings_errors(app, before)
    if app.repo_url != before["repo_url"] and "repo_url" not in errors:
        errors |= _repo_access_errors(app.repo_url, actor)
    if not errors and (app.repo_url != before["repo_url"] or app.branch != before["branch"]):
        errors = _remote_errors(app)
    if not errors and any(getattr(app, name) != before[name] for name in COMPOSE_SOURCE):
        errors = _compose_errors(app, {**app.environment(), **{k: v for k, v in (env or {}).items() if v is not None}})
    if not errors:
        errors = _haproxy_errors(app, wanted)
    if errors:
        app.refresh_from_db()
        raise InvalidInput(errors)
    switches = {k: v for k, v in (("zero_downtime", zero_downtime), ("auto_deploy", auto_deploy)) if v is not None}
    with transaction.atomic():
        if errors := _totals_errors_locked(app, before):
            app.refresh_from_db()
            raise InvalidInput(errors)
        # Only these columns: live_colour and live_deployment belong to the deploy engine,
        # and this instance may have been loaded before a switch.
        app.save(update_fields=[*SETTINGS_FIELDS, "repo_private_allowed"])
        if switches:
            App.objects.filter(pk=app.pk).update(**switches)
        app.domains.exclude(hostname__in=wanted).delete()
        Domain.objects.bulk_create(Domain(app=app, hostname=h) for h in wanted if h not in current)
        for key, value in (env or {}).items():
            _write_env(app, key, value)
        changes = _change_summary(app, before, current, wanted, env or {}, switches)
        if changes:
            record(actor, "app.settings", app, changes)
        tasks.request_certificate(app)
        tasks.send_apply_routing()
    return app


def _change_summary(app: App, before: dict, current: set[str], wanted: list[str], env: dict, switches: dict) -> str:
    """What an update changed, for the audit log: field names and hosts, env var names only."""
    parts = [f"{name}={without_password(str(getattr(app, name)))}" for name in SETTINGS_FIELDS
             if getattr(app, name) != before[name]]
    parts += [f"{name}={value}" for name, value in switches.items()]
    parts += [f"+domain {host}" for host in wanted if host not in current]
    parts += [f"-domain {host}" for host in sorted(current - set(wanted))]
    parts += [f"{'-' if value is None else ''}env {key}" for key, value in env.items()]
    return "; ".join(parts)


def _unique_hosts(domains: list[str]) -> list[str]:
    return list(dict.fromkeys(h.lower() for h in domains))


def _write_env(app: App, key: str, value: str | None) -> None:
    if value is None:
        EnvVar.objects.filter(app=app, key=key).delete()
        return
    var = EnvVar.objects.filter(app=app, key=key).first() or EnvVar(app=app, key=key)
    var.value = value
    var.save()


SWITCHES = ("zero_downtime", "auto_deploy")


def set_switch(app: App, field: str, enabled: bool, actor: Actor) -> None:
    """Turn one of the app's SWITCHES on or off (takes effect at the next deploy or push)."""
    if field not in SWITCHES:
        raise ValueError(f"{field!r} is not a switch")
    with transaction.atomic():
        App.objects.filter(pk=app.pk).update(**{field: enabled})
        record(actor, "app.settings", app, f"{field}={enabled}")


def upload_certificate(app: App, actor: Actor, chain_pem: str, key_pem: str) -> Certificate:
    """Serve the app's domains with a person's own certificate instead of ACME's; the worker puts
    it into HAProxy. Refused (nothing changes) with what to fix if it cannot be served."""
    if len(chain_pem) > tls.MAX_PEM_BYTES or len(key_pem) > tls.MAX_PEM_BYTES:  # before any parsing
        raise InvalidInput({"certificate": [f"a certificate or key is at most {tls.MAX_PEM_BYTES // 1024} KiB of PEM"]})
    interval = settings.SWITCHYARD["CERTIFICATE_UPLOAD_INTERVAL"]
    if cache.get(certificate_upload_key(app)):  # each stored upload may reload HAProxy (a long chain) for every app
        raise TooSoon({"certificate": [f"one certificate upload per app every {interval} s "
                                       "(SWITCHYARD_CERTIFICATE_UPLOAD_INTERVAL); try again shortly"]})
    try:
        verdict_key = certificates.check_upload(app, chain_pem, key_pem)  # runs haproxy -c: not inside the transaction
    except tls.InvalidCertificate as error:
        raise InvalidInput({"certificate": [str(error)]}) from None
    with transaction.atomic():
        certificate = certificates.upload(app, chain_pem, key_pem, verdict_key)
        record(actor, "certificate.upload", app, f"for {', '.join(certificate.domains)}, until {certificate.not_after:%Y-%m-%d}")
        tasks.send_apply_certificates()
    if interval:
        cache.set(certificate_upload_key(app), 1, timeout=interval)
    return certificate


def certificate_upload_key(app: App) -> str:
    return f"certificate-upload:{app.pk}"


def use_acme_certificate(app: App, actor: Actor) -> bool:
    """Drop an uploaded certificate: ACME issues one for the app's domains. False if none was uploaded."""
    with transaction.atomic():
        if not certificates.use_acme(app):
            return False
        record(actor, "certificate.acme", app, "the uploaded certificate is replaced by one from ACME")
        tasks.request_certificate(app)
    return True


def set_env(app: App, key: str, value: str, actor: Actor) -> None:
    errors = _env_errors({key: value})
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        _write_env(app, key, value)
        record(actor, "env.set", app, key)


def delete_env(app: App, key: str, actor: Actor) -> None:
    with transaction.atomic():
        if EnvVar.objects.filter(app=app, key=key).exists():
            _write_env(app, key, None)
            record(actor, "env.delete", app, key)


def set_member(app: App, username: str, role: str, actor: Actor) -> Membership:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInput({"username": [f"there is no user {username!r}"]})
    if role not in Membership.Role.values:
        raise InvalidInput({"role": [f"{role!r} is not a role; use viewer, deployer or admin"]})
    if user.pk == app.owner_id:
        raise InvalidInput({"username": [f"{username} owns the app and has every right already"]})
    with transaction.atomic():
        membership, _ = Membership.objects.update_or_create(app=app, user=user, defaults={"role": role})
        record(actor, "member.set", app, f"{username} as {role}")
    return membership


def remove_member(app: App, user_id: int, actor: Actor) -> None:
    with transaction.atomic():
        membership = Membership.objects.select_related("user").filter(app=app, user_id=user_id).first()
        if membership is not None:
            membership.delete()
            record(actor, "member.remove", app, membership.user.get_username())


def rotate_deploy_key(app: App, actor: Actor) -> str:
    """A new deploy key pair for the app; the old one stops working here at once (remove it at
    the git host). Returns the new public key."""
    with transaction.atomic():
        app.new_deploy_key()
        app.save(update_fields=["deploy_public_key", "encrypted_deploy_key"])
        record(actor, "deploy_key.rotate", app, app.deploy_public_key.split()[1][:16] + "…")
    return app.deploy_public_key


def rotate_webhook_secret(app: App, actor: Actor) -> str:
    with transaction.atomic():
        secret = app.rotate_webhook_secret()
        record(actor, "webhook.rotate", app)
    return secret


def create_token(actor: Actor, name: str) -> str:
    """A new API token of the actor's user; the token itself is returned once, never stored."""
    with transaction.atomic():
        token, plain = ApiToken.issue(actor.user, name)
        record(actor, "token.create", detail=f"{token.name} ({token.prefix}…)")
    return plain


def revoke_token(actor: Actor, token_id: int) -> bool:
    with transaction.atomic():
        token = actor.user.api_tokens.filter(pk=token_id).first()
        if token is None:
            return False
        token.delete()
        record(actor, "token.revoke", detail=f"{token.name} ({token.prefix}…)")
    return True


def receive_webhook(app: App, headers, body: bytes, address: str | None = None,
                    within_budget: Callable[[], bool] = lambda: True) -> tuple[int, dict]:
    """Record a delivery and, for a push to the app's branch, queue exactly that commit.
    Returns (HTTP status, JSON body). Nothing is queued for any rejected or ignored delivery.
    A rejected one is first counted against the sender (`within_budget`): once over, 429 and
    nothing recorded. Verified deliveries are never counted, so a flood cannot hold them up."""
    provider_name = "unknown"
    try:
        provider = webhooks.identify(headers)
        provider_name = provider.name
        push = webhooks.read(provider, headers, body, app.webhook_secret)
    except webhooks.Rejected as rejection:
        if not within_budget():
            return 429, {"detail": "too many rejected deliveries from this address; try again in a minute"}
        _record_rejection(app, provider_name, rejection)
        return rejection.status, {"detail": rejection.detail}
    return _act_on_push(app, provider_name, push, Actor(user=None, via=Via.WEBHOOK, address=address))


def redeliver(delivery: WebhookDelivery, actor: Actor) -> tuple[int, dict]:
    """Act on a recorded push again (the duplicate check does not apply: a person asked)."""
    if not delivery.push:
        raise NotPossible("Only deliveries with a valid signature can be redelivered.")
    return _act_on_push(delivery.app, delivery.provider, webhooks.Push(**delivery.push), actor, redelivery_of=delivery)


def _act_on_push(app: App, provider: str, push: "webhooks.Push", actor: Actor,
                 redelivery_of=None) -> tuple[int, dict]:
    with transaction.atomic():
        App.objects.select_for_update().get(pk=app.pk)  # one delivery of an app at a time: no double queue
        app.refresh_from_db()
        reason = _ignore_reason(app, provider, push, check_duplicate=redelivery_of is None)
        if reason:
            _record_delivery(app, provider, push, 200, f"ignored: {reason}", redelivery_of=redelivery_of)
            return 200, {"detail": f"ignored: {reason}"}
        deployment = queue.enqueue(app, push.branch or app.branch, Deployment.Trigger.WEBHOOK,
                                   push.pusher or provider, commit_sha=push.sha or "")
        tasks.dispatch(deployment.id)
        result = f"queued deployment #{deployment.pk}" + (f" of {push.sha[:12]}" if push.sha else "")
        _record_delivery(app, provider, push, 202, result, deployment, redelivery_of)
        record(actor, "webhook.redeliver" if redelivery_of else "deploy", app,
               f"{provider} push by {push.pusher or 'unknown'}: {result}")
    return 202, {"detail": result, "deployment": deployment.pk}


def _ignore_reason(app: App, provider: str, push: "webhooks.Push", check_duplicate: bool) -> str:
    if check_duplicate and push.delivery_id and WebhookDelivery.objects.filter(
            app=app, provider=provider, delivery_id=push.delivery_id, status_code__lt=300).exists():
        return f"duplicate delivery {push.delivery_id}"
    if push.kind != "push":
        return {"ping": "ping", "tag": "tag push"}.get(push.kind, f"{push.event or 'unknown'} event")
    if push.sha == webhooks.ZERO_SHA:
        return "branch deleted"
    if push.branch is not None and push.branch != app.branch:
        return f"push to {push.branch}; {app.name} deploys {app.branch}"
    if not app.auto_deploy:
        return "auto-deploy is off"
    return ""


def _record_rejection(app: App, provider: str, rejection: "webhooks.Rejected") -> None:
    """Record it and keep only the app's newest WEBHOOK_REJECTIONS_KEPT rejections, so forged
    deliveries from any number of addresses cannot grow the table without bound."""
    _record_delivery(app, provider, None, rejection.status, f"rejected: {rejection.detail}")
    rejected = WebhookDelivery.objects.filter(app=app, status_code__gte=400)
    newest_dropped = rejected.order_by("-id").values_list("id", flat=True)[settings.WEBHOOK_REJECTIONS_KEPT:][:1]
    if newest_dropped:
        rejected.filter(id__lte=newest_dropped[0]).delete()


def _record_delivery(app: App, provider: str, push, status: int, result: str, deployment=None,
                     redelivery_of=None) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        app=app, provider=provider, event=(push.event if push else "")[:60],
        delivery_id=(push.delivery_id if push else "")[:100], status_code=status, result=result[:300],
        deployment=deployment, push=asdict(push) if push else None, redelivery_of=redelivery_of,
    )
