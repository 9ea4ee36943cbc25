"""The Celery apps of the fleet, on the panel's Redis. Each host has its own key prefix there
(keys.py); kombu and Celery's result backend put every key of theirs under it
(`global_keyprefix`), so a host's ACL user reaches its own queue and results and nothing else.

The panel sends to a host through `host_app(name)`: as Redis's administrator, signing each task.
The agent consumes through `agent_app(...)`: as the host's user, accepting signed tasks only."""
from functools import lru_cache
from pathlib import Path

from celery import Celery
from celery.security.serialization import register_auth
from django.conf import settings

from deployments.fleet import keys, signing

SIGNED = "auth"  # Celery's signing serializer (celery.security)
# The worker's own chatter (remote control, events, gossip, mingle) goes through fanout channels
# every worker shares; an agent needs none of it and its ACL user reaches no shared channel.
AGENT_WORKER_OPTIONS = {"without_gossip": True, "without_mingle": True, "without_heartbeat": True}


def _common(app: Celery, host: str) -> None:
    prefix = {"global_keyprefix": keys.key_prefix(host)}
    app.conf.update(
        broker_transport_options=prefix, result_backend_transport_options=prefix,
        result_serializer="json", result_accept_content=["json"], task_default_queue=keys.queue(host),
        broker_connection_retry_on_startup=True, result_expires=3600,
        # A result written right after a network cut would fail on the connection the cut killed
        # (redis-py's keepalive gave up on it) and Celery would call the task failed: retry it.
        result_backend_always_retry=True, result_backend_max_retries=20,
        worker_enable_remote_control=False, worker_send_task_events=False, task_send_sent_event=False)


@lru_cache(maxsize=None)
def host_app(host: str) -> Celery:
    """The panel's app for sending to one host (and reading its results)."""
    key = signing.panel_key()
    register_auth(key=key.key_pem, cert=key.certificate_pem)  # the serializer signs with the panel's key
    app = Celery(f"panel-to-{host}", broker=settings.REDIS_URL, backend=settings.REDIS_URL, set_as_current=False)
    _common(app, host)
    app.conf.update(task_serializer=SIGNED, accept_content=["json"])
    return app


def agent_app(host: str, broker_url: str, panel_certificate_pem: str) -> Celery:
    """The agent's app: the host's credential in `broker_url`, and only tasks signed by the holder
    of `panel_certificate_pem` accepted (a message with no or another signature is refused)."""
    store = Path(settings.DATA_DIR) / "fleet" / f"panel-certificate-{host}.pem"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(panel_certificate_pem)
    register_auth(store=str(store))  # the serializer verifies only; this process signs nothing
    app = Celery(f"agent-{host}", broker=broker_url, backend=broker_url, set_as_current=True)
    _common(app, host)
    app.conf.update(task_serializer="json", accept_content=[SIGNED], worker_prefetch_multiplier=1,
                    broker_connection_max_retries=None)  # a host whose broker is away waits for it
    return app
