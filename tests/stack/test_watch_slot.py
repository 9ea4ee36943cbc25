"""A long canary or watch does not hold a deploy-worker slot (issue 22): past verify, a deployment
carries on in the watch worker, so with the deploy worker's every slot's worth of deployments
sitting in a watch or a canary, another app is still built and goes live at once."""
import time

from deployments.application import deploys
from deployments.models import App, Deployment, LogLine
from tests.support.apprepo import AppRepo
from tests.support.stack import TEST_ACTOR

SLOTS = 4  # the test deploy worker's --concurrency (tests/conftest.py)
LONG = 600  # seconds: far beyond the test; Promote ends them
GOES_LIVE_WITHIN = 60  # a build and a deploy of the tiny app take a few seconds here


def test_watching_and_canarying_deployments_leave_the_deploy_slots_to_builds(stack, tmp_path):
    repos = [AppRepo(tmp_path / f"w{index}") for index in range(SLOTS)]
    apps = []
    for index, repo in enumerate(repos):
        repo.commit_version(f"w{index}-v1")
        apps.append(stack.create_app(repo, f"slot{index}"))
    first = [stack.deploy(app) for app in apps]
    assert [stack.wait(d).state for d in first] == [Deployment.State.SUCCEEDED] * SLOTS, [d.error for d in first]

    # One canary (a step held LONG seconds), the others a watch of LONG seconds.
    App.objects.filter(pk=apps[0].pk).update(canary_steps=[50, 100], canary_step_seconds=LONG)
    App.objects.filter(pk__in=[app.pk for app in apps[1:]]).update(watch_window=LONG)
    for index, repo in enumerate(repos):
        repo.commit_version(f"w{index}-v2")
    held = [stack.deploy(app) for app in apps]
    stack.wait_for_state_phase(held[0], "canary", percent=50)
    for deployment in held[1:]:
        stack.wait_for_state_phase(deployment, "watch")

    repo = AppRepo(tmp_path / "builder")
    repo.commit_version("built")
    builder = stack.create_app(repo, "builder")
    started = time.monotonic()
    built = stack.wait(stack.deploy(builder), timeout=GOES_LIVE_WITHIN)
    print(f"\nbuilt and live {time.monotonic() - started:.1f}s after the deploy, {SLOTS} deployments in a watch/canary")
    assert built.state == Deployment.State.SUCCEEDED, built.error
    assert stack.get("builder.localhost") == (200, "built")

    for deployment in held:  # still in their canary and watch, carried on by the watch worker
        deployment.refresh_from_db()
        assert (deployment.state, deployment.phase) == (Deployment.State.RUNNING, "canary" if deployment == held[0]
                                                         else "watch")
        deploys.promote(deployment, actor=TEST_ACTOR)
    held = [stack.wait(deployment, timeout=60) for deployment in held]
    _carried_on_by_the_watch_worker(held)
    assert [d.state for d in held] == [Deployment.State.SUCCEEDED] * SLOTS, [d.error for d in held]
    assert [stack.get(f"slot{index}.localhost")[1] for index in range(SLOTS)] == [f"w{i}-v2" for i in range(SLOTS)]


def _carried_on_by_the_watch_worker(held: list[Deployment]) -> None:
    """The canary (held[0]) switches in the watch worker; a watch alone follows a switch the
    deploy worker made."""
    carried_on = LogLine.objects.filter(deployment__in=held, text__contains=" carries on after ",
                                        text__endswith=" (watch queue)")
    assert carried_on.count() == SLOTS
    assert LogLine.objects.filter(deployment=held[0], text__endswith="carries on after verify (watch queue)").exists()
    assert LogLine.objects.filter(deployment=held[1], text__endswith="carries on after the switch (watch queue)").exists()
