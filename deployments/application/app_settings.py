"""An app's settings schema, defined once: which columns of App a user may change, which are asked
when an app is created, their labels and help. The settings form, the API's schemas and the CLI's
options are all derived from it; types, defaults and validation are the model's own fields'."""
from dataclasses import dataclass, field

from deployments.models import App

# The app's settings a user may change, in the order the panel shows them.
SETTINGS_FIELDS = ("repo_url", "branch", "dockerfile", "compose_file", "web_service", "compose_profiles", "port",
                   "health_path", "health_status", "health_timeout", "health_deadline", "health_host", "replicas", "stop_timeout",
                   "watch_window",
                   "watch_error_percent", "watch_min_requests", "canary_steps", "canary_step_seconds",
                   "canary_error_margin", "canary_latency_margin", "canary_min_requests", "release_command",
                   "memory_limit_mb", "cpu_limit", "pids_limit",
                   "capabilities", "build_timeout", "https_redirect", "hsts")

# Asked for by name when an app is created (the panel's form, the API's AppIn, `manage.py apps
# create`), each with the model's default; the other settings may be given too, else the default.
ASKED_AT_CREATE = ("repo_url", "branch", "dockerfile", "compose_file", "web_service", "port", "health_path")

# Yes/no settings with an action of their own in the panel (not in the settings form).
SWITCHES = ("zero_downtime", "auto_deploy")

LABELS = {"repo_url": "Git repository", "health_status": "Expected status",
          "health_timeout": "Probe timeout (s)", "health_deadline": "Health deadline (s)",
          "health_host": "Health check Host header", "stop_timeout": "Stop timeout (s)",
          "watch_window": "Watch window (s)", "watch_error_percent": "Roll back above this % of 5xx",
          "watch_min_requests": "…once this many requests were served", "memory_limit_mb": "Memory (MiB)",
          "cpu_limit": "CPUs", "pids_limit": "Processes", "capabilities": "Capabilities",
          "build_timeout": "Build timeout (s)", "https_redirect": "Redirect HTTP to HTTPS",
          "hsts": "HSTS (Strict-Transport-Security)", "compose_file": "Compose file",
          "web_service": "Web service", "compose_profiles": "Compose profiles", "canary_steps": "Canary steps (%)",
          "canary_step_seconds": "Canary step (s)", "canary_error_margin": "Canary: more 5xx allowed (points)",
          "canary_latency_margin": "Canary: slower p95 allowed (%)",
          "canary_min_requests": "Canary: requests before comparing", "release_command": "Release command"}

# Help for the settings whose column has none.
HELP = {"repo_url": "git URL (the CLI and superusers: also an absolute path)",
        "port": "the port the app (a Compose app's web service) listens on in its container"}

PYTHON_TYPES = {"CharField": str, "PositiveIntegerField": int, "FloatField": float, "BooleanField": bool,
                "JSONField": list[int]}  # canary_steps


def python_type(name: str) -> type:
    return PYTHON_TYPES[App._meta.get_field(name).get_internal_type()]


def default(name: str):
    return App._meta.get_field(name).get_default()


def help_text(name: str) -> str | None:
    return str(App._meta.get_field(name).help_text) or HELP.get(name)


@dataclass(frozen=True)
class AppSpec:
    """A new app: its name, repository, domains and environment, and the settings that differ
    from the model's defaults (any of SETTINGS_FIELDS but repo_url)."""
    name: str
    repo_url: str
    domains: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    zero_downtime: bool = True
    settings: dict = field(default_factory=dict)

    @classmethod
    def of(cls, *, name: str, repo_url: str, domains=(), env=None, zero_downtime: bool = True,
           settings: dict | None = None, **more_settings) -> "AppSpec":
        """A spec from keyword values, as callers have them (settings as a dict, as keywords or
        both); a None setting takes the model's default."""
        settings = {**(settings or {}), **more_settings}
        unknown = set(settings) - set(SETTINGS_FIELDS)
        if unknown:
            raise TypeError(f"not settings of an app: {', '.join(sorted(unknown))}")
        return cls(name=name, repo_url=repo_url, domains=list(domains), env=dict(env or {}),
                   zero_downtime=zero_downtime,
                   settings={key: value for key, value in settings.items() if value is not None})
