"""The REST API's deployments: listed, queued for a branch or a ref, read with their phases and
logs, cancelled, redeployed from a kept image; and a push reaching production through the API alone."""
import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from deployments.api import LOG_PAGE
from deployments.models import App, Deployment, LogLine
from tests.support.apiworld import APP, DEPLOYERS, NEW_VALUE, RELEASE_IMAGE, db_state, detail, send
from tests.support.eventually import eventually

pytestmark = pytest.mark.usefixtures("dispatched")


# Deployments ---------------------------------------------------------------------------------

def test_deployments_are_listed_newest_first_and_limit_caps_the_list(api_world, redis_server):
    newest = send(api_world.client("deployer"), "post", f"/api/apps/{APP}/deploy").json()["id"]

    listed = api_world.call("viewer", "list_deployments").json()
    limited = api_world.client("viewer").get(f"/api/apps/{APP}/deployments", {"limit": 2}).json()

    assert [d["id"] for d in listed] == [newest, api_world.queued.pk, api_world.release.pk]
    assert [d["state"] for d in listed] == ["queued", "superseded", "succeeded"]
    assert [d["id"] for d in limited] == [newest, api_world.queued.pk]
    assert all(d["app"] == APP for d in listed)


@pytest.mark.parametrize("body, ref", [(None, "main"), ({}, "main"), ({"ref": None}, "main"), ({"ref": ""}, "main"),
                                       ({"ref": "v1.2"}, "v1.2"), ({"ref": "feature/x"}, "feature/x"),
                                       ({"ref": "a" * 40}, "a" * 40)])
@pytest.mark.parametrize("role", DEPLOYERS)
def test_deploy_answers_202_with_the_queued_deployment_of_the_branch_or_the_given_ref(api_world, redis_server, dispatched,
                                                                                      role, body, ref):
    response = send(api_world.client(role), "post", f"/api/apps/{APP}/deploy", body)

    assert response.status_code == 202
    new = Deployment.objects.exclude(pk__in=[api_world.release.pk, api_world.queued.pk]).get()
    assert (new.ref, new.trigger, new.triggered_by, new.state) == (ref, "api", api_world.users[role].username, "queued")
    assert dispatched == [new.pk]
    got = response.json()
    assert (got["id"], got["app"], got["state"], got["ref"], got["trigger"], got["triggered_by"], got["redeploy_of"]) == (
        new.pk, APP, "queued", ref, "api", api_world.users[role].username, None)
    assert [p["name"] for p in got["phases"]] == [p for p in Deployment.PHASES if p != "canary"]
    api_world.queued.refresh_from_db()
    assert api_world.queued.state == Deployment.State.SUPERSEDED


def test_get_deployment_returns_state_phase_ref_commit_image_phases_and_error(api_world):
    failed = Deployment.objects.create(
        app=api_world.app, ref="v2", state=Deployment.State.FAILED, phase="verify", commit_sha="b" * 40,
        image=f"switchyard/{APP}:bbbbbbbbbbbb", error="health check failed: /health answered 500",
        phase_times={p: {"start": "2024-01-01T00:00:00+00:00", "end": "2024-01-01T00:00:02+00:00"}
                     for p in ("fetch", "build", "start")} | {"verify": {"start": "2024-01-01T00:00:02+00:00"}})

    response = api_world.client("viewer").get(f"/api/deployments/{failed.pk}")

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("id", "app", "state", "phase", "ref", "commit", "image", "error", "trigger")} == {
        "id": failed.pk, "app": APP, "state": "failed", "phase": "verify", "ref": "v2", "commit": "b" * 40,
        "image": f"switchyard/{APP}:bbbbbbbbbbbb", "error": "health check failed: /health answered 500", "trigger": "cli"}
    assert body["phases"] == [
        {"name": "fetch", "status": "done", "seconds": 2.0}, {"name": "build", "status": "done", "seconds": 2.0},
        {"name": "start", "status": "done", "seconds": 2.0}, {"name": "verify", "status": "failed", "seconds": None},
        {"name": "switch", "status": "skipped", "seconds": None}, {"name": "watch", "status": "skipped", "seconds": None},
        {"name": "drain", "status": "skipped", "seconds": None}]
    assert body["created_at"] and body["started_at"] is None and body["finished_at"] is None


@pytest.mark.parametrize("query, seqs", [
    ({}, [1, 2, 3]), ({"after": "0"}, [1, 2, 3]), ({"after": "2"}, [3]), ({"after": "3"}, []), ({"after": "99"}, []),
])
def test_logs_return_the_lines_after_a_sequence_number_in_order(api_world, query, seqs):
    response = api_world.client("viewer").get(f"/api/deployments/{api_world.release.pk}/logs", query)

    assert response.status_code == 200
    assert response.json() == [{"seq": seq, "text": f"line {seq}"} for seq in seqs]


def test_logs_are_paged_1000_lines_at_a_time(api_world):
    assert LOG_PAGE == 1000
    LogLine.objects.bulk_create(LogLine(deployment=api_world.release, seq=seq, text=f"line {seq}")
                                for seq in range(4, 2 * LOG_PAGE + 11))
    client = api_world.client("viewer")
    url = f"/api/deployments/{api_world.release.pk}/logs"

    first = client.get(url).json()
    second = client.get(url, {"after": first[-1]["seq"]}).json()
    third = client.get(url, {"after": second[-1]["seq"]}).json()

    assert [line["seq"] for line in first] == list(range(1, LOG_PAGE + 1))
    assert [line["seq"] for line in second] == list(range(LOG_PAGE + 1, 2 * LOG_PAGE + 1))
    assert [line["seq"] for line in third] == list(range(2 * LOG_PAGE + 1, 2 * LOG_PAGE + 11))
    assert client.get(url, {"after": third[-1]["seq"]}).json() == []


@pytest.mark.parametrize("role", DEPLOYERS)
def test_cancelling_a_queued_deployment_ends_it_at_once(api_world, dispatched, role):
    response = api_world.call(role, "cancel")

    assert response.status_code == 200
    api_world.queued.refresh_from_db()
    assert (api_world.queued.state, api_world.queued.cancelled_by) == ("cancelled", api_world.users[role].username)
    assert api_world.queued.finished_at is not None
    assert (response.json()["id"], response.json()["state"]) == (api_world.queued.pk, "cancelled")
    assert f"cancelled by {api_world.users[role].username}" in response.json()["error"]
    assert dispatched == []


@pytest.mark.parametrize("state", ["succeeded", "failed", "cancelled", "superseded", "rolled_back"])
def test_cancelling_a_finished_deployment_is_409_and_changes_nothing(api_world, state):
    Deployment.objects.filter(pk=api_world.queued.pk).update(state=state)
    before = db_state()

    response = api_world.call("deployer", "cancel")

    assert response.status_code == 409
    assert f"already ended ({state})" in detail(response)
    assert db_state() == before


def test_cancelling_after_the_switch_is_409_too_late(api_world):
    Deployment.objects.filter(pk=api_world.queued.pk).update(state="running", phase="drain")
    before = db_state()

    response = api_world.call("deployer", "cancel")

    assert response.status_code == 409
    assert "Too late to cancel" in detail(response)
    assert db_state() == before


@pytest.mark.parametrize("role", DEPLOYERS)
def test_redeploy_of_a_kept_image_answers_202_with_a_deployment_that_reuses_it(api_world, redis_server, dispatched,
                                                                               monkeypatch, role):

    response = api_world.call(role, "redeploy")

    assert response.status_code == 202
    new = Deployment.objects.exclude(pk__in=[api_world.release.pk, api_world.queued.pk]).get()
    assert (new.redeploy_of_id, new.image, new.commit_sha, new.trigger, new.triggered_by) == (
        api_world.release.pk, RELEASE_IMAGE, "a" * 40, "api", api_world.users[role].username)
    assert dispatched == [new.pk]
    body = response.json()
    assert (body["id"], body["redeploy_of"], body["image"], body["commit"], body["state"]) == (
        new.pk, api_world.release.pk, RELEASE_IMAGE, "a" * 40, "queued")
    assert [p["status"] for p in body["phases"][:2]] == ["skipped", "skipped"]


def test_redeploy_of_an_image_no_longer_kept_is_409_with_an_explanation(api_world, redis_server, dispatched, settings):
    for n in range(settings.SWITCHYARD["KEEP_IMAGES"]):  # newer successes: the release's image was pruned
        Deployment.objects.create(app=api_world.app, ref="main", state=Deployment.State.SUCCEEDED, commit_sha=f"{n}" * 40,
                                  image=f"switchyard/{APP}:{n}", finished_at=timezone.now())
    before = db_state()

    response = api_world.call("deployer", "redeploy")

    assert response.status_code == 409
    assert f"The image {RELEASE_IMAGE} is no longer kept" in detail(response)
    assert db_state() == before and dispatched == []


def test_redeploy_of_a_deployment_that_did_not_succeed_is_409(api_world, redis_server, dispatched, monkeypatch):
    before = db_state()

    response = send(api_world.client("owner"), "post", f"/api/deployments/{api_world.queued.pk}/redeploy")

    assert response.status_code == 409
    assert "did not succeed" in detail(response)
    assert db_state() == before and dispatched == []


# End to end ----------------------------------------------------------------------------------

def _wait_final(client: Client, deployment_id: int, timeout: float = 180) -> dict:
    seen = {}

    def final() -> dict | None:
        seen.update(client.get(f"/api/deployments/{deployment_id}").json())
        return dict(seen) if seen["state"] in Deployment.FINAL_STATES else None
    return eventually(final, lambda: f"deployment #{deployment_id} ending (still {seen['state']}/{seen['phase']})",
                      timeout, interval=0.2)


def test_a_pushed_commit_goes_live_through_the_api_alone(stack, app_repo, django_user_model):
    user = django_user_model.objects.create_superuser("ci")  # the repo is on this machine: superusers only
    out = io.StringIO()
    call_command("tokens", "create", "ci", stdout=out)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().splitlines()[-1]}")
    v1_sha = app_repo.commit_version("v1")

    created = api.post("/api/apps", {"name": "pushed", "repo_url": app_repo.url, "env": {"GREETING": NEW_VALUE}},
                       content_type="application/json")
    assert created.status_code == 201, created.content
    assert App.objects.get(name="pushed").owner == user
    first = send(api, "post", "/api/apps/pushed/deploy")
    assert first.status_code == 202, first.content
    first = _wait_final(api, first.json()["id"])

    assert first["state"] == "succeeded", first["error"]
    assert first["commit"] == v1_sha and first["ref"] == "main" and first["trigger"] == "api"
    # The first release has nothing to watch against: that phase is skipped.
    assert [p["status"] for p in first["phases"]] == ["skipped" if p == "watch" else "done" for p in Deployment.PHASES if p != "canary"]
    assert stack.get("pushed.localhost") == (200, "v1")
    logs = api.get(f"/api/deployments/{first['id']}/logs").json()
    assert [line["seq"] for line in logs] == list(range(1, len(logs) + 1))
    assert "==> switch" in [line["text"] for line in logs]

    v2_sha = app_repo.commit_version("v2")
    second = api.post("/api/apps/pushed/deploy", {"ref": "main"}, content_type="application/json")
    assert second.status_code == 202, second.content
    second = _wait_final(api, second.json()["id"])

    assert second["state"] == "succeeded", second["error"]
    assert second["commit"] == v2_sha
    assert stack.get("pushed.localhost") == (200, "v2")
    listed = api.get("/api/apps/pushed/deployments").json()
    assert [(d["id"], d["commit"]) for d in listed] == [(second["id"], v2_sha), (first["id"], v1_sha)]
    assert api.get("/api/apps/pushed").json()["live_deployment"] == second["id"]
    for response in (api.get("/api/apps"), api.get("/api/apps/pushed"), api.get("/api/apps/pushed/deployments")):
        assert NEW_VALUE not in response.content.decode()
