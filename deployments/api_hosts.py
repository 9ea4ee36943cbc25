"""The REST API's hosts (/api/hosts): the fleet's machines, for superusers only (anyone else gets
403: a host's address and facts are the machine's business, not a tenant's). Adding a host, or
asking for its new credential, answers the command that starts its agent, once."""
from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from deployments import audit
from deployments.api_schemas import ObjectBody
from deployments.application import hosts
from deployments.audit import Actor
from deployments.models import Host

router = Router(tags=["hosts"])


class HostIn(ObjectBody):
    name: str = Field(max_length=40, description="lowercase letters, digits and dashes; names its queue host.NAME")
    address: str = Field(max_length=45, description="the host's private address")
    labels: list[str] = Field(default_factory=list, max_length=50, description="KEY=VALUE, for placement")


class HostOut(Schema):
    name: str
    address: str
    labels: dict[str, str]
    state: str  # new, healthy, suspect, down
    revoked: bool
    last_heartbeat_at: datetime | None
    facts: dict  # the last heartbeat: Docker and HAProxy versions, containers, CPUs, memory


class HostAdded(Schema):
    host: HostOut
    command: str = Field(description="run on the host: starts its agent; its credential is shown only now")


def _out(host: Host) -> HostOut:
    return HostOut(name=host.name, address=host.address, labels=host.labels, state=host.state,
                   revoked=host.revoked_at is not None, last_heartbeat_at=host.last_heartbeat_at, facts=host.facts)


def _superuser(request: HttpRequest) -> Actor:
    if not request.user.is_superuser:
        raise PermissionDenied("only a superuser manages hosts")
    return Actor.from_request(request, audit.Via.API)


def _host(name: str) -> Host:
    host = Host.objects.filter(name=name).first()
    if host is None:
        raise Http404(f"there is no host {name!r}")
    return host


@router.get("", response=list[HostOut])
def list_hosts(request):
    _superuser(request)
    return [_out(host) for host in hosts.list_hosts()]


@router.post("", response={201: HostAdded})
def add_host(request, body: HostIn):
    added = hosts.add_host(name=body.name, address=body.address, labels=body.labels, actor=_superuser(request))
    return Status(201, HostAdded(host=_out(added.host), command=added.command))


@router.get("/{name}", response=HostOut)
def get_host(request, name: str):
    _superuser(request)
    return _out(_host(name))


@router.post("/{name}/credential", response=HostAdded)
def new_credential(request, name: str):
    actor = _superuser(request)
    added = hosts.new_credential(name=_host(name).name, actor=actor)
    return HostAdded(host=_out(added.host), command=added.command)


@router.post("/{name}/revoke", response=HostOut)
def revoke_host(request, name: str):
    actor = _superuser(request)
    return _out(hosts.revoke_host(name=_host(name).name, actor=actor))


@router.delete("/{name}", response={204: None})
def remove_host(request, name: str):
    actor = _superuser(request)
    hosts.remove_host(name=_host(name).name, actor=actor)
    return Status(204, None)
