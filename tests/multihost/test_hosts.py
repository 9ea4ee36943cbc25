"""Adding hosts to the fleet: their agents, started with the command the panel printed, report
through their heartbeats and run the work sent to their own queue; a host's credential reaches
nothing of another host's, work the panel did not sign is refused, and a revoked credential gets
nothing and is on record; a host cut off turns suspect, then down, and healthy once it is back; a restarted broker lets
the hosts back in."""
import base64
import json
import os
import shutil
import tempfile
import uuid
from io import StringIO
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from deployments import tasks
from deployments.fleet import broker, heartbeats, keys
from deployments.models import AuditEvent, Host
from tests.multihost.conftest import healthy
from tests.support.eventually import eventually

BUSYBOX_IMAGE = "switchyard-rig-busybox"
# A beat every 2 s: the last one the panel saw may be up to 2 s older than the cut; plus a read's delay.
HEARTBEAT_SLACK = 2.5


def _facts(name: str, timeout: float = 30) -> dict:
    return broker.host_app(name).send_task("fleet.facts").get(timeout=timeout)


def _as_host(agent) -> redis.Redis:
    """A client of the broker with the host's own credential, as its agent connects."""
    return redis.Redis.from_url(agent.environment["SWITCHYARD_AGENT_BROKER"], socket_timeout=5)


def _labelled_container(host) -> None:
    """A stopped container with Switchyard's label on that host's own Docker."""
    client = host.docker()
    client.images.build(path=str(_context()), tag=BUSYBOX_IMAGE, rm=True)
    client.containers.create(BUSYBOX_IMAGE, labels={"switchyard.instance": settings.SWITCHYARD["INSTANCE"]})


def _context() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="switchyard-rig-context-"))
    shutil.copy("/bin/busybox", directory / "busybox")
    (directory / "Dockerfile").write_text('FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n')
    return directory


def test_three_hosts_report_their_heartbeats_and_run_the_work_sent_to_their_own_queue(fleet, rig):
    agents = [fleet.add(host, f"zone={'a' if host.number < 3 else 'b'}") for host in rig.hosts]
    _labelled_container(rig.hosts[1])
    for agent in agents:
        fleet.start(agent)

    healthy(fleet, "h1", "h2", "h3")

    answers = {host.name: _facts(host.name) for host in rig.hosts}
    assert {name: facts["switchyard_containers"] for name, facts in answers.items()} == {"h1": 0, "h2": 1, "h3": 0}
    assert all(facts["docker_version"].startswith("20.10") for facts in answers.values()), answers
    listed = StringIO()
    call_command("hosts", "list", stdout=listed)
    rows = {line.split()[0]: line.split() for line in listed.getvalue().splitlines()[1:]}
    assert set(rows) == {"h1", "h2", "h3"}
    assert [rows[name][2] for name in ("h1", "h2", "h3")] == ["healthy"] * 3
    assert rows["h2"][1] == "10.78.0.12" and rows["h3"][-1] == "zone=b"
    assert Host.objects.get(name="h2").facts["haproxy_version"].startswith("2.6")
    with pytest.raises(CommandError, match="still runs 1 of Switchyard's containers"):
        call_command("hosts", "remove", "h2")
    call_command("hosts", "remove", "h3", stdout=StringIO())
    assert not Host.objects.filter(name="h3").exists()


def test_a_hosts_credential_reaches_its_own_keys_and_nothing_of_another_host(fleet, rig):
    fleet.probing = True
    first, second = fleet.add(rig.hosts[0]), fleet.add(rig.hosts[1])
    as_first = _as_host(first)

    as_first.lpush(f"{keys.key_prefix('h1')}probe", "mine")
    for forbidden in (lambda: as_first.lpush(f"{keys.key_prefix('h2')}{keys.queue('h2')}", "forged"),
                      lambda: as_first.get(keys.heartbeat_key("h2")),
                      lambda: as_first.get("_kombu.binding.switchyard"),
                      lambda: as_first.keys("*"), lambda: as_first.scan(0), lambda: as_first.randomkey(),
                      lambda: as_first.dbsize(), lambda: as_first.execute_command("CLIENT", "TRACKING", "on", "BCAST"),
                      lambda: as_first.eval("return 1", 0), lambda: as_first.execute_command("ACL", "LIST"),
                      lambda: as_first.execute_command("CONFIG", "GET", "*"), lambda: as_first.flushall()):
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()
    assert _as_host(second).get(keys.heartbeat_key("h2")) is None  # its own: allowed, and empty yet
    heartbeats.record_refusals()
    denied = " ".join(AuditEvent.objects.filter(action="host.denied").values_list("detail", flat=True))
    assert "host h1:" in denied and "'scan'" in denied and "fleet:h2:heartbeat" in denied


def test_work_the_panel_did_not_sign_is_refused_and_signed_work_runs(fleet, rig):
    agent = fleet.add(rig.hosts[0])
    fleet.start(agent)
    healthy(fleet, "h1")
    forged_id = str(uuid.uuid4())

    _as_host(agent).lpush(f"{keys.key_prefix('h1')}{keys.queue('h1')}", _unsigned_message(forged_id))

    assert _facts("h1")["docker_version"]  # signed work after it still runs
    eventually(lambda: "ContentDisallowed" in agent.log.read_text() or "disallowed" in agent.log.read_text().lower(),
               "the agent never said it refused the unsigned message", 30)
    assert broker.host_app("h1").AsyncResult(forged_id).state == "PENDING"  # never ran


def test_a_revoked_host_is_cut_off_and_its_refused_logins_are_on_record(fleet, rig):
    agent = fleet.add(rig.hosts[2])
    process = fleet.start(agent)
    healthy(fleet, "h3")

    call_command("hosts", "revoke", "h3", stdout=StringIO())

    with pytest.raises(redis.exceptions.AuthenticationError):
        _as_host(agent).ping()
    eventually(lambda: _refusals("h3"), "no refused login of h3 on record", 30)
    assert process.poll() is None  # the agent waits for the broker; it gets nothing meanwhile
    with pytest.raises(CommandError, match="wrong or revoked"):
        _start_agent_here(agent)

    renewed = fleet.new_credential(rig.hosts[2])
    agent.stop()
    fleet.start(renewed)
    assert _facts("h3", timeout=60)["docker_version"]  # work with its new credential


def _start_agent_here(agent) -> None:
    """The agent command with the revoked credential: it must refuse to start, saying why."""
    saved = {name: os.environ.get(name) for name in agent.environment}
    os.environ.update(agent.environment)
    try:
        call_command("agent", "--host", agent.host.name)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _refusals(host: str) -> list[AuditEvent]:
    heartbeats.record_refusals()
    return list(AuditEvent.objects.filter(action="host.login_refused", detail__startswith=f"host {host}:"))


def _unsigned_message(task_id: str) -> str:
    """A Celery protocol 2 message for fleet.facts, in plain JSON: what anyone with the host's
    credential could put in its queue."""
    body = base64.b64encode(json.dumps([[], {}, {"callbacks": None, "errbacks": None, "chain": None,
                                                 "chord": None}]).encode()).decode()
    return json.dumps({
        "body": body, "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": "fleet.facts", "id": task_id, "root_id": task_id, "parent_id": None,
                    "group": None, "retries": 0, "argsrepr": "()", "kwargsrepr": "{}", "origin": "forger"},
        "properties": {"correlation_id": task_id, "reply_to": "", "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": keys.queue("h1")}, "priority": 0,
                       "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())},
    })


def test_a_host_cut_off_turns_suspect_after_10_s_and_down_after_30_s_then_healthy_when_it_is_back(fleet, rig):
    first, second = rig.hosts[0], rig.hosts[1]
    for host in (first, second):
        fleet.start(fleet.add(host))
    healthy(fleet, "h1", "h2")
    last_beat = _next_heartbeat("h2")

    rig.cut(second)
    try:
        suspect_at = _state_reached("h2", Host.State.SUSPECT, 20)
        down_at = _state_reached("h2", Host.State.DOWN, 40)
        assert Host.objects.get(name="h1").state == Host.State.HEALTHY
    finally:
        rig.heal(second)
    healthy(fleet, "h2")

    # judged on the panel's clock from the last heartbeat it saw (the reads every 0.05 s add at most that)
    assert 10 <= suspect_at - last_beat <= 10 + HEARTBEAT_SLACK, suspect_at - last_beat
    assert 30 <= down_at - last_beat <= 30 + HEARTBEAT_SLACK, down_at - last_beat


def _next_heartbeat(name: str) -> float:
    """The moment (time.time) the panel saw a new heartbeat of the host."""
    before = Host.objects.get(name=name).last_heartbeat_at

    def seen() -> float | None:
        heartbeats.read_all()
        last = Host.objects.get(name=name).last_heartbeat_at
        return last.timestamp() if last != before else None
    return eventually(seen, f"no new heartbeat of {name}", 10, interval=0.02)


def _state_reached(name: str, state: str, timeout: float) -> float:
    def reached() -> float | None:
        heartbeats.read_all()
        host = Host.objects.get(name=name)
        return host.state_since.timestamp() if host.state == state else None
    return eventually(reached, f"{name} never turned {state}", timeout)


def test_a_restarted_broker_lets_the_hosts_back_in_and_their_work_runs_again(fleet, rig, redis_server):
    agent = fleet.add(rig.hosts[0])
    fleet.start(agent)
    healthy(fleet, "h1")

    redis_server.stop()
    redis_server.start()  # empty, as a Redis without persistence comes back: no ACL user, no key
    with pytest.raises(redis.exceptions.AuthenticationError):
        _as_host(agent).ping()
    tasks.fleet_heartbeats()  # what the control worker's beat runs every 2 s

    assert _as_host(agent).ping()
    assert _next_heartbeat("h1")
    assert _facts("h1", timeout=60)["docker_version"]  # queued now, run once its agent is back (kombu retries)
    assert agent.process.poll() is None
