"""What runs on a host: the agent's tasks and its heartbeat. It never touches the panel's database
(the host has none of it): a task takes plain values, acts on this host's Docker and HAProxy, and
returns plain values; the heartbeat is a key in Redis the panel reads (heartbeats.py)."""
import json
import os
import subprocess
import time
from dataclasses import asdict

import redis
from celery import Celery, bootsteps

from deployments.dockerd import images
from deployments.dockerd.build_errors import BuildFailed
from deployments.dockerd.host_facts import docker_facts
from deployments.fleet import keys, signing
from deployments.fleet.facts import HostFacts

HEARTBEAT_SECONDS = 2.0
# The heartbeat key outlives a few missed beats, then goes: the panel tells a silent host from one
# it never heard of by the Host row, not by the key.
HEARTBEAT_TTL_SECONDS = 120
COMMAND_TIMEOUT_SECONDS = 5


def facts() -> HostFacts:
    docker = docker_facts()
    memory = _meminfo()
    return HostFacts(
        docker_version=docker.version, docker_error=docker.error, haproxy_version=_haproxy_version(),
        containers=docker.containers, containers_running=docker.running,
        switchyard_containers=docker.switchyard_containers, cpus=os.cpu_count() or 1,
        load1=round(os.getloadavg()[0], 2), memory_total_mb=memory.get("MemTotal", 0) // 1024,
        memory_available_mb=memory.get("MemAvailable", 0) // 1024, sent_at=time.time())


def _haproxy_version() -> str:
    """"2.6.12-1+deb12u4" from the first line of `haproxy -v`; empty if HAProxy is missing."""
    try:
        result = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    words = result.stdout.split()
    return words[2] if len(words) > 2 and words[1] == "version" else ""


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in kB, by name."""
    found = {}
    with open("/proc/meminfo") as lines:
        for line in lines:
            name, _, value = line.partition(":")
            found[name] = int(value.split()[0]) if value.split() else 0
    return found


def register_tasks(app: Celery) -> None:
    """The tasks a host runs. Their names are what the panel sends (broker.host_app)."""
    app.task(name="fleet.facts")(facts_task)
    app.task(name="fleet.pull")(pull_task)


def pull_task(reference: str, timeout: int) -> dict:
    """fleet.pull: an image pulled into this host's Docker (bounded in time and size as any pull),
    and the id it has here; a failure is an answer ("error"), for the panel to name the host."""
    try:
        pulled = images.pull_image(reference, timeout=timeout)
    except BuildFailed as failure:
        return {"image_id": "", "error": str(failure)}
    image_id = images.image_id(reference) if pulled else ""
    return {"image_id": image_id, "error": "" if image_id else f"Docker could not pull {reference}"}


def facts_task() -> dict:
    """fleet.facts: what the host says about itself, now."""
    return asdict(facts())


class Heartbeat(bootsteps.StartStopStep):
    """Every HEARTBEAT_SECONDS, the host's facts into its heartbeat key, from the worker's timer
    (its main process: a pool busy with long tasks does not hold it up)."""
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **options) -> None:
        super().__init__(worker, **options)
        self.timer_ref = None

    def start(self, worker) -> None:
        app = worker.app
        client = redis.Redis.from_url(app.conf.broker_url, socket_timeout=5, socket_connect_timeout=5)
        host = app.conf.task_default_queue.removeprefix("host.")
        beat = lambda: _beat(client, host)  # noqa: E731
        beat()
        self.timer_ref = worker.timer.call_repeatedly(HEARTBEAT_SECONDS, beat, priority=10)

    def stop(self, worker) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()


def _beat(client: redis.Redis, host: str) -> None:
    """One heartbeat. A broker out of reach is the panel's news to act on, not the agent's error:
    the next beat tries again."""
    try:
        client.set(keys.heartbeat_key(host), json.dumps(asdict(facts())), ex=HEARTBEAT_TTL_SECONDS)
    except (redis.RedisError, OSError):
        pass


class Refused(Exception):
    """The agent cannot start: the broker refused it, or the panel's certificate is not the one pinned."""


def panel_certificate(host: str, broker_url: str, fingerprint: str) -> str:
    """The certificate the panel published for this host, if it is the one the command pinned."""
    client = redis.Redis.from_url(broker_url, socket_timeout=10, socket_connect_timeout=10)
    try:
        published = client.get(keys.panel_certificate_key(host))
    except redis.AuthenticationError:
        raise Refused(f"the broker refused host {host}'s credential (wrong or revoked): "
                      f"get a new one on the panel with `manage.py hosts credential {host}`") from None
    except (redis.RedisError, OSError) as error:
        raise Refused(f"the broker cannot be reached ({error})") from None
    finally:
        client.close()
    if published is None:
        raise Refused(f"the panel has published no certificate for host {host}: is it added there (`hosts list`)?")
    certificate = published.decode()
    if signing.fingerprint(certificate) != fingerprint.lower():
        raise Refused("the panel's certificate is not the one SWITCHYARD_PANEL_FINGERPRINT names: "
                      "copy the command the panel printed again")
    return certificate
