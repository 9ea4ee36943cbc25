"""A Compose release retired by reconcile (its deployment's worker was killed in the watch) runs
its web service's pre_stop hooks first, as the drain would have: the hooks the release recorded at
deploy, with no deployment context (tests/support/hookrepo.py records each hook that ran)."""
import os
import signal

from deployments.dockerd import containers, volumes
from deployments.models import Deployment
from tests.faults.test_faults import (  # noqa: F401 (fault_worker and faults are fixtures)
    APP_NAME, ENDS_WITHIN, WATCH_WINDOW, _pool_pid, _wait_for_log_line, _wait_for_phase, _wait_while_the_worker_runs,
    fault_worker, faults)
from tests.support.hookrepo import HookRepo

HOST = "hooks-reconciled.example.com"


def test_reconcile_retiring_the_previous_release_runs_its_pre_stop_hooks(faults, fault_worker, tmp_path):
    repo = HookRepo(tmp_path / "hooks")
    repo.commit_release("v1")
    app = faults.create_app(repo, f"{APP_NAME}-h", compose_file="compose.yaml", domains=[HOST],
                            health_deadline=60, watch_window=WATCH_WINDOW)
    try:
        v1 = _wait_while_the_worker_runs(faults, faults.deploy(app), fault_worker)
        assert v1.state == Deployment.State.SUCCEEDED, v1.error
        repo.commit_release("v2")
        v2 = faults.deploy(app)
        _wait_for_phase(v2, "watch")
        os.kill(_pool_pid(v2, "deployments.tasks.continue_deployment"), signal.SIGKILL)

        v2 = faults.wait(v2, timeout=ENDS_WITHIN)

        assert v2.state == Deployment.State.SUCCEEDED, v2.error
        _wait_for_log_line(v2, "the previous release was retired; marked succeeded")
        status, body = faults.get(HOST, "/cgi-bin/events")
        assert status == 200, body
        stopped = {line.split(",")[3]: line for line in body.splitlines() if line.startswith("pre_stop,web,v1,")}
        assert set(stopped) == {c.id[:12] for c in v1.containers}, body
        assert all(line.endswith(",hi,up=ok") for line in stopped.values()), body  # it ran before the stop
        assert all(containers.state(c.id).status == "removed" for c in v1.containers)
    finally:
        faults.wait_until_idle()
        for container in containers.listed(app.name):
            containers.stop_and_remove(container.id, timeout=0)
        volumes.remove_app_volumes(app.id)
