"""The three ways of deploying, as the hard cases use them: each makes the deployers of its
apps behind one proxy, and creates and deletes other apps (each a config change and a reload
of that proxy)."""
from pathlib import Path

from django.conf import settings

from bench.deployers import NginxDeployer, NginxFront, SwitchyardDeployer
from bench.services import free_port
from deployments.application import apps
from deployments.application.app_settings import AppSpec
from deployments.audit import Actor

WATCH_WINDOW = 2  # Switchyard zero-downtime: long enough to see a bad release, short for the clock
UNUSED_ADDRESS = ("127.0.0.1", 9)  # an app created but never deployed: nothing answers there


class SwitchyardMethod:
    def __init__(self, zero_downtime: bool) -> None:
        self.zero_downtime = zero_downtime
        self.name = "Switchyard zero-downtime" if zero_downtime else "Switchyard recreate"
        self.port = settings.SWITCHYARD["HTTP_BIND"][1]
        self.prefix = "zd" if zero_downtime else "rc"

    def deployer(self, repo, name: str, **options) -> SwitchyardDeployer:
        return SwitchyardDeployer(repo, f"{self.prefix}-{name}", self.zero_downtime,
                                  WATCH_WINDOW if self.zero_downtime else 0, **options)

    def create_other(self, name: str, repo_url: str) -> None:
        """An app created through Switchyard: the control worker adds its backends (a reload)."""
        apps.create_app(AppSpec.of(name=f"{self.prefix}-{name}", repo_url=repo_url), actor=Actor.cli("bench"))

    def delete_other(self, name: str) -> None:
        apps.delete_app(f"{self.prefix}-{name}", actor=Actor.cli("bench"))

    def close(self) -> None:
        pass


class DokkuMethod:
    name = "Dokku's method (nginx reload)"
    prefix = "dk"

    def __init__(self, workdir: Path) -> None:
        self.front = NginxFront(workdir, free_port())
        self.port = self.front.port

    def deployer(self, repo, name: str, health_path: str = "/cgi-bin/health", env: dict | None = None,
                 stop_timeout: int = 10) -> NginxDeployer:
        return NginxDeployer(repo, f"{self.prefix}-{name}", self.front, health_path, env, stop_timeout)

    def create_other(self, name: str, repo_url: str) -> None:
        self.front.route(f"{self.prefix}-{name}", UNUSED_ADDRESS)

    def delete_other(self, name: str) -> None:
        self.front.remove(f"{self.prefix}-{name}")

    def close(self) -> None:
        self.front.close()
