"""After the switch the new release is watched; trouble sends traffic back to the old one."""
import datetime
import re
import time

from deployments import presenters
from deployments.application import deploys
from deployments.application.errors import NotPossible
from deployments.audit import Actor
from deployments.dockerd import containers
from deployments.models import App, Deployment

CGI_HEALTH = {"health_path": "/cgi-bin/health"}


def _live_ids(app: App) -> list[str]:
    return [c.deployment for c in containers.listed(app.name)]


def _log(deployment: Deployment) -> str:
    return "\n".join(deployment.log_lines.values_list("text", flat=True))


def test_release_whose_health_turns_bad_after_boot_is_rolled_back(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, watch_window=30, **CGI_HEALTH)
    old = stack.deploy_and_wait(app)
    app_repo.commit_health_fails_after("v2", seconds=3)

    with stack.load(f"{app.name}.localhost", max_seconds=60) as load:
        bad = stack.wait(stack.deploy(app), timeout=60)
        load.wait_for(load.result.total + 200)

    assert bad.state == Deployment.State.ROLLED_BACK, bad.error
    assert "HAProxy's health check marked the new release DOWN" in bad.error
    assert f"traffic is back on deployment #{old.id}" in bad.error
    assert App.objects.get(pk=app.pk).live_deployment_id == old.id
    assert stack.get(f"{app.name}.localhost") == (200, "v1")
    assert _live_ids(app) == [str(old.id)]
    assert load.result.failed == [], f"{len(load.result.failed)} failed"  # "/" itself never broke
    rolled_back_in = float(re.search(r"Rolled back in (\d+) ms", _log(bad)).group(1))
    assert rolled_back_in < 1000


def test_release_answering_too_many_5xx_is_rolled_back(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, watch_window=30)
    old = stack.deploy_and_wait(app)
    app_repo.commit_flaky_page("v2")

    with stack.load(f"{app.name}.localhost", path="/cgi-bin/page", max_seconds=60) as load:
        bad = stack.wait(stack.deploy(app), timeout=60)
        load.wait_for(load.result.total + 100)

    assert bad.state == Deployment.State.ROLLED_BACK, bad.error
    assert re.search(r"\d+ of \d+ responses were 5xx \(\d+\.\d% > 5%\)", bad.error), bad.error
    assert stack.get(f"{app.name}.localhost", "/cgi-bin/page") == (200, "v1")
    assert _live_ids(app) == [str(old.id)]
    assert {a.status for a in load.result.answers} <= {200, 500}
    assert bad.traffic["new"]["failed"] > 0 and bad.traffic["new"]["requests"] >= app.watch_min_requests


def test_release_whose_container_exits_during_the_watch_is_rolled_back(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, watch_window=30)
    old = stack.deploy_and_wait(app)
    app_repo.commit_exits_after("v2", seconds=4)

    bad = stack.wait(stack.deploy(app), timeout=60)

    assert bad.state == Deployment.State.ROLLED_BACK, bad.error
    assert "exited" in bad.error or "DOWN" in bad.error
    assert stack.get(f"{app.name}.localhost") == (200, "v1")
    assert _live_ids(app) == [str(old.id)]


def test_clean_watch_window_then_the_old_release_is_retired(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, watch_window=3)
    stack.deploy_live(app)
    app_repo.commit_version("v2")

    good = stack.wait(stack.deploy(app))

    assert good.state == Deployment.State.SUCCEEDED, good.error
    assert list(good.phase_times) == [p for p in Deployment.PHASES if p != "canary"]
    assert good.phase_duration("watch") >= 3
    assert "Watch passed" in _log(good)
    assert _live_ids(app) == [str(good.id)]
    assert not Deployment.objects.get(pk=good.pk).serves_backup
    _the_window_began_at_the_switch_before_the_hand_off(good)


def _the_window_began_at_the_switch_before_the_hand_off(deployment: Deployment) -> None:
    """The deploy worker read the watch's baseline as the switch ended, before a watch worker
    took over: the window (and the watch phase) runs from then, the hand-off inside it."""
    times = {phase: {k: datetime.datetime.fromisoformat(v) for k, v in marks.items()}
             for phase, marks in deployment.phase_times.items()}
    began = datetime.datetime.fromisoformat(deployment.watch_baseline["at"])
    handed_off = deployment.log_lines.get(text__contains="a watch worker carries on").created_at
    assert times["switch"]["end"] <= began == times["watch"]["start"] <= handed_off
    assert deployment.watch_until == began + datetime.timedelta(seconds=deployment.app.watch_window)
    assert deployment.watch_baseline["answers"] == [0, 0]  # the new release had answered nothing before


def test_promote_skips_the_rest_of_the_watch(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, watch_window=120)
    stack.deploy_live(app)
    app_repo.commit_version("v2")
    deployment = stack.deploy(app)
    stack.wait_for_state_phase(deployment, "watch")
    started = time.monotonic()

    deploys.promote(deployment, actor=Actor.cli("grace"))
    done = stack.wait(deployment, timeout=30)

    assert done.state == Deployment.State.SUCCEEDED
    assert time.monotonic() - started < 15  # far less than the 120 s window
    assert "Promoted by grace" in _log(done)
    assert stack.get(f"{app.name}.localhost") == (200, "v2")


def test_promote_outside_the_watch_is_refused(stack, app_repo):
    app_repo.commit_version("v1")
    done = stack.deploy_and_wait(stack.create_app(app_repo))
    try:
        deploys.promote(done, actor=Actor.cli("grace"))
        raise AssertionError("promoting a finished deployment should be refused")
    except NotPossible as refusal:
        assert "is not in a canary or being watched" in str(refusal)


def test_watch_window_zero_goes_straight_to_the_drain(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, watch_window=0)
    stack.deploy_live(app)
    app_repo.commit_version("v2")

    done = stack.deploy_and_wait(app)

    assert done.state == Deployment.State.SUCCEEDED
    assert "watch" not in done.phase_times and "Watching" not in _log(done)
    assert {s["name"]: s["status"] for s in presenters.steps(done)}["watch"] == "skipped"


def test_promote_follows_the_access_rules_in_the_panel_and_the_api(transactional_db, client, django_user_model):
    from deployments.models import ApiToken, Membership

    owner = django_user_model.objects.create_user("owner")
    app = App.objects.create(name="shop", repo_url="/srv/shop.git", owner=owner)
    users = {}
    for role in ("viewer", "deployer"):
        users[role] = django_user_model.objects.create_user(role)
        Membership.objects.create(app=app, user=users[role], role=role)
    users["outsider"] = django_user_model.objects.create_user("outsider")
    watched = Deployment.objects.create(app=app, ref="main", state=Deployment.State.RUNNING, phase="watch")

    def api(user):
        _, token = ApiToken.issue(user, "t")
        return client.post(f"/api/deployments/{watched.pk}/promote", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert api(users["outsider"]).status_code == 404
    assert api(users["viewer"]).status_code == 403
    client.force_login(users["outsider"])
    assert client.post(f"/deployments/{watched.pk}/promote").status_code == 404
    client.force_login(users["viewer"])
    assert client.post(f"/deployments/{watched.pk}/promote").status_code == 403
    assert not Deployment.objects.get(pk=watched.pk).promote_requested

    response = api(users["deployer"])
    assert response.status_code == 200 and response.json()["watch_until"] is None
    assert Deployment.objects.filter(pk=watched.pk, promote_requested=True, promoted_by="deployer").exists()
    Deployment.objects.filter(pk=watched.pk).update(state=Deployment.State.SUCCEEDED, phase="drain")
    assert api(users["deployer"]).status_code == 409
