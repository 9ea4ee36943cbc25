"""Test-side handle on the running Switchyard: create apps, deploy, wait, send requests."""
import http.client
import io
import time

from django.conf import settings
from django.core.management import call_command
from django.db.models import Q

from deployments import services
from deployments.audit import Actor
from deployments.models import App, Deployment
from deployments.traffic import target
from tests.apprepo import AppRepo
from tests.load import Load

TEST_ACTOR = Actor.cli("test")
SPEC_FIELDS = {"branch", "dockerfile", "compose_file", "web_service", "port", "health_path", "domains", "env", "replicas", "zero_downtime"}


def eventually(check, what: str, timeout: float, interval: float = 0.05):
    """check()'s first truthy answer, asked every `interval` seconds; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(interval)
    return answer


class Stack:
    @property
    def port(self) -> int:
        return settings.SWITCHYARD["HTTP_BIND"][1]

    def create_app(self, repo: AppRepo, name: str = "web", **fields) -> App:
        """Fields of AppSpec go through create_app; other App fields (e.g. health_deadline)
        are set afterwards, as the panel's settings form would."""
        spec = {k: v for k, v in fields.items() if k in SPEC_FIELDS}
        app = services.create_app(services.AppSpec(name=name, repo_url=repo.url, **spec), TEST_ACTOR)
        extra = {k: v for k, v in fields.items() if k not in SPEC_FIELDS}
        if extra:
            App.objects.filter(pk=app.pk).update(**extra)
            app.refresh_from_db()
        return app

    def deploy(self, app: App, ref: str | None = None) -> Deployment:
        return services.deploy(app, ref, TEST_ACTOR)

    def wait(self, deployment: Deployment, timeout: float = 120) -> Deployment:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            deployment.refresh_from_db()
            if deployment.is_final:
                self._wait_for_outcome_line(deployment)
                return deployment
            time.sleep(0.1)
        raise TimeoutError(f"deployment #{deployment.id} still {deployment.state}/{deployment.phase} after {timeout}s")

    @staticmethod
    def _wait_for_outcome_line(deployment: Deployment, timeout: float = 5) -> None:
        """The pipeline stores its last lines ("Deployment failed: …") just after the state: a test
        that reads the log once the state is final must not read it in between. A deployment
        ended by reconcile has no such line; after `timeout` the log is what it is."""
        if not deployment.phase:  # ended while queued (cancelled, superseded): no pipeline ran
            return
        state = deployment.state
        outcome = Q(text__startswith=f"Deployment {state}") | Q(text__startswith="reconcile:", text__endswith=f"marked {state}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if deployment.log_lines.filter(outcome).exists():
                return
            time.sleep(0.05)

    def wait_for_state(self, deployment: Deployment, state: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            deployment.refresh_from_db()
            if deployment.state == state:
                return
            time.sleep(0.05)
        raise TimeoutError(f"deployment #{deployment.id} never reached {state} (is {deployment.state})")

    def wait_for_state_phase(self, deployment: Deployment, phase: str, percent: int | None = None,
                             timeout: float = 120) -> None:
        """Until the deployment runs `phase` (and, in a canary, gives the new release `percent`)."""
        def reached() -> bool:
            deployment.refresh_from_db()
            if deployment.is_final:
                raise AssertionError(f"deployment #{deployment.id} ended {deployment.state}: {deployment.error}")
            return deployment.phase == phase and (percent is None or deployment.canary_percent == percent)
        self.eventually(reached, f"deployment #{deployment.id} in {phase}" + (f" at {percent}%" if percent else ""),
                        timeout)

    def deploy_and_wait(self, app: App, ref: str | None = None) -> Deployment:
        return self.wait(self.deploy(app, ref))

    @staticmethod
    def eventually(check, what: str, timeout: float = 10):
        """For what a worker does after the web process answered (routing, removal). The timeout
        is far beyond the ~0.1 s it takes on this machine."""
        return eventually(check, what, timeout)

    @staticmethod
    def reconcile(timeout: float = 30) -> str:
        """`manage.py reconcile`'s output from a run that did the work. A run that meets the
        worker's periodic one does nothing and says so (it may not have finished yet), so this
        waits and runs again."""
        deadline = time.monotonic() + timeout
        while True:
            output = io.StringIO()
            call_command("reconcile", stdout=output)
            if "another reconcile is under way" not in output.getvalue() or time.monotonic() > deadline:
                return output.getvalue()
            time.sleep(0.2)

    def wait_until_routed(self, app_name: str) -> None:
        """After an app was created: until the worker has put it into HAProxy's map."""
        self.eventually(lambda: f"{app_name}.localhost " in target.paths().hosts_map.read_text(),
                        f"the worker routes {app_name}")

    def get(self, host: str, path: str = "/") -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path, headers={"Host": host})
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace").strip()
        finally:
            connection.close()

    def load(self, host: str, **options) -> Load:
        return Load(self.port, host, **options)

    def wait_until_idle(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        active = [Deployment.State.QUEUED, Deployment.State.RUNNING]
        while Deployment.objects.filter(state__in=active).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
