"""Handing work to a worker: Celery tasks sent by their names, the only module that sends one.

What sends a task never imports what runs it (deployments/tasks.py: the engine, Docker), so the
web process (panel, API, admin) stays without the Docker SDK while it hands a deployment, a
routing change, a certificate or an app's removal to a worker. Which queue a task goes to is
settings.CELERY_TASK_ROUTES, by name too.

The web process has neither the Docker socket nor HAProxy's files (in the compose stack it
cannot have them), so what it changes reaches HAProxy and Docker as tasks. Every send here is
safe to lose: if Redis is down the deployment stays queued, or the periodic work (reconcile,
certificates, send_due_events) does the same later, so a failed send is a warning, never an error.
"""
import logging

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from deployments.certificates import app_certificates
from deployments.engine import queue
from deployments.models import App
from deployments.outgoing import events
from panel.celery import app as celery_app

logger = logging.getLogger(__name__)

BROKER_UNREACHABLE = (OperationalError, ConnectionError, OSError, RedisError)


def task(name: str) -> str:
    """A task's full name (the tasks are defined in deployments/tasks.py)."""
    return f"deployments.tasks.{name}"


def _send_now(name: str, args: tuple = (), **options) -> None:
    celery_app.send_task(task(name), args, retry=False, **options)


def _quietly(name: str, args: tuple = ()) -> None:
    """Send a task that a periodic one would also do in time: if Redis is down, it waits for that."""
    try:
        _send_now(name, args)
    except BROKER_UNREACHABLE as error:
        logger.warning("%s waits for the periodic work: the queue (Redis) is unreachable (%s)", task(name), error)


# Deployments ----------------------------------------------------------------------------------

def dispatch(deployment_id: int) -> None:
    """Hand a new deployment to a worker once the transaction that created it commits."""
    transaction.on_commit(lambda: send(deployment_id))


def send(deployment_id: int) -> bool:
    """Queue the deployment's run; False if the broker (Redis) cannot be reached. The deployment
    stays queued in the database and the periodic reconcile sends it again once Redis is back."""
    try:
        _send_now("run_deployment", (deployment_id,))
        queue.mark_sent(deployment_id)
    except BROKER_UNREACHABLE as error:
        logger.warning("deployment #%s waits: the queue (Redis) is unreachable (%s)", deployment_id, error)
        return False
    return True


def send_continuation(deployment_id: int, runner: str) -> bool:
    """A verified deployment's canary, switch, watch and drain, to the watch worker; False if the
    broker (Redis) cannot be reached: then the deploy worker carries on itself."""
    try:
        _send_now("continue_deployment", (deployment_id, runner))
    except BROKER_UNREACHABLE as error:
        logger.warning("deployment #%s carries on in its deploy worker: the queue (Redis) is unreachable (%s)",
                       deployment_id, error)
        return False
    return True


def hand_over(app_id: int) -> None:
    """A deployment of the app ended: start what waited for it (the app's next, its owner's)."""
    for waiting in queue.next_to_start(app_id):
        send(waiting)


def send_deployment_lost(deployment_id: int, runner: str) -> None:
    """From the worker's main process (deployments/signals.py); if Redis is down, reconcile ends
    the deployment once its heartbeat is stale."""
    _quietly("deployment_lost", (deployment_id, runner))


# Routing, certificates, removal ---------------------------------------------------------------

def send_apply_routing() -> None:
    """After apps or domains changed (panel, API, CLI, admin), once the transaction commits: a
    worker brings HAProxy to the database; if Redis is down, the next reconcile does."""
    transaction.on_commit(lambda: _quietly("apply_routing"))


def send_apply_certificates() -> None:
    """After an upload commits; if Redis is down, the next reconcile applies it."""
    transaction.on_commit(lambda: _quietly("apply_certificates"))


def request_certificate(app: App) -> None:
    """After an app's domains changed: if its certificate is wanted now, a worker gets it once
    the transaction commits (and the periodic task does, if Redis is down at that moment)."""
    if app_certificates.request(app) and settings.SWITCHYARD["ACME_DIRECTORY"]:
        transaction.on_commit(send_certificates)


def send_certificates() -> None:
    _quietly("certificates")


def send_issue_certificate(certificate_id: int) -> None:
    _quietly("issue_certificate", (certificate_id,))


def send_remove_app_resources(app: App, app_id: int, deployment_ids: list[int]) -> None:
    """After an app's rows were deleted (call inside that transaction, with the ids it had)."""
    args = (app.name, deployment_ids, app.stop_timeout, app.image_repository(), app_id)
    transaction.on_commit(lambda: _quietly("remove_app_resources", args))


# Deploy events (outgoing/events.py) -----------------------------------------------------------

def send_event(delivery_id: int, countdown: float | None = None) -> None:
    """One attempt now, or after `countdown` seconds (a retry's backoff); if Redis is down,
    send_due_events finds it when it is due."""
    try:
        _send_now("send_event", (delivery_id,), countdown=countdown)
    except BROKER_UNREACHABLE as error:
        logger.warning("event delivery #%s waits for the periodic work: Redis is unreachable (%s)", delivery_id, error)


@receiver(events.deliveries_recorded)
def _send_recorded(sender, ids: list[int], **kwargs) -> None:
    for delivery_id in ids:
        send_event(delivery_id)
