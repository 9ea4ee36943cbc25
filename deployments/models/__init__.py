"""The models, one module per aggregate: an app and what only it has (apps.py), its deployments
(deployments.py), webhook deliveries in and deploy events out (deliveries.py), what belongs to a
user and the audit log (accounts.py), HTTPS certificates (certificates.py), the fleet's hosts
(hosts.py).

The database is the truth: HAProxy's config, map and runtime state, and which containers should
exist, are all derived from these rows (see traffic/rows.py and engine/reconcile.py). The rest of
the code imports from here (`from deployments.models import App`), and the migrations name the
column defaults and our own fields by their path here, so those are listed too.
"""
from deployments.models.accounts import ApiToken, AuditEvent, Quota
from deployments.models.apps import App, Domain, EnvVar, Membership
from deployments.models.certificates import AcmeAccount, Certificate
from deployments.models.defaults import (
    default_build_timeout,
    default_canary_step_seconds,
    default_cpus,
    default_memory_mb,
    default_pids,
    default_watch_window,
    new_secret,
)
from deployments.models.deliveries import EVENTS, EventDelivery, NotificationTarget, WebhookDelivery, all_events
from deployments.models.deployments import Deployment, LogLine
from deployments.models.hosts import Host
from deployments.models.fields import ContainerListField, PercentStepsField, ServiceListField

__all__ = [
    "AcmeAccount", "ApiToken", "App", "AuditEvent", "Certificate", "Deployment", "Domain", "EnvVar", "EventDelivery",
    "Host", "LogLine", "Membership", "NotificationTarget", "Quota", "WebhookDelivery",
    "EVENTS", "all_events",
    "ContainerListField", "PercentStepsField", "ServiceListField",
    "default_build_timeout", "default_canary_step_seconds", "default_cpus", "default_memory_mb", "default_pids",
    "default_watch_window", "new_secret",
]
