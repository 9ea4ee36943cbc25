"""Celery tasks: the edge between Celery and the engine, and the only module that hands work
to a worker. Tasks take ids, re-read rows, and are safe to run twice.

Tasks are acknowledged when they start (Celery's default, not acks_late), on purpose:
- Redelivery is not what ends a deployment whose worker died: the periodic reconcile does
  (heartbeat older than SWITCHYARD_HEARTBEAT_TIMEOUT), and it sends the app's next queued
  deployment again (queue.stranded). A redelivered run_deployment could only find its
  deployment claimed already, so acks_late would buy nothing.
- acks_late costs a worker: with kombu 5.7's Redis transport a worker whose broker goes away
  while it holds an unacknowledged task restores that task through a client the reconnect has
  already cleared, logs "Unrecoverable error" and exits (tests/test_faults.py stops Redis
  during a build to show it does not happen any more).
A task that was taken but never got as far as the claim (its process killed at that moment)
is found the same way: its note in Redis expires and reconcile sends the deployment again.

The web process has neither the Docker socket nor HAProxy's files (in the compose stack it
cannot have them), so what it changes reaches HAProxy and Docker as tasks: apply_routing,
apply_certificates and remove_app_resources. Deploy events (send_event) go out from a worker too. The first two go to settings.CONTROL_QUEUE, which
its own worker serves (Procfile `control`), so a domain change never waits behind a build; so do
the periodic tasks (reconcile, certificates, prune_logs, send_due_events: beat sends them, with an
expiry of one interval) and deployment_lost, which would otherwise wait for a deploy slot while
every slot builds, and end a dead worker's deployment only once the builds are done.
A deployment with a canary or a watch carries on after verify in continue_deployment, on
settings.WATCH_QUEUE (Procfile `watch`), so minutes of watching never hold a build's slot.
"""
import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from deployments.engine import certificates as certificate_work
from deployments.engine import events, logs
from deployments.engine import pipeline, queue
from deployments.engine import reconcile as reconciler
from deployments.traffic import changes

logger = logging.getLogger(__name__)


@shared_task(bind=True, ignore_result=True)
def run_deployment(self, deployment_id: int) -> None:
    app_id = pipeline.run(deployment_id, runner=self.request.id or "", hand_off=send_continuation)
    if app_id is not None:
        hand_over(app_id)


@shared_task(bind=True, ignore_result=True, queue=settings.WATCH_QUEUE)
def continue_deployment(self, deployment_id: int, handed_by: str) -> None:
    """A deployment's canary, switch, watch and drain, after run_deployment (task `handed_by`)
    verified it: on the watch worker (Procfile `watch`), so that minutes of watching never hold
    a deploy worker's slot that a build needs."""
    app_id = pipeline.resume(deployment_id, handed_by=handed_by, runner=self.request.id or "")
    if app_id is not None:
        hand_over(app_id)


def send_continuation(deployment_id: int, runner: str) -> bool:
    """False if the broker (Redis) cannot be reached: then run_deployment carries on itself."""
    try:
        continue_deployment.apply_async((deployment_id, runner), retry=False)
    except (OperationalError, ConnectionError, OSError, RedisError) as error:
        logger.warning("deployment #%s carries on in its deploy worker: the queue (Redis) is unreachable (%s)",
                       deployment_id, error)
        return False
    return True


def hand_over(app_id: int) -> None:
    """A deployment of the app ended: start what waited for it (the app's next, its owner's)."""
    for waiting in queue.next_to_start(app_id):
        send(waiting)


@shared_task(ignore_result=True, queue=settings.CONTROL_QUEUE)
def deployment_lost(deployment_id: int, runner: str) -> None:
    """The pool process running `runner` (a run_deployment or continue_deployment task) died: the worker's main process
    saw it (deployments/signals.py) and sent this at once. Reconcile ends the deployment that
    task ran, now rather than once its heartbeat is stale; then what waited for it starts."""
    app_id = reconciler.end_lost(deployment_id, runner)
    if app_id is not None:
        hand_over(app_id)


@shared_task(ignore_result=True, queue=settings.CONTROL_QUEUE)
def reconcile() -> list[str]:
    """Periodic (Celery beat, see settings), when a worker starts, and `manage.py reconcile`.
    Returns a line per thing it did."""
    actions = reconciler.reconcile()
    for deployment_id in queue.stranded():
        sent = send(deployment_id)
        actions.append(f"deployment #{deployment_id} was waiting: {'sent to a worker' if sent else 'Redis unreachable'}")
    return actions


@shared_task(ignore_result=True, queue=settings.CONTROL_QUEUE)
def prune_logs() -> int:
    """Periodic (Celery beat, see settings): old deployments' logs go (SWITCHYARD_LOG_RETENTION_DAYS)."""
    return logs.prune()


@shared_task(ignore_result=True)
def issue_certificate(certificate_id: int) -> str:
    return certificate_work.attempt(certificate_id)


@shared_task(ignore_result=True, queue=settings.CONTROL_QUEUE)
def certificates() -> int:
    """Periodic (Celery beat): the panel's certificate wanted or dropped as its domain says, then
    an attempt for every certificate due (wanted, to retry, to renew). Returns how many were sent."""
    if settings.SWITCHYARD["ACME_DIRECTORY"]:
        certificate_work.request_panel()
    due = certificate_work.due()
    for certificate_id in due:
        issue_certificate.delay(certificate_id)
    return len(due)


@shared_task(ignore_result=True, queue=settings.CONTROL_QUEUE)
def apply_certificates() -> None:
    """Put the certificates as the database has them (an upload, a removal) into HAProxy."""
    changes.apply_certificates()


def send_apply_certificates() -> None:
    """After an upload commits; if Redis is down, the next reconcile applies it."""
    transaction.on_commit(lambda: _quietly(apply_certificates))


@shared_task(ignore_result=True, queue=settings.CONTROL_QUEUE)
def apply_routing() -> None:
    """HAProxy's files and the running HAProxy brought to the database's apps and domains."""
    changes.apps_changed()


def send_apply_routing() -> None:
    """After apps or domains changed (panel, API, CLI, admin), once the transaction commits. The
    web process has neither HAProxy's files nor its admin socket, so a worker does it; if Redis
    is down, the next reconcile does."""
    transaction.on_commit(lambda: _quietly(apply_routing))


@shared_task(ignore_result=True)
def remove_app_resources(app_name: str, deployment_ids: list[int], stop_timeout: int, image_repository: str,
                         app_id: int | None = None) -> None:
    """On the deployments' queue, not the control one: stopping containers takes their stop
    timeout, and routing changes must not wait for that. If this never runs (Redis down), the
    periodic reconcile removes the containers and the network."""
    reconciler.remove_deleted_app(app_name, deployment_ids, stop_timeout, image_repository, app_id)


def send_remove_app_resources(app, app_id: int, deployment_ids: list[int]) -> None:
    """After an app's rows were deleted (call inside that transaction, with the ids it had)."""
    args = (app.name, deployment_ids, app.stop_timeout, app.image_repository(), app_id)
    transaction.on_commit(lambda: _quietly(remove_app_resources, args))


def request_certificate(app) -> None:
    """After an app's domains changed: if its certificate is wanted now, a worker gets it once
    the transaction commits (and the periodic task does, if Redis is down at that moment)."""
    if certificate_work.request(app) and settings.SWITCHYARD["ACME_DIRECTORY"]:
        transaction.on_commit(_send_certificates)


def _send_certificates() -> None:
    _quietly(certificates)


def _quietly(task, args: tuple = ()) -> None:
    """Send a task that a periodic one would also do in time: if Redis is down, it waits for that."""
    try:
        task.apply_async(args, retry=False)
    except (OperationalError, ConnectionError, OSError, RedisError) as error:
        logger.warning("%s waits for the periodic work: the queue (Redis) is unreachable (%s)", task.name, error)


def send_deployment_lost(deployment_id: int, runner: str) -> None:
    """From the worker's main process (deployments/signals.py); if Redis is down, reconcile ends
    the deployment once its heartbeat is stale."""
    _quietly(deployment_lost, (deployment_id, runner))


def dispatch(deployment_id: int) -> None:
    """Hand a new deployment to a worker once the transaction that created it commits."""
    transaction.on_commit(lambda: send(deployment_id))


def send(deployment_id: int) -> bool:
    """Queue the task; False if the broker (Redis) cannot be reached. The deployment stays
    queued in the database and the periodic reconcile sends it again once Redis is back."""
    try:
        run_deployment.apply_async((deployment_id,), retry=False)
        queue.mark_sent(deployment_id)
    except (OperationalError, ConnectionError, OSError, RedisError) as error:
        logger.warning("deployment #%s waits: the queue (Redis) is unreachable (%s)", deployment_id, error)
        return False
    return True


# Deploy events (engine/events.py) --------------------------------------------------------------

@shared_task(ignore_result=True, queue=settings.EVENTS_QUEUE)
def send_event(delivery_id: int) -> None:
    """One attempt; a failed one comes back after its backoff (and the periodic task would find
    it anyway). On a queue of its own: a receiver that never answers holds up only events."""
    retry_in = events.attempt(delivery_id)
    if retry_in is not None:
        try:
            send_event.apply_async((delivery_id,), countdown=retry_in, retry=False)
        except (OperationalError, ConnectionError, OSError, RedisError):
            pass  # send_due_events finds it when it is due


@shared_task(ignore_result=True, queue=settings.CONTROL_QUEUE)
def send_due_events() -> int:
    """Periodic (Celery beat): deliveries whose time has come that nobody sent."""
    due = events.due()
    for delivery_id in due:
        _quietly(send_event, (delivery_id,))
    return len(due)


@receiver(events.deliveries_recorded)
def _send_recorded(sender, ids: list[int], **kwargs) -> None:
    for delivery_id in ids:
        _quietly(send_event, (delivery_id,))
