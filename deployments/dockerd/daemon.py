"""The Docker daemon: the client every module of this package talks through, and whether it answers.

Everything created carries the labels `switchyard.instance` (this installation),
`switchyard.app` and, for containers, `switchyard.deployment` (values.py), so reconcile and tests
can find exactly what is theirs.
"""
import os
import threading
from functools import lru_cache

import docker


class RuntimeFailure(Exception):
    """Docker refused to create or start a container, or is not reachable."""


_made = threading.local()  # (pid, client) of the thread


def client() -> docker.DockerClient:
    """The thread's client, made on first use. Making one asks the daemon for its API version,
    a request of its own (about 10 ms, more under load), and opens a new connection pool; a deploy
    talks to Docker a few dozen times. One per process: a Celery child must not share its
    parent's sockets; and per thread: a requests Session is not meant to be shared by threads."""
    made = getattr(_made, "client", None)
    if made is None or made[0] != os.getpid():
        made = _made.client = (os.getpid(), docker.from_env(timeout=60))
    return made[1]


def own_client_options() -> dict:
    """For a client of its own (one a build or a pull closes to stop it): the daemon's address
    from the environment, and the API version the thread's client already asked for, so that
    making it costs no request."""
    return {**docker.utils.kwargs_from_env(), "version": client().api.api_version}


@lru_cache(maxsize=1)
def cgroup_driver() -> str:
    """Docker's cgroup driver ("cgroupfs" or "systemd"): the form a cgroup parent takes."""
    return client().info().get("CgroupDriver", "cgroupfs")


def ping() -> None:
    try:
        client().ping()
    except Exception as error:
        raise RuntimeFailure(f"Docker is not reachable ({error}); is dockerd running?") from error
