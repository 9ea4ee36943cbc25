"""The fleet's hosts: added (with the one command that starts the host's agent), listed, their
credential revoked or replaced, removed once empty. Hosts are the machine's business, not an
app's: only the CLI and superusers act on them (`Actor.trusted`)."""
import ipaddress
import logging
import re
import shlex
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments.application.errors import InvalidInput, NotPossible
from deployments.audit import Actor, record
from deployments.engine.locks import redis_client
from deployments.fleet import credentials, keys, signing
from deployments.models import Host

logger = logging.getLogger(__name__)

# A host's name goes into Redis keys, a queue name and an ACL user name: letters, digits, dashes.
NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class AddedHost:
    host: Host
    command: str  # starts the host's agent; it carries the credential, which is shown only now


def add_host(*, name: str, address: str, labels: list[str], actor: Actor) -> AddedHost:
    """Check, store, and let the host's credential into the broker, all or nothing."""
    _require_trusted(actor)
    parsed_labels = _checked(name, address, labels)
    credential = Host.new_credential()
    with _broker_needed(), transaction.atomic():
        host = Host.objects.create(name=name, address=address, labels=parsed_labels,
                                   credential_hash=Host.hash(credential))
        _let_in(host)  # a broker that refuses rolls the row back: nothing half-made
        record(actor, "host.add", detail=f"host {name} at {address}" + (f" labels {parsed_labels}" if labels else ""))
    return AddedHost(host, agent_command(host, credential))


def new_credential(*, name: str, actor: Actor) -> AddedHost:
    """A fresh credential for the host (the old one stops working at once), revoked or not."""
    _require_trusted(actor)
    host = _host(name)
    credential = Host.new_credential()
    with _broker_needed(), transaction.atomic():
        Host.objects.filter(pk=host.pk).update(credential_hash=Host.hash(credential), revoked_at=None)
        host.refresh_from_db()
        credentials.revoke(host.name)  # cuts the connections made with the old one
        _let_in(host)
        record(actor, "host.credential", detail=f"host {name}: new credential")
    return AddedHost(host, agent_command(host, credential))


def revoke_host(*, name: str, actor: Actor) -> Host:
    """The host's credential stops opening the broker, and its open connections are closed.
    Recorded first: if Redis cannot be reached now, the next heartbeat round switches the user
    off (credentials.apply_all), so a revocation never waits on the broker, nor is undone by it."""
    _require_trusted(actor)
    host = _host(name)
    with transaction.atomic():
        Host.objects.filter(pk=host.pk).update(revoked_at=timezone.now())
        record(actor, "host.revoke", detail=f"host {name}: credential revoked")
    try:
        credentials.revoke(host.name)
    except (redis.RedisError, OSError) as error:
        logger.warning("host %s revoked; the broker cuts it off at the next round (%s)", name, error)
    host.refresh_from_db()
    return host


def remove_host(*, name: str, actor: Actor) -> None:
    """Only a host that runs none of Switchyard's containers (as its last heartbeat said)."""
    _require_trusted(actor)
    host = _host(name)
    running = int(host.facts.get("switchyard_containers", 0))
    if running:
        raise NotPossible(f"host {name} still runs {running} of Switchyard's containers; move them off it first")
    with _broker_needed(), transaction.atomic():
        host.delete()
        credentials.remove(name)
        _forget_keys(name)
        record(actor, "host.remove", detail=f"host {name} removed")


def list_hosts() -> list[Host]:
    return list(Host.objects.all())


def agent_command(host: Host, credential: str) -> str:
    """What to run on the host, from the project's directory there."""
    broker = _with_credential(settings.FLEET_BROKER_URL, keys.acl_user(host.name), credential)
    return (f"SWITCHYARD_AGENT_BROKER={shlex.quote(broker)} "
            f"SWITCHYARD_PANEL_FINGERPRINT={signing.panel_key().fingerprint} "
            f"make agent HOST={host.name}")


def _let_in(host: Host) -> None:
    """The host's ACL user and the certificate its agent checks signatures with (credentials.apply)."""
    if credentials.anyone_may_enter():
        raise NotPossible("the broker lets anyone in as its default user, without a password: give Redis one "
                          "(requirepass, and the same in REDIS_URL) before adding hosts, which reach it over a network")
    credentials.apply(host)
    credentials.load_scripts()


@contextmanager
def _broker_needed() -> Iterator[None]:
    """What changes a host changes the broker too: if Redis cannot be reached, nothing is changed."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
        raise NotPossible(f"the broker (Redis) cannot be reached, so nothing was changed: {error}") from None
    except redis.RedisError as error:
        raise NotPossible(f"the broker (Redis) refused the change, so nothing was changed: {error}") from None


def _forget_keys(name: str) -> None:
    client = redis_client()
    stale = list(client.scan_iter(match=f"{keys.key_prefix(name)}*", count=500))
    if stale:
        client.delete(*stale)


def _with_credential(url: str, user: str, credential: str) -> str:
    parts = urlsplit(url)
    address = parts.netloc.rpartition("@")[2]  # host and port as written ([::1]:6379 keeps its brackets)
    netloc = f"{quote(user, safe='')}:{quote(credential, safe='')}@{address}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _host(name: str) -> Host:
    host = Host.objects.filter(name=name).first()
    if host is None:
        raise InvalidInput({"name": [f"there is no host {name!r}"]})
    return host


def _require_trusted(actor: Actor) -> None:
    if not actor.trusted:
        raise NotPossible("only a superuser (or the machine's shell) manages hosts")


def _checked(name: str, address: str, labels: list[str]) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    if not NAME.match(name or ""):
        errors["name"] = ["2 to 40 lowercase letters, digits and dashes, starting with a letter and not ending "
                          "with a dash (it names the host's queue: host.NAME)"]
    elif Host.objects.filter(name=name).exists():
        errors["name"] = [f"there is a host {name!r} already"]
    try:
        ipaddress.ip_address(address)
    except ValueError:
        errors["address"] = [f"{address!r} is not an IP address (the host's private address, e.g. 10.0.0.11)"]
    parsed, label_errors = _parsed_labels(labels)
    if label_errors:
        errors["labels"] = label_errors
    if errors:
        raise InvalidInput(errors)
    return parsed


def _parsed_labels(labels: list[str]) -> tuple[dict[str, str], list[str]]:
    parsed, errors = {}, []
    for label in labels:
        key, equals, value = label.partition("=")
        if not equals or not LABEL_KEY.match(key) or not LABEL_VALUE.match(value):
            errors.append(f"{label!r}: want KEY=VALUE, the key lowercase letters, digits, '.', '_' or '-', "
                          f"the value letters, digits, '.', '_' or '-' (up to 63)")
        else:
            parsed[key] = value
    return parsed, errors
