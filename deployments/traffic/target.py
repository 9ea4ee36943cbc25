"""Which HAProxy this process drives, from the settings: where its files and sockets are, what
it binds. One host today; with several, each host's agent has its own."""
from pathlib import Path

from django.conf import settings

from deployments.haproxy import process
from deployments.haproxy.config import Binds, Paths


def paths() -> Paths:
    return Paths(Path(settings.SWITCHYARD["HAPROXY_DIR"]), stats=settings.SWITCHYARD["HAPROXY_STATS_SOCKET"])


def binds() -> Binds:
    return Binds(http=settings.SWITCHYARD["HTTP_BIND"], https=settings.SWITCHYARD["HTTPS_BIND"],
                 metrics=settings.SWITCHYARD["HAPROXY_METRICS_BIND"], exporter=process.has_prometheus_exporter())


def may_start() -> bool:
    """Whether a routing change may start a stopped HAProxy: not if SWITCHYARD_HAPROXY_SUPERVISED
    says only `manage.py haproxy` may (in the compose stack a worker's container would own it)."""
    return not settings.SWITCHYARD["HAPROXY_SUPERVISED"]
