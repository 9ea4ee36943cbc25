"""The Docker daemon: the client every module of this package talks through, and whether it answers.

Everything created carries the labels `switchyard.instance` (this installation),
`switchyard.app` and, for containers, `switchyard.deployment` (values.py), so reconcile and tests
can find exactly what is theirs.
"""
from functools import lru_cache

import docker
from django.conf import settings


class RuntimeFailure(Exception):
    """Docker refused to create or start a container, or is not reachable."""


@lru_cache(maxsize=1)
def client() -> docker.DockerClient:
    return docker.from_env(timeout=60)


class _LogsOnlyClient(docker.APIClient):
    def _check_is_tty(self, container) -> bool:
        """docker-py inspects a container before reading its logs, to learn whether it has a TTY;
        the logs proxy refuses inspect (it shows the environment). Ours never have one."""
        return False


@lru_cache(maxsize=1)
def logs_client() -> docker.APIClient:
    """What the panel follows live output through. In the compose stack the web service has no
    Docker socket: SWITCHYARD_DOCKER_LOGS_URL points at a proxy that lets only GET .../logs pass."""
    url = settings.SWITCHYARD["DOCKER_LOGS_URL"]
    return _LogsOnlyClient(base_url=url, timeout=60) if url else client().api


@lru_cache(maxsize=1)
def cgroup_driver() -> str:
    """Docker's cgroup driver ("cgroupfs" or "systemd"): the form a cgroup parent takes."""
    return client().info().get("CgroupDriver", "cgroupfs")


def ping() -> None:
    try:
        client().ping()
    except Exception as error:
        raise RuntimeFailure(f"Docker is not reachable ({error}); is dockerd running?") from error
