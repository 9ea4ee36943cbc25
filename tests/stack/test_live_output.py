"""Output shows in the log while a silent step runs, not when the step ends: the last lines before
a long RUN step or release command are stored once the output goes quiet (dockerd/quiet_ticks.py)."""
from deployments.engine import lifecycle
from deployments.models import App, Deployment

# Two lines at once: whichever of them the log stores with its batch, the second waits for the next
# line, which a step that then works in silence for minutes does not send.
TALK_THEN_WORK = "echo compiling assets; echo assets done, now linking; sleep 600"


def _log(deployment: Deployment) -> list[str]:
    return list(deployment.log_lines.order_by("seq").values_list("text", flat=True))


def _shown_while_running(stack, deployment: Deployment, line: str, phase: str) -> None:
    """`line` is stored while the deployment is still in `phase`, then the deployment is cancelled."""
    stack.eventually(lambda: line in _log(deployment), f"{line!r} in the log during {phase}", timeout=60)
    deployment.refresh_from_db()
    assert (deployment.state, deployment.phase) == (Deployment.State.RUNNING, phase), _log(deployment)
    assert lifecycle.request_cancel(deployment.id, "test") == lifecycle.CancelOutcome.REQUESTED
    assert stack.wait(deployment, timeout=60).state == Deployment.State.CANCELLED


def test_a_silent_run_steps_first_lines_show_while_it_runs(stack, app_repo):
    app_repo.commit_version("v1", extra_dockerfile=f'RUN ["/bin/busybox", "sh", "-c", "{TALK_THEN_WORK}"]\n')
    app = stack.create_app(app_repo)

    deployment = stack.deploy(app)

    _shown_while_running(stack, deployment, "assets done, now linking", "build")
    assert any(line.startswith("Step ") and "RUN" in line for line in _log(deployment))


def test_a_silent_release_commands_first_lines_show_while_it_runs(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    App.objects.filter(pk=app.pk).update(release_command=f"/bin/busybox sh -c '{TALK_THEN_WORK}'")

    deployment = stack.deploy(app)

    _shown_while_running(stack, deployment, "[release] assets done, now linking", "start")
