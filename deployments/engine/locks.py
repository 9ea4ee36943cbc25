"""Locks in Redis shared by every worker process and the CLI."""
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10, socket_connect_timeout=5)


@contextmanager
def router_lock() -> Iterator[None]:
    """Serialises every change to HAProxy (database rows, files, runtime) across processes,
    so two deployments of different apps never write half of each other's state."""
    name = f"switchyard:{settings.SWITCHYARD['INSTANCE']}:router"
    with redis_client().lock(name, timeout=120, blocking_timeout=120):
        yield
