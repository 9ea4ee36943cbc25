"""What the pages show, computed once: the views render it and the WebSocket sends the
same step list, so the stepper has one source of truth."""
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from deployments import access
from deployments.compose.for_app import load_for_app, summary
from deployments.compose.project import ComposeError, Role
from deployments.models import App, Certificate, Deployment, Domain, Host
from deployments.templatetags.switchyard import app_url
from deployments.traffic import rows


def steps(deployment: Deployment) -> list[dict]:
    """One entry per phase: status pending|active|done|failed|cancelled|skipped, seconds."""
    result = []
    for phase in Deployment.PHASES:
        if phase == "canary" and not _shows_canary(deployment):
            continue
        result.append({"name": phase, "status": _step_status(deployment, phase),
                       "seconds": deployment.phase_duration(phase)})
    return result


def _step_status(deployment: Deployment, phase: str) -> str:
    """Only a running deployment has an active step. A phase left unfinished by one that ended
    (reconcile keeps a release whose worker died during its watch, `succeeded`) counts as done
    if the deployment succeeded, else as cut short (cancelled)."""
    times = deployment.phase_times.get(phase, {})
    if deployment.redeploy_of_id and phase in ("fetch", "build"):
        return "skipped"
    if phase == deployment.phase and deployment.state in (Deployment.State.FAILED, Deployment.State.ROLLED_BACK):
        return "failed"
    if phase == deployment.phase and deployment.state == Deployment.State.CANCELLED:
        return "cancelled"
    if "end" in times:
        return "done"
    if "start" in times and not deployment.is_final:
        return "active"
    if "start" in times:
        return "done" if deployment.state == Deployment.State.SUCCEEDED else "cancelled"
    return "skipped" if deployment.is_final else "pending"


def _shows_canary(deployment: Deployment) -> bool:
    """The canary step is shown once it ran, or while one may still run."""
    return "canary" in deployment.phase_times or (not deployment.is_final and bool(deployment.app.canary_steps))


def phase_services(deployment: Deployment) -> dict[str, str]:
    """For a Compose release: which services each phase works on, e.g. {"start": "store, web"}."""
    try:
        summary = compose_summary(deployment)
    except ComposeError:
        return {}
    if summary is None:
        return {}
    names = {role: summary["roles"].get(role.value, []) for role in Role}
    web, chain = names[Role.WEB], names[Role.CHAIN]
    every = [name for role in Role for name in names[role]]
    touched = {"fetch": every, "build": every, "start": names[Role.STATEFUL] + names[Role.JOB] + chain + web,
               "verify": web + chain, "canary": web, "switch": web, "watch": web, "drain": names[Role.WORKER] + web + chain}
    return {phase: ", ".join(services) for phase, services in touched.items()}


def compose_summary(deployment: Deployment) -> dict | None:
    """Deployment.compose_summary as the worker recorded it with the repository's files; for a
    release from before it was recorded, its stored file read again here (ComposeError if it
    cannot be), without the files an `include` names. None: not a Compose release."""
    if deployment.compose_summary:
        return deployment.compose_summary
    if not deployment.compose_text:
        return None
    return summary(load_for_app(deployment.app, deployment.compose_text, deployment.app.environment()))


def state_message(deployment: Deployment) -> dict:
    return {"type": "state", "state": deployment.state, "phase": deployment.phase, "error": deployment.error,
            "commit": deployment.short_sha,
            "watch_until": deployment.watch_until.isoformat() if deployment.watch_until and deployment.phase == "watch"
            and deployment.state == Deployment.State.RUNNING else None,
            "traffic": deployment.traffic_summary,
            "steps": steps(deployment), "cancellable": deployment.is_cancellable,
            "canary": deployment.canary or None,
            "in_canary": deployment.phase == "canary" and deployment.state == Deployment.State.RUNNING,
            "duration": deployment.duration(), "final": deployment.is_final}


class _RowLinks:
    """reverse() once per page instead of twice per row (a tenth of the page at 100 apps): each
    view reversed with a placeholder, then the value put in its place. App names (lowercase
    letters, digits, hyphens) and ids are what reverse() leaves as they are."""
    PLACEHOLDER = "0"

    def __init__(self) -> None:
        self._app = reverse("app", args=[self.PLACEHOLDER])
        self._deployment = reverse("deployment", args=[self.PLACEHOLDER])
        for reversed_ in (self._app, self._deployment):  # a route of another shape needs reverse() per row
            assert reversed_.endswith(f"/{self.PLACEHOLDER}/"), reversed_

    def app(self, name: str) -> str:
        return self._put(self._app, name)

    def deployment(self, pk: int) -> str:
        return self._put(self._deployment, pk)

    def _put(self, reversed_: str, value: str | int) -> str:
        """The last placeholder segment: a script prefix before it may hold one too."""
        before, _, after = reversed_.rpartition(f"/{self.PLACEHOLDER}/")
        return f"{before}/{value}/{after}"


class NewestDeployment(NamedTuple):
    """What the apps page shows of an app's newest deployment (no model instance per row)."""
    pk: int
    state: str

    @property
    def state_label(self) -> str:
        """As get_state_display(): the raw value for a state no longer among the choices."""
        return dict(Deployment.State.choices).get(self.state, self.state)


def app_rows(apps: list[App], health: dict[str, str]) -> list[dict]:
    """The apps page's rows, each text and link made here: at 100 apps, the template's lookups,
    filters and url tags, and a related manager per app for its domains, were most of the page."""
    newest, domains, now, links = newest_deployments(apps), own_hostnames(apps), timezone.now(), _RowLinks()
    return [_app_row(app, newest.get(app.pk), app.routed_hostnames(domains.get(app.pk, [])),
                     health.get(app.name, "unknown"), now, links) for app in apps]


def _app_row(app: App, last: NewestDeployment | None, hostnames: list[str], health: str, now: datetime,
             links: _RowLinks) -> dict:
    live = app.live_deployment
    return {"app": app, "last": last, "href": links.app(app.name),
            "hosts": [(app_url(host), host) for host in hostnames],
            "live": live is not None, "live_sha": live.short_sha if live else "",
            "live_age": timesince(live.finished_at, now) if live and live.finished_at else "",
            "last_href": links.deployment(last.pk) if last else "",
            "last_label": last.state_label if last else "",
            "health": health, "health_class": "none" if health == "no release" else health}


def own_hostnames(apps: list[App]) -> dict[int, list[str]]:
    """Each app's own domains by app id, in one query, in the order App.hostnames lists them."""
    found: dict[int, list[str]] = {}
    for app_id, hostname in Domain.objects.filter(app__in=apps).order_by("id").values_list("app_id", "hostname"):
        found.setdefault(app_id, []).append(hostname)
    return found


# What the apps page reads of an app, its live release and its newest deployment, and nothing
# else: at 100 apps, whole rows (some fifty columns, JSON decoded) were most of its database time.
# A field left out here and used on the page would cost a query per row (a test counts them).
LISTED_APP_FIELDS = ("name", "zero_downtime", "live_colour", "live_deployment",
                     "live_deployment__commit_sha", "live_deployment__finished_at", "live_deployment__containers")


def listed_apps(apps: QuerySet[App]) -> list[App]:
    """The apps page's apps, with what its rows and live_health read."""
    return list(apps.select_related("live_deployment").only(*LISTED_APP_FIELDS))


def newest_deployments(apps: list[App]) -> dict[int, NewestDeployment]:
    """Each app's newest deployment by app id, in two queries however many apps there are
    (one each made the apps page 104 queries at 100 apps)."""
    newest = Deployment.objects.filter(app=OuterRef("pk")).order_by("-created_at", "-id").values("id")[:1]
    ids = App.objects.filter(pk__in=[app.pk for app in apps]).annotate(newest=Subquery(newest))
    found = Deployment.objects.filter(pk__in=[i for i in ids.values_list("newest", flat=True) if i])
    return {app_id: NewestDeployment(pk, state) for pk, app_id, state in found.values_list("id", "app_id", "state")}


ROLE_TEXT = {"web": "routed: blue/green behind HAProxy", "stateful": "holds state: kept unless its definition changes",
             "worker": "replaced after the switch", "chain": "the web service's chain: blue/green with it",
             "job": "one-shot: runs to its end at each deploy"}


def compose(app: App) -> dict | None:
    """A Compose app's services as its live release runs them (states as reconcile last saw them),
    and why its web service is deployed by recreate, if it is, and what of the file was read but not done
    as written (ports not published, services left out by profiles), from the compose file last deployed."""
    if not app.compose_file:
        return None
    latest = app.live_deployment or app.deployments.exclude(compose_text="").first()
    rows = []
    if app.live_deployment:
        live = app.live_deployment
        rows.append({"name": app.web_service, "role": ROLE_TEXT["web"], "image": live.image,
                     "containers": [c.name for c in live.containers], "state": "live"})
        rows += [{"name": s.name, "role": ROLE_TEXT[s.role], "image": s.image, "state": s.state,
                  "containers": [c.name for c in s.containers]} for s in live.services]
        for row in rows:  # an image service runs a pinned digest: the reference it was pulled as, beside it
            row["pulled_as"] = (live.pinned_images.get(row["name"]) or {}).get("reference", "")
    recreate, problem, notices = [], "", ()
    if latest is not None and latest.compose_text:
        try:
            read = compose_summary(latest)
            recreate, notices = read["recreate"], read["notices"]
        except ComposeError as error:
            problem = str(error)
    return {"file": app.compose_file, "services": rows, "recreate": recreate, "problem": problem,
            "notices": notices}


def certificate(app: App) -> dict:
    """Where the app's HTTPS stands, for the app page and the API."""
    found = Certificate.objects.filter(app=app).first()
    if found is None:
        reason = ("" if app.public_domains() else "no public domain: NAME.localhost is served over plain HTTP only")
        return {"https_url": None, "source": None, "status": None, "domains": [], "issuer": "", "not_before": None,
                "not_after": None, "renewal_at": None, "error": reason, "next_attempt_at": None, "warning": ""}
    left_out = found.chain_pem and rows.certificate_problem(app, found)
    served = [host for host in app.hostnames() if not left_out and found.chain_pem and found.covers(host)]
    port = settings.SWITCHYARD["HTTPS_BIND"][1]
    return {
        "https_url": f"https://{served[0]}{'' if port == 443 else f':{port}'}/" if served else None,
        "source": found.source, "status": found.status, "domains": found.domains, "issuer": found.issuer,
        "not_before": found.not_before, "not_after": found.not_after,
        "renewal_at": found.renewal_due_at() if found.not_after and found.source == Certificate.Source.ACME else None,
        "error": found.error or ("" if settings.SWITCHYARD["ACME_DIRECTORY"] or found.source != Certificate.Source.ACME
                                 else "automatic HTTPS is off (SWITCHYARD_ACME_DIRECTORY=off)"),
        "next_attempt_at": found.next_attempt_at if found.status != Certificate.Status.VALID else None,
        "warning": (f"This certificate is not served: {left_out}. HTTPS to the app's domains gets the default "
                    "certificate meanwhile (plain HTTP still serves the app); upload a valid one"
                    f"{' or let ACME issue one' if found.source == Certificate.Source.UPLOADED else ''}."
                    if left_out else ""),
    }


def deployment_page(user, deployment: Deployment) -> dict:
    role = access.role_of(user, deployment.app)
    touched = phase_services(deployment)
    return {
        "deployment": deployment,
        "app": deployment.app,
        "steps": [{**step, "services": touched.get(step["name"], "")} for step in steps(deployment)],
        "can_deploy": access.allows(role, access.DEPLOYER),
        "services": [{"name": s.name, "role": ROLE_TEXT[s.role], "carried": s.started_by != deployment.pk}
                     for s in deployment.services],
        "pinned_images": sorted(deployment.pinned_images.items()),  # image services: what ran, by digest
    }


def host_row(host: Host) -> dict:
    """A host of the fleet as the hosts page lists it: its state, and what its last heartbeat said."""
    facts = host.facts
    return {
        "host": host, "state": "revoked" if host.revoked_at else host.state,
        "heartbeat": _ago(host.last_heartbeat_at),
        "docker": facts.get("docker_version") or ("not answering" if facts else "–"),
        "haproxy": facts.get("haproxy_version") or "–",
        "containers": f"{facts.get('containers_running', 0)} running of {facts.get('containers', 0)}" if facts else "–",
        "cpu": f"{facts.get('cpus', 0)} CPUs, load {facts.get('load1', 0)}" if facts else "–",
        "memory": f"{facts.get('memory_available_mb', 0)} of {facts.get('memory_total_mb', 0)} MiB free" if facts else "–",
        "labels": " ".join(f"{key}={value}" for key, value in host.labels.items()),
    }


def _ago(moment: datetime | None) -> str:
    """Seconds while it is under a minute (a heartbeat comes every 2 s), then Django's words."""
    if moment is None:
        return "never"
    seconds = (timezone.now() - moment).total_seconds()
    return f"{seconds:.0f} s ago" if seconds < 60 else f"{timesince(moment)} ago"
