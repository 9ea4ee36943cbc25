"""The panel's side of the heartbeats: each host's key read, its row brought up to date, and its
state judged from how long ago a new heartbeat came, on the panel's clock (a host's clock may be
off; only whether its heartbeat changed is taken from it): healthy, suspect after SUSPECT_AFTER
seconds of silence, down after DOWN_AFTER. The control worker does this every few seconds (beat:
`fleet_heartbeats`); what Redis refused a host meanwhile goes to the audit log."""
import json
import logging
import re
from datetime import datetime, timedelta

from django.utils import timezone

from deployments.audit import Actor, Via, record
from deployments.engine.locks import redis_client
from deployments.fleet import credentials, keys
from deployments.fleet.facts import FACT_NAMES as _FACT_NAMES
from deployments.models import Host

logger = logging.getLogger(__name__)

SUSPECT_AFTER = timedelta(seconds=10)
DOWN_AFTER = timedelta(seconds=30)
_ADDRESS = re.compile(r"\baddr=(\S+)")


def read_all() -> list[Host]:
    """Every host's heartbeat read; returns the hosts whose state changed."""
    hosts = list(Host.objects.all())
    if not hosts:
        return []
    beats = redis_client().mget([keys.heartbeat_key(host.name) for host in hosts])
    now = timezone.now()
    changed = [host for host, beat in zip(hosts, beats) if _update(host, _facts(host, beat), now)]
    record_refusals()
    return changed


def _facts(host: Host, beat: bytes | None) -> dict | None:
    """The heartbeat's facts, if it is one: a host writes its key itself, so it is checked."""
    try:
        facts = json.loads(beat) if beat else None
    except ValueError:
        facts = None
    if facts is not None and not (isinstance(facts, dict) and set(facts) <= _FACT_NAMES
                                  and all(isinstance(value, (int, float, str)) for value in facts.values())):
        logger.warning("host %s wrote a heartbeat that is not one; ignored", host.name)
        return None
    return facts


def _update(host: Host, facts: dict | None, now: datetime) -> bool:
    """The host's row from its latest heartbeat; True if its state changed."""
    fields = {}
    if facts is not None and facts != host.facts:
        fields.update(facts=facts, last_heartbeat_at=now)
    state = judge(fields.get("last_heartbeat_at", host.last_heartbeat_at), now)
    if state != host.state:
        fields.update(state=state, state_since=now)
        logger.warning("host %s is %s (was %s)", host.name, state, host.state)
    if fields:
        Host.objects.filter(pk=host.pk).update(**fields)
    return "state" in fields


def judge(last_heartbeat_at: datetime | None, now: datetime) -> str:
    if last_heartbeat_at is None:
        return Host.State.NEW
    silent = now - last_heartbeat_at
    if silent >= DOWN_AFTER:
        return Host.State.DOWN
    if silent >= SUSPECT_AFTER:
        return Host.State.SUSPECT
    return Host.State.HEALTHY


def record_refusals() -> None:
    """An audit event per refusal of a fleet user Redis logged since the last look."""
    for refusal in credentials.take_refusals():
        found = _ADDRESS.search(refusal.client)
        address = found.group(1) if found else "an unknown address"
        if refusal.reason == "auth":
            action, detail = "host.login_refused", (f"{refusal.count} refused login(s), last from {address} "
                                                    f"(wrong or revoked credential)")
        else:
            action, detail = "host.denied", (f"{refusal.count} x {refusal.reason} {refusal.what!r} refused, last "
                                              f"from {address} (beyond the host's rules)")
        record(Actor(user=None, via=Via.FLEET, label="broker"), action, detail=f"host {refusal.host}: {detail}")
