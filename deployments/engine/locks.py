"""Locks in Redis shared by every worker process and the CLI."""
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10, socket_connect_timeout=5)


# A change to HAProxy takes milliseconds, a reload a few seconds. If the process holding the
# lock dies (a killed worker), Redis frees it after this long, so routing waits at most that.
ROUTER_LOCK_SECONDS = 30
# How often a waiting process asks Redis again (redis-py's default). 5 ms cut the waits of many
# deployments at once, but the next holder then often sent its runtime commands right after a
# reload, while the old HAProxy worker still took some (haproxy/process.py WAIT_POLL_SECONDS).
ROUTER_LOCK_POLL_SECONDS = 0.1


@contextmanager
def router_lock() -> Iterator[None]:
    """Serialises every change to HAProxy (database rows, files, runtime) across processes,
    so two deployments of different apps never write half of each other's state."""
    with redis_client().lock(_name("router"), timeout=ROUTER_LOCK_SECONDS, sleep=ROUTER_LOCK_POLL_SECONDS,
                             blocking_timeout=2 * ROUTER_LOCK_SECONDS):
        yield


def router_lock_taken() -> bool:
    """Whether a process holds the router lock at this moment."""
    return redis_client().lock(_name("router")).locked()


@contextmanager
def reconcile_lock(wait: float = 0) -> Iterator[bool]:
    """One reconcile at a time; yields False if another one runs (after waiting up to `wait`
    seconds for it to end)."""
    lock = redis_client().lock(_name("reconcile"), timeout=600, blocking=wait > 0, blocking_timeout=wait or None)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


def _name(what: str) -> str:
    return f"switchyard:{settings.SWITCHYARD['INSTANCE']}:{what}"
