"""An app's settings: which columns of App a user may change, and a new app's spec. The settings
form, the API's schemas and the CLI's options are derived from SETTINGS_FIELDS; types, defaults
and validation are the model's own fields'."""
from dataclasses import dataclass, field

# The app's settings a user may change, in the order the panel shows them.
SETTINGS_FIELDS = ("repo_url", "branch", "dockerfile", "compose_file", "web_service", "port", "health_path",
                   "health_status", "health_timeout", "health_deadline", "health_host", "replicas", "stop_timeout",
                   "watch_window",
                   "watch_error_percent", "watch_min_requests", "canary_steps", "canary_step_seconds",
                   "canary_error_margin", "canary_latency_margin", "canary_min_requests", "release_command",
                   "memory_limit_mb", "cpu_limit", "pids_limit",
                   "capabilities", "build_timeout", "https_redirect", "hsts")

# Yes/no settings with an action of their own in the panel (not in the settings form).
SWITCHES = ("zero_downtime", "auto_deploy")


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
