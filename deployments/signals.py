"""Worker start-up: make HAProxy and the containers match the database before any deploy runs."""
from celery.signals import worker_ready


@worker_ready.connect
def reconcile_on_worker_start(sender, **kwargs) -> None:
    from deployments.tasks import reconcile

    reconcile.delay()
