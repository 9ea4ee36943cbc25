"""Periodic work and lost worker processes, under `manage.py supervise` as `make run` runs it: the
Procfile's worker, watch, control, events and beat processes, each restarted by supervisord when
it exits. The out-of-memory kill of issue 22: every child process of the worker running the
deployment (its pool: the deploy worker's in a build, the watch worker's in a watch) and the beat
process SIGKILLed. The deployment ends at once (the
worker's main process sees its pool process lost), not after the heartbeat timeout (90 s here),
beat is started again, and the next deploy goes live. Periodic work goes to the control worker:
a reconcile runs while every deploy slot builds, and it puts back egress rules removed by hand."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from deployments import tasks
from deployments.engine import egress
from deployments.models import App, Deployment, LogLine
from panel.celery import app as celery_app
from tests.support import egress_table
from tests.support.apprepo import AppRepo
from tests.support.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(settings.DATA_DIR) / "supervisord.conf"
ENDS_WITHIN = 60  # seconds from the kill to the deployment's end (issue 22)
SLOW_BUILD = 'RUN ["/bin/busybox", "sleep", "30"]\n'
WATCH_WINDOW = 120
RECONCILE_INTERVAL = 2
ENV = {"DJANGO_SETTINGS_MODULE": "tests.support.settings", "SWITCHYARD_RECONCILE_INTERVAL": str(RECONCILE_INTERVAL),
       "SWITCHYARD_HEARTBEAT_TIMEOUT": "90"}
APP_NAME = f"periodic-{os.environ['SWITCHYARD_TEST_RUN']}"
# Every test of the module with the same database access: pytest-django orders tests by it, which
# would split the module in two and start `supervised` (two sets of workers swapped) twice.
pytestmark = pytest.mark.django_db(transaction=True)


class Supervised:
    """`manage.py supervise --only worker,watch,control,events,beat`, its output in a file."""

    log_path = Path(settings.DATA_DIR) / "supervised.log"

    def __init__(self) -> None:
        self.log_path.write_text("")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "supervise", "--only", "worker,watch,control,events,beat"], cwd=ROOT,
            env={**os.environ, **ENV}, stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT,
            start_new_session=True)
        eventually(lambda: self.log().count(" ready.") >= 4 or self.process.poll() is not None,
                   "the supervised workers did not start", 90, interval=0.2)
        assert self.process.poll() is None, self.log()[-3000:]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pid(self, program: str) -> int:
        answer = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(CONFIG), "pid", program],
                                capture_output=True, text=True, timeout=30)
        return int(answer.stdout.strip()) if answer.stdout.strip().isdigit() else 0

    def stop(self) -> None:
        """SIGTERM to supervisord, which stops every program (as Ctrl-C does)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def supervised(celery_worker):
    """Instead of the suite's worker for this module; the suite's again afterwards."""
    celery_worker.stop()
    processes = Supervised()
    try:
        yield processes
    finally:
        processes.stop()
        celery_worker.start()


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
        except (OSError, IndexError):
            continue
    return found


def _kill_worker_children_and_beat(supervised: Supervised, program: str) -> int:
    """As the out-of-memory killer might: every pool process of the worker `program`, and beat.
    Returns beat's pid."""
    worker, beat = supervised.pid(program), supervised.pid("beat")
    pool = _children(worker)
    assert worker and beat and pool, (worker, beat, pool)
    for pid in [*pool, beat]:
        os.kill(pid, signal.SIGKILL)
    return beat


def _wait_for_phase(deployment: Deployment, phase: str, timeout: float = 90) -> None:
    def reached() -> bool:
        deployment.refresh_from_db()
        assert not deployment.is_final, f"{deployment.state}: {deployment.error}"
        return deployment.phase == phase
    eventually(reached, f"deployment #{deployment.id} in {phase}", timeout)


def _beat_sends_again(supervised: Supervised, killed: int) -> None:
    """supervisord started beat again (another pid), and the new one sends the periodic tasks."""
    new = eventually(lambda: (pid := supervised.pid("beat")) not in (0, killed) and pid, "beat started again", 30)
    mark = supervised.log().count("Sending due task")
    eventually(lambda: supervised.log().count("Sending due task") > mark, f"beat (pid {new}) sends tasks", 30)
    assert "exited: beat (terminated by SIGKILL; not expected)" in supervised.log()


def _killed_in(stack, supervised: Supervised, app: App, phase: str) -> tuple[Deployment, int]:
    """Deploy, kill the pool of the worker running it and beat once the deployment is in `phase`;
    the deployment as it ended (within ENDS_WITHIN), and beat's pid as it was."""
    deployment = stack.deploy(app)
    _wait_for_phase(deployment, phase)
    beat = _kill_worker_children_and_beat(supervised, "watch" if phase == "watch" else "worker")
    killed_at = timezone.now()
    try:
        deployment = stack.wait(deployment, timeout=ENDS_WITHIN)
    except TimeoutError:
        lines = [line for line in supervised.log().splitlines() if "lost" in line.lower() or "ERROR" in line]
        raise AssertionError("\n".join(lines[-30:])) from None
    print(f"\nkilled in the {phase}: {deployment.state} after "
          f"{(deployment.finished_at - killed_at).total_seconds():.1f}s")
    return deployment, beat


def _deploy_and_check(stack, app: App, version: str) -> Deployment:
    deployment = stack.wait(stack.deploy(app), timeout=120)
    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    assert stack.get(f"{app.name}.localhost") == (200, version)
    return deployment


def test_worker_pool_and_beat_killed_in_a_build_and_in_a_watch_the_deployment_ends_at_once(
        supervised, stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, APP_NAME)
    v1 = _deploy_and_check(stack, app, "v1")

    app_repo.commit_version("v2", extra_dockerfile=SLOW_BUILD)
    v2, beat = _killed_in(stack, supervised, app, "build")
    assert v2.state == Deployment.State.FAILED
    assert v2.error == f"build failed: the worker stopped during build; it never went live, deployment #{v1.id} serves"
    assert stack.get(f"{app.name}.localhost") == (200, "v1")
    _beat_sends_again(supervised, beat)

    App.objects.filter(pk=app.pk).update(watch_window=WATCH_WINDOW)
    app_repo.commit_version("v3")
    v3, beat = _killed_in(stack, supervised, app, "watch")
    assert v3.state == Deployment.State.SUCCEEDED, v3.error
    assert stack.get(f"{app.name}.localhost") == (200, "v3")
    eventually(lambda: "reconcile: the worker stopped during watch" in "\n".join(
        LogLine.objects.filter(deployment=v3).values_list("text", flat=True)), "reconcile's line", 10)
    _beat_sends_again(supervised, beat)

    App.objects.filter(pk=app.pk).update(watch_window=0)
    app_repo.commit_version("v4")
    _deploy_and_check(stack, app, "v4")


def test_a_killed_beat_is_started_again_and_sends_the_periodic_tasks(supervised):
    beat = supervised.pid("beat")
    os.kill(beat, signal.SIGKILL)
    _beat_sends_again(supervised, beat)


def _reconciles_done(supervised: Supervised) -> int:
    return sum(1 for line in supervised.log().splitlines()
               if "Task deployments.tasks.reconcile[" in line and " succeeded in " in line)


def test_a_beat_sent_reconcile_runs_while_every_deploy_slot_builds(supervised, stack, tmp_path):
    deployments = []
    for index in range(4):  # the Procfile's deploy worker: --concurrency 4
        repo = AppRepo(tmp_path / f"busy{index}")
        repo.commit_version(f"busy{index}", extra_dockerfile='RUN ["/bin/busybox", "sleep", "20"]\n')
        deployments.append(stack.deploy(stack.create_app(repo, f"{APP_NAME}-busy{index}")))  # no owner: no per-user cap
    eventually(lambda: Deployment.objects.filter(pk__in=[d.pk for d in deployments], phase="build").count() == 4,
               "every deploy slot builds", 60)
    done = _reconciles_done(supervised)

    eventually(lambda: _reconciles_done(supervised) > done, "a reconcile sent by beat runs", 3 * RECONCILE_INTERVAL + 5)

    still = Deployment.objects.filter(pk__in=[d.pk for d in deployments], phase="build",
                                      state=Deployment.State.RUNNING).count()
    assert still == 4, "a build ended first: the slots were not all busy while the reconcile ran"
    for deployment in deployments:
        assert stack.wait(deployment).state == Deployment.State.SUCCEEDED, deployment.error


def test_egress_rules_removed_by_hand_are_put_back_by_the_periodic_reconcile(supervised):
    rules = egress.expected()
    log_before = len(supervised.log())
    # Both deleted under the lock a repair takes: a reconcile halfway through its repair would
    # otherwise see the second deletion as its own failure ("not in place"), not as a repair.
    with egress.rules_lock():
        for hook in ("forward", "input"):  # the prefix rule's jumps
            egress_table.delete_jump(rules, hook)
    # No check of the rules between here and the repair: a reconcile every 2 s may already have
    # run. What it repaired is in the control worker's log (supervisord passes it on within a
    # moment).
    eventually(lambda: not egress.missing(rules), "reconcile puts the rules back", 3 * RECONCILE_INTERVAL + 5)

    def repair_lines() -> str:
        return "\n".join(line for line in supervised.log()[log_before:].splitlines()
                         if "reconcile: egress rules repaired:" in line)
    eventually(lambda: all(jump in repair_lines() for jump in ("the jump from the input hook", "the jump from the forward hook")),
               lambda: f"the log lines of both repairs (log since the deletion:\n{supervised.log()[log_before:][-3000:]})",
               10)


def test_periodic_tasks_and_deployment_lost_go_to_the_control_queue_and_expire_after_their_interval():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["options"] == {"queue": settings.CONTROL_QUEUE, "expires": entry["schedule"]}, name
    for task in (tasks.reconcile, tasks.certificates, tasks.prune_logs, tasks.send_due_events, tasks.deployment_lost,
                 tasks.fleet_heartbeats):
        assert celery_app.amqp.router.route({}, task.name)["queue"].name == settings.CONTROL_QUEUE, task.name
    assert celery_app.amqp.router.route({}, tasks.run_deployment.name)["queue"].name == settings.CELERY_TASK_DEFAULT_QUEUE
