"""The audit log: every state-changing action, with who did it, when, from which address and
through what (panel, API, CLI, webhook, admin). The application layer records; pages and the API list.

An Actor travels with each action from the edge (a view, an API handler, a command) into
the application layer, which both records it and decides what it may do (`trusted`: the CLI and
superusers may point an app at a repository on this machine).
"""
import getpass
import ipaddress
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from deployments.access import visible_apps
from deployments.models import App, AuditEvent

Via = AuditEvent.Via


@dataclass(frozen=True)
class Actor:
    user: AbstractBaseUser | None
    via: str
    address: str | None = None
    label: str = ""  # who acted when no user did: the shell's user for the CLI, the pusher for a webhook

    @property
    def name(self) -> str:
        if self.user is not None:
            return self.user.get_username()
        return self.label or self.via

    @property
    def trusted(self) -> bool:
        """Someone with the machine's own rights: a shell on it, or a superuser."""
        return self.via == Via.CLI or bool(self.user is not None and self.user.is_superuser)

    @classmethod
    def from_request(cls, request: HttpRequest, via: str) -> "Actor":
        user = request.user if request.user.is_authenticated else None
        return cls(user=user, via=via, address=client_address(request))

    @classmethod
    def cli(cls, label: str = "") -> "Actor":
        """Someone at this machine's shell (`manage.py ...`); `label` defaults to their login name."""
        return cls(user=None, via=Via.CLI, label=label or getpass.getuser())


def client_address(request: HttpRequest) -> str | None:
    """The peer's address as the server saw it; None if it is not an IP (a test client)."""
    address = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def record(actor: Actor, action: str, app: App | None = None, detail: str = "") -> AuditEvent:
    return AuditEvent.objects.create(
        user=actor.user, username=actor.name[:150], via=actor.via, address=actor.address,
        app=app, app_name=app.name if app else "", action=action, detail=detail[:500],
    )


def visible_events(user: AbstractBaseUser, app: App | None = None) -> QuerySet[AuditEvent]:
    """Superusers see everything; others the events of apps they can see and their own."""
    events = AuditEvent.objects.select_related("user")
    if app is not None:
        events = events.filter(app=app)
    if user.is_superuser:
        return events
    return events.filter(Q(app__in=visible_apps(user)) | Q(app=None, user=user))
