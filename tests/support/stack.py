"""Test-side handle on the running Switchyard: create apps, deploy, wait, send requests."""
import http.client
import io

from django.conf import settings
from django.core.management import call_command

from deployments.application import apps, deploys
from deployments.application.app_settings import AppSpec
from deployments.audit import Actor
from deployments.models import App, Deployment
from deployments.traffic import target
from tests.support.apprepo import AppRepo
from tests.support.eventually import eventually
from tests.support.load import Load

TEST_ACTOR = Actor.cli("test")
SPEC_FIELDS = {"branch", "dockerfile", "compose_file", "web_service", "port", "health_path", "domains", "env", "replicas", "zero_downtime"}


LOAD_PACE = 0.02  # seconds between the starts of a load thread's requests: 4 threads, up to 200 a second


class Stack:
    @property
    def port(self) -> int:
        return settings.SWITCHYARD["HTTP_BIND"][1]

    def create_app(self, repo: AppRepo, name: str = "web", **fields) -> App:
        """Fields of AppSpec go through create_app; other App fields (e.g. health_deadline)
        are set afterwards, as the panel's settings form would."""
        spec = {k: v for k, v in fields.items() if k in SPEC_FIELDS}
        app = apps.create_app(AppSpec.of(name=name, repo_url=repo.url, **spec), actor=TEST_ACTOR)
        extra = {k: v for k, v in fields.items() if k not in SPEC_FIELDS}
        if extra:
            App.objects.filter(pk=app.pk).update(**extra)
            app.refresh_from_db()
        return app

    def deploy(self, app: App, ref: str | None = None) -> Deployment:
        return deploys.deploy(app, ref=ref, actor=TEST_ACTOR)

    def wait(self, deployment: Deployment, timeout: float = 120) -> Deployment:
        def ended() -> bool:
            deployment.refresh_from_db()
            return deployment.is_final
        eventually(ended, lambda: f"deployment #{deployment.id} ending (still {deployment.state}/{deployment.phase})",
                   timeout, interval=0.1)
        self._wait_for_outcome_line(deployment)
        return deployment

    @staticmethod
    def _wait_for_outcome_line(deployment: Deployment, timeout: float = 5) -> None:
        """A test that reads the log once the state is final must not read it before the lines
        stored just after (Deployment.log_complete). After `timeout` the log is what it is."""
        try:
            eventually(deployment.log_complete, "the outcome line", timeout)
        except TimeoutError:
            pass

    def wait_for_state(self, deployment: Deployment, state: str, timeout: float = 60) -> None:
        def reached() -> bool:
            deployment.refresh_from_db()
            return deployment.state == state
        eventually(reached, lambda: f"deployment #{deployment.id} reaching {state} (is {deployment.state})", timeout)

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

    def deploy_live(self, app: App, ref: str | None = None) -> Deployment:
        """A deploy a test builds on: it must succeed, and if it does not, the failure says why
        (its error and the end of its log), not a later assertion on what the app answers."""
        deployment = self.deploy_and_wait(app, ref)
        if deployment.state != Deployment.State.SUCCEEDED:
            tail = list(deployment.log_lines.order_by("-id").values_list("text", flat=True)[:20])[::-1]
            raise AssertionError(f"deployment #{deployment.id} ended {deployment.state}: {deployment.error}\n"
                                 + "\n".join(tail))
        return deployment

    @staticmethod
    def eventually(check, what: str, timeout: float = 10):
        """For what a worker does after the web process answered (routing, removal). The timeout
        is far beyond the ~0.1 s it takes on this machine."""
        return eventually(check, what, timeout)

    @staticmethod
    def reconcile(timeout: float = 30) -> str:
        """`manage.py reconcile`'s output from a run that did the work. A run that meets the
        worker's periodic one does nothing and says so (it may not have finished yet), so this
        waits and runs again; after `timeout`, the last run's output is the answer."""
        outputs = []

        def run() -> str | None:
            output = io.StringIO()
            call_command("reconcile", stdout=output)
            outputs.append(output.getvalue())
            return outputs[-1] if "another reconcile is under way" not in outputs[-1] else None
        try:
            return eventually(run, "a reconcile that did the work", timeout, interval=0.2)
        except TimeoutError:
            return outputs[-1]

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
        """A load through HAProxy; each of its threads sends up to 50 requests a second (load.py)."""
        return Load(self.port, host, **{"pace": LOAD_PACE, **options})

    def wait_until_idle(self, timeout: float = 120) -> None:
        """Until no deployment is queued or running; after `timeout` the teardown goes on anyway."""
        active = [Deployment.State.QUEUED, Deployment.State.RUNNING]
        try:
            eventually(lambda: not Deployment.objects.filter(state__in=active).exists(), "idle", timeout, interval=0.1)
        except TimeoutError:
            pass
