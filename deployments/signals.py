"""Worker start-up: egress rules in place, build cgroups a killed worker left removed, then HAProxy
and the containers made to match the database before any deploy runs. A pool process lost in the middle of a deployment: its
deployment is ended at once. A new network: the egress rules learn its bridge before any container joins it."""
from billiard.exceptions import WorkerLostError
from celery.signals import task_failure, worker_init, worker_ready

from deployments.dockerd.network_events import network_created


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


def _egress_rules_know_the_new_bridge(sender, bridge: str, **kwargs) -> None:
    """Its containers reach each other only once the rules have its bridge (engine/egress.py)."""
    from deployments.engine import egress

    egress.ensure()


network_created.connect(_egress_rules_know_the_new_bridge, dispatch_uid="egress-rules-new-bridge")


@worker_ready.connect
def sweep_build_cgroups_on_worker_start(sender, **kwargs) -> None:
    """A worker killed mid-build leaves its build's parent cgroup (or systemd slice) behind."""
    from deployments.dockerd import builds

    try:
        swept = builds.sweep_build_cgroups()
    except Exception as error:  # Docker unreachable for now: the worker still starts, builds make new ones
        print(f"build cgroups not swept: {error}", flush=True)
        return
    if swept:
        print("build cgroups a killed worker left removed: " + ", ".join(swept), flush=True)


@worker_ready.connect
def reconcile_on_worker_start(sender, **kwargs) -> None:
    from deployments.tasks import reconcile

    reconcile.delay()


@task_failure.connect
def end_a_lost_deployment(sender=None, task_id: str = "", exception=None, args=(), kwargs=None, **rest) -> None:
    """In the worker's main process, when the pool process running a task died (SIGKILL, the
    out-of-memory killer): for a deployment, a task ends it now (reconcile's path for a dead
    worker) instead of after its heartbeat goes stale. Only the main process can see this: the
    pool process is gone, and the main one must not block on the database, so it sends a task."""
    from deployments import enqueue

    deployment_tasks = (enqueue.task("run_deployment"), enqueue.task("continue_deployment"))
    if isinstance(exception, WorkerLostError) and sender is not None and sender.name in deployment_tasks:
        deployment_id = args[0] if args else (kwargs or {}).get("deployment_id")
        if deployment_id is not None:
            enqueue.send_deployment_lost(deployment_id, task_id)
