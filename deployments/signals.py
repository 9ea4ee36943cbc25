"""Worker start-up: egress rules in place, then HAProxy and the containers made to match the
database before any deploy runs."""
from celery.signals import worker_init, worker_ready


@worker_init.connect
def egress_rules_on_worker_start(sender, **kwargs) -> None:
    """A worker starts containers and builds: never without the rules that keep them off the host
    (a failure here stops the worker, with the reason)."""
    from deployments.engine import egress

    try:
        repaired = egress.ensure()
    except egress.EgressError as error:
        # Celery only logs what a signal handler raises; SystemExit does stop the worker.
        raise SystemExit(f"the worker does not start without its egress rules: {error}") from None
    if repaired:
        print("egress rules repaired: " + "; ".join(repaired), flush=True)


@worker_ready.connect
def reconcile_on_worker_start(sender, **kwargs) -> None:
    from deployments.tasks import reconcile

    reconcile.delay()
