"""Celery tasks: the edge between Celery and the engine, run by the workers. Tasks take ids,
re-read rows, and are safe to run twice. Nothing imports this module to send one: tasks are sent
by name from deployments/enqueue.py, so what sends never loads what runs (the engine, Docker).

Tasks are acknowledged when they start (Celery's default, not acks_late), on purpose:
- Redelivery is not what ends a deployment whose worker died: the periodic reconcile does
  (heartbeat older than SWITCHYARD_HEARTBEAT_TIMEOUT), and it sends the app's next queued
  deployment again (queue.stranded). A redelivered run_deployment could only find its
  deployment claimed already, so acks_late would buy nothing.
- acks_late costs a worker: with kombu 5.7's Redis transport a worker whose broker goes away
  while it holds an unacknowledged task restores that task through a client the reconnect has
  already cleared, logs "Unrecoverable error" and exits (tests/faults/test_faults.py stops Redis
  during a build to show it does not happen any more).
A task that was taken but never got as far as the claim (its process killed at that moment)
is found the same way: its note in Redis expires and reconcile sends the deployment again.

What the web process changes reaches HAProxy and Docker as tasks: apply_routing,
apply_certificates and remove_app_resources. Deploy events (send_event) go out from a worker too.
The first two go to settings.CONTROL_QUEUE (see settings.CELERY_TASK_ROUTES), which its own
worker serves (Procfile `control`), so a domain change never waits behind a build; so do the
periodic tasks (reconcile, certificates, prune_logs, send_due_events: beat sends them, with an
expiry of one interval) and deployment_lost, which would otherwise wait for a deploy slot while
every slot builds, and end a dead worker's deployment only once the builds are done.
A deployment with a canary or a watch carries on after verify (or the switch) in continue_deployment, on
settings.WATCH_QUEUE (Procfile `watch`), so minutes of watching never hold a build's slot.
"""

import logging

from celery import shared_task
from django.conf import settings

from deployments import enqueue
from deployments.certificates import app_certificates as certificate_work
from deployments.engine import logs, pipeline, queue
from deployments.engine import reconcile as reconciler
from deployments.fleet import credentials as fleet_credentials
from deployments.fleet import heartbeats
from deployments.outgoing import events
from deployments.traffic import changes

logger = logging.getLogger(__name__)


@shared_task(bind=True, ignore_result=True)
def run_deployment(self, deployment_id: int) -> None:
    app_id = pipeline.run(deployment_id, runner=self.request.id or "", hand_off=enqueue.send_continuation)
    if app_id is not None:
        enqueue.hand_over(app_id)


@shared_task(bind=True, ignore_result=True)
def continue_deployment(self, deployment_id: int, handed_by: str) -> None:
    """A deployment's canary, switch, watch and drain, after run_deployment (task `handed_by`)
    verified it: on the watch worker (Procfile `watch`), so that minutes of watching never hold
    a deploy worker's slot that a build needs."""
    app_id = pipeline.resume(deployment_id, handed_by=handed_by, runner=self.request.id or "")
    if app_id is not None:
        enqueue.hand_over(app_id)


@shared_task(ignore_result=True)
def deployment_lost(deployment_id: int, runner: str) -> None:
    """The pool process running `runner` (a run_deployment or continue_deployment task) died: the worker's main process
    saw it (deployments/signals.py) and sent this at once. Reconcile ends the deployment that
    task ran, now rather than once its heartbeat is stale; then what waited for it starts."""
    app_id = reconciler.end_lost(deployment_id, runner)
    if app_id is not None:
        enqueue.hand_over(app_id)


@shared_task(ignore_result=True)
def reconcile() -> list[str]:
    """Periodic (Celery beat, see settings), when a worker starts, and `manage.py reconcile`.
    Returns a line per thing it did."""
    actions = reconciler.reconcile()
    for deployment_id in queue.stranded():
        sent = enqueue.send(deployment_id)
        actions.append(f"deployment #{deployment_id} was waiting: {'sent to a worker' if sent else 'Redis unreachable'}")
    return actions


@shared_task(ignore_result=True)
def fleet_heartbeats() -> None:
    """Periodic (beat, every few seconds): the hosts' heartbeats read and their states judged;
    their broker users set again (Redis keeps ACL users in memory only: a restarted Redis has
    lost them, and a revoked host's stays off)."""
    fleet_credentials.apply_all()
    heartbeats.read_all()


@shared_task(ignore_result=True)
def prune_logs() -> int:
    """Periodic (Celery beat, see settings): old deployments' logs go (SWITCHYARD_LOG_RETENTION_DAYS)."""
    return logs.prune()


@shared_task(ignore_result=True)
def issue_certificate(certificate_id: int) -> str:
    return certificate_work.attempt(certificate_id)


@shared_task(ignore_result=True)
def certificates() -> int:
    """Periodic (Celery beat): the panel's certificate wanted or dropped as its domain says, then
    an attempt for every certificate due (wanted, to retry, to renew). Returns how many were sent."""
    if settings.SWITCHYARD["ACME_DIRECTORY"]:
        certificate_work.request_panel()
    due = certificate_work.due()
    for certificate_id in due:
        enqueue.send_issue_certificate(certificate_id)
    return len(due)


@shared_task(ignore_result=True)
def apply_certificates() -> None:
    """Put the certificates as the database has them (an upload, a removal) into HAProxy."""
    changes.apply_certificates()


@shared_task(ignore_result=True)
def apply_routing() -> None:
    """HAProxy's files and the running HAProxy brought to the database's apps and domains."""
    changes.apps_changed()


@shared_task(ignore_result=True)
def remove_app_resources(app_name: str, deployment_ids: list[int], stop_timeout: int, image_repository: str,
                         app_id: int | None = None) -> None:
    """On the deployments' queue, not the control one: stopping containers takes their stop
    timeout, and routing changes must not wait for that. If this never runs (Redis down), the
    periodic reconcile removes the containers and the network."""
    reconciler.remove_deleted_app(app_name, deployment_ids, stop_timeout, image_repository, app_id)


# Deploy events (outgoing/events.py) ------------------------------------------------------------

@shared_task(ignore_result=True)
def send_event(delivery_id: int) -> None:
    """One attempt; a failed one comes back after its backoff (and the periodic task would find
    it anyway). On a queue of its own: a receiver that never answers holds up only events."""
    retry_in = events.attempt(delivery_id)
    if retry_in is not None:
        enqueue.send_event(delivery_id, countdown=retry_in)


@shared_task(ignore_result=True)
def send_due_events() -> int:
    """Periodic (Celery beat): deliveries whose time has come that nobody sent."""
    due = events.due()
    for delivery_id in due:
        enqueue.send_event(delivery_id)
    return len(due)
