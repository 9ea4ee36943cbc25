"""The Docker daemon: the client every module of this package talks through, and whether it answers.

Everything created carries the labels `switchyard.instance` (this installation),
`switchyard.app` and, for containers, `switchyard.deployment` (values.py), so reconcile and tests
can find exactly what is theirs.
"""
from functools import lru_cache

import docker


class RuntimeFailure(Exception):
    """Docker refused to create or start a container, or is not reachable."""


@lru_cache(maxsize=1)
def client() -> docker.DockerClient:
    return docker.from_env(timeout=60)


@lru_cache(maxsize=1)
def cgroup_driver() -> str:
    """Docker's cgroup driver ("cgroupfs" or "systemd"): the form a cgroup parent takes."""
    return client().info().get("CgroupDriver", "cgroupfs")


def ping() -> None:
    try:
        client().ping()
    except Exception as error:
        raise RuntimeFailure(f"Docker is not reachable ({error}); is dockerd running?") from error
