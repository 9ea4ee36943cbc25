"""Celery tasks: thin wrappers that take ids and call the engine. Safe to run twice."""
from celery import shared_task

from deployments.engine import pipeline
from deployments.engine import reconcile as reconciler


@shared_task(acks_late=True, ignore_result=True)
def run_deployment(deployment_id: int) -> None:
    pipeline.run(deployment_id)


@shared_task(ignore_result=True)
def reconcile() -> None:
    reconciler.reconcile()
