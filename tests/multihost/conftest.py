"""The fleet's tests: a rig of three hosts (rig.py), the suite's Redis listening on the rig's bridge
too (the hosts' broker), and agents started in the hosts' namespaces with the very command
`manage.py hosts add` printed."""
import os
import shlex
import sys
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from deployments.fleet import credentials, heartbeats, keys
from deployments.models import AuditEvent, Host
from tests.conftest import ROOT, RedisServer
from tests.multihost.rig import PANEL_ADDRESS, Rig, RigHost
from tests.support.browser import panel_page
from tests.support.eventually import eventually

HOSTS = 3


@pytest.fixture(scope="session")
def rig():
    started = Rig(HOSTS)
    try:
        yield started.up()
    finally:
        started.down()


@pytest.fixture(scope="session")
def redis_server(rig):
    """The suite's Redis, on the loopback for the panel and on the bridge for the hosts."""
    server = RedisServer.from_url(settings.REDIS_URL)
    server.also_on = (PANEL_ADDRESS,)
    server.start()
    assert server.connection_pool.connection_kwargs.get("password"), \
        "the broker needs a password for the fleet: run these tests with SWITCHYARD_TEST_BROKER_PASSWORD=1 (make multihost-test)"
    # for this process, and the panel and workers it starts (their settings read the environment)
    settings.FLEET_BROKER_URL = os.environ["SWITCHYARD_FLEET_BROKER_URL"] = \
        f"redis://{PANEL_ADDRESS}:{server.connection_pool.connection_kwargs['port']}/0"
    yield server
    server.stop()


@dataclass
class Agent:
    host: RigHost
    command: str  # as `hosts add` printed it
    environment: dict[str, str]  # the variables it sets
    log: Path
    process: object = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class Fleet:
    """Hosts added through the CLI, and their agents, started and stopped."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.agents: dict[str, Agent] = {}
        self.probing = False  # the test itself tries what a host may not: refusals are expected

    def add(self, host: RigHost, *labels: str) -> Agent:
        printed = StringIO()
        call_command("hosts", "add", host.name, "--address", host.address,
                     *[f"--label={label}" for label in labels], stdout=printed)
        return self.remember(host, printed.getvalue().strip().splitlines()[-1])

    def new_credential(self, host: RigHost) -> Agent:
        printed = StringIO()
        call_command("hosts", "credential", host.name, stdout=printed)
        return self.remember(host, printed.getvalue().strip().splitlines()[-1])

    def remember(self, host: RigHost, command: str) -> Agent:
        """The agent `command` (as the panel printed it) starts on `host`."""
        words = shlex.split(command)
        assert words[-2:] == ["agent", f"HOST={host.name}"] and words[-3] == "make", command
        variables = dict(word.split("=", 1) for word in words[:-3])
        agent = self.agents[host.name] = Agent(host, command, variables, Path(settings.DATA_DIR) / f"agent-{host.name}.log")
        return agent

    def start(self, agent: Agent):
        """`manage.py agent --host NAME` (what `make agent HOST=NAME` runs) in the host, with its
        own data directory, as on a machine of its own."""
        data_dir = Path(settings.DATA_DIR) / f"host-{agent.host.name}"
        data_dir.mkdir(exist_ok=True)
        env = {**os.environ, **agent.environment, "SWITCHYARD_DATA_DIR": str(data_dir),
               "DJANGO_SETTINGS_MODULE": "tests.support.settings"}
        agent.process = self.rig.in_host(agent.host, [sys.executable, str(ROOT / "manage.py"), "agent",
                                                      "--host", agent.host.name, "--concurrency", "2"], env, agent.log)
        return agent.process

    def logs(self, *names: str) -> str:
        return "\n".join(f"--- agent {name}:\n{self.agents[name].log.read_text()[-3000:]}"
                         for name in names if self.agents[name].log.exists())

    def stop_all(self) -> None:
        for agent in self.agents.values():
            agent.stop()


@pytest.fixture
def page(panel_server):
    """A headless Chromium page on the running panel (tests/support/browser.py)."""
    with panel_page(panel_server) as page:
        yield page


@pytest.fixture
def fleet(rig, redis_server, transactional_db):
    """An empty fleet; whatever a test adds is gone after it: agents, the hosts' containers, rows,
    broker users and keys."""
    made = Fleet(rig)
    yield made
    heartbeats.record_refusals()
    denied = list(AuditEvent.objects.filter(action="host.denied").values_list("detail", flat=True))
    made.stop_all()
    rig.remove_containers()
    for name in Host.objects.values_list("name", flat=True):
        credentials.remove(name)
        redis_server.delete(*(redis_server.keys(f"{keys.key_prefix(name)}*") or [keys.heartbeat_key(name)]))
    Host.objects.all().delete()
    # An agent's own work never needs what its broker user may not do (keys.AGENT_COMMANDS).
    assert made.probing or not denied, f"the broker refused an agent: {denied}"


def healthy(fleet: Fleet, *names: str) -> None:
    """Until the panel has seen a heartbeat of every one of these hosts (else: their agents' logs)."""
    def all_healthy() -> bool:
        heartbeats.read_all()
        return set(Host.objects.filter(name__in=names, state=Host.State.HEALTHY).values_list("name", flat=True)) == set(names)
    eventually(all_healthy, lambda: f"hosts {names} never turned healthy: " + fleet.logs(*names), 60)
