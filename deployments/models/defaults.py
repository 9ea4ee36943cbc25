"""Column defaults read when a row is created, from the settings at that moment. Migrations name
them by their path (`deployments.models.default_watch_window`), so the package exports them."""
import secrets

from django.conf import settings


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def default_watch_window() -> int:
    return settings.SWITCHYARD["DEFAULT_WATCH_WINDOW"]


def default_memory_mb() -> int:
    return settings.SWITCHYARD["DEFAULT_MEMORY_MB"]


def default_cpus() -> float:
    return settings.SWITCHYARD["DEFAULT_CPUS"]


def default_pids() -> int:
    return settings.SWITCHYARD["DEFAULT_PIDS"]


def default_build_timeout() -> int:
    return settings.SWITCHYARD["BUILD_TIMEOUT"]


def default_canary_step_seconds() -> int:
    return settings.SWITCHYARD["DEFAULT_CANARY_STEP_SECONDS"]
