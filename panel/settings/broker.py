"""What goes through Redis: Celery's broker, its queues and the task routes, the periodic tasks beat
sends, Channels' layer, Django's cache."""
from panel.env import env_int, env_str
from panel.settings.paths import DATA_DIR
from panel.settings.switchyard import SWITCHYARD

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
# The broker as the fleet's hosts reach it (deployments/fleet/): the command that starts a host's
# agent carries it, with the host's own user and credential. The panel machine's private address,
# where REDIS_URL may be its loopback.
FLEET_BROKER_URL = env_str("SWITCHYARD_FLEET_BROKER_URL", REDIS_URL)
CELERY_TASK_ACKS_LATE = False  # on purpose: see deployments/tasks.py
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker takes a task only when a pool process is free: none waits unacknowledged in a busy
# worker (where a lost broker connection would make kombu restore it: see deployments/tasks.py).
CELERY_WORKER_DISABLE_PREFETCH = True
CELERY_TASK_DEFAULT_QUEUE = env_str("SWITCHYARD_QUEUE", "switchyard")
# Short work the web process hands over (it has neither Docker nor HAProxy's files) goes to a
# queue of its own, served by its own worker (Procfile `control`): it never waits behind builds.
CONTROL_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-control"
# Deploy events go to users' addresses, which may be slow: a queue and a worker of their own
# (Procfile `events`), so routing changes never wait behind them.
EVENTS_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-events"
# A deployment past verify (canary, switch, watch, drain: minutes of polling) carries on in a task
# on a queue of its own (Procfile `watch`), so that long watches never hold the slots builds need.
WATCH_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-watch"
# Each task's queue, by the task's name: tasks are sent by name (deployments/enqueue.py), and the
# rest (run_deployment, issue_certificate, remove_app_resources) go to the default queue.
CELERY_TASK_ROUTES = {
    "deployments.tasks.continue_deployment": {"queue": WATCH_QUEUE},
    "deployments.tasks.send_event": {"queue": EVENTS_QUEUE},
    **{f"deployments.tasks.{name}": {"queue": CONTROL_QUEUE}
       for name in ("deployment_lost", "reconcile", "prune_logs", "certificates", "apply_certificates",
                    "apply_routing", "send_due_events", "fleet_heartbeats")},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}},
}


# Periodic work, all of it here. Beat is a process of its own (Procfile `beat`, compose service
# `beat`), restarted by its supervisor when it dies; every task is safe to run twice. The tasks go
# to CONTROL_QUEUE, never behind builds (named here too: beat may send a task by its name alone);
# one not started within its interval expires, since the next is due by then: a stalled worker
# finds one of each waiting, not a backlog.
def _periodic(task: str, seconds: float) -> dict:
    return {"task": f"deployments.tasks.{task}", "schedule": seconds,
            "options": {"queue": CONTROL_QUEUE, "expires": seconds}}


CELERY_BEAT_SCHEDULE = {
    # Ends deployments whose worker died, revives live containers, keeps HAProxy equal to the
    # database, repairs the egress rules.
    "reconcile": _periodic("reconcile", float(env_int("SWITCHYARD_RECONCILE_INTERVAL", 15, minimum=1, maximum=86400))),
    # Deploy events due (retries; any the worker missed at once).
    "events": _periodic("send_due_events", float(SWITCHYARD["EVENT_INTERVAL"])),
    # Issue, renew and retry certificates (docs/https.md, "Renewal").
    "certificates": _periodic("certificates", float(SWITCHYARD["CERTIFICATE_INTERVAL"])),
    # Delete the logs of deployments older than SWITCHYARD_LOG_RETENTION_DAYS (docs/security-model.md, "Logs").
    "prune-logs": _periodic("prune_logs", 3600.0),
    # The fleet's hosts: suspect after 10 s without a heartbeat, down after 30 s (fleet/heartbeats.py).
    "fleet-heartbeats": _periodic("fleet_heartbeats", 2.0),
}

# Django's cache (webhook rejection budgets) lives in Redis, shared by every web worker.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"switchyard-{SWITCHYARD['INSTANCE']}",
    },
}
