"""What every page needs to know: whether the services behind the panel answer."""
from functools import lru_cache

import redis
from django.conf import settings
from django.http import HttpRequest

PING_TIMEOUT = 0.5  # seconds; a page must not hang on a Redis that is gone


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=PING_TIMEOUT, socket_connect_timeout=PING_TIMEOUT)


def services(request: HttpRequest) -> dict:
    """`redis_down`: the queue, live logs and routing locks are unavailable meanwhile."""
    if not request.user.is_authenticated:
        return {}
    try:
        _redis().ping()
    except (redis.ConnectionError, redis.TimeoutError):
        return {"redis_down": True}
    return {"redis_down": False}
