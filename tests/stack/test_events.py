"""Deploy events: one signed delivery per target and deployment, retried with backoff, a Slack
message and an e-mail, and commit statuses for deployments from a push; receivers are local
HTTP servers (tests/support/receiver.py), since no provider is reachable here."""
import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest
from django.conf import settings

from deployments.application import events as event_targets, pushes
from deployments.models import App, Deployment, EventDelivery
from tests.web import test_deliveries
from tests.support.receiver import Receiver
from tests.support.stack import TEST_ACTOR

PROVIDER_PORT = int(os.environ["SWITCHYARD_TEST_PROVIDER_PORT"])


def _verified(request, secret: str) -> dict:
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Switchyard-Signature"], expected)
    return request.json()


def _mails() -> list[str]:
    folder = Path(settings.EMAIL_FILE_PATH)
    return [path.read_text() for path in sorted(folder.glob("*.log"))] if folder.exists() else []


def test_each_target_gets_each_end_once_signed_with_the_reason_and_the_traffic(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    with Receiver() as receiver:
        hook = event_targets.add_target(app, kind="webhook", url=f"{receiver.url}/hook", actor=TEST_ACTOR)
        event_targets.add_target(app, kind="slack", url=f"{receiver.url}/slack", on=["failed"], actor=TEST_ACTOR)
        event_targets.add_target(app, kind="email", emails="ops@example.com", actor=TEST_ACTOR)
        good = stack.deploy_and_wait(app)
        app_repo.commit_build_error()
        bad = stack.deploy_and_wait(app)
        stack.eventually(lambda: len(receiver.to("/hook")) == 2 and len(receiver.to("/slack")) == 1,
                         "the webhook and Slack deliveries", timeout=20)
        stack.eventually(lambda: len(_mails()) == 2, "two e-mails", timeout=20)
        stack.eventually(lambda: EventDelivery.objects.filter(state="delivered").count() == 5, "all delivered")
        [first, second] = [_verified(r, hook.secret) for r in receiver.to("/hook")]
        slack = receiver.to("/slack")[0].json()

    assert (good.state, bad.state) == (Deployment.State.SUCCEEDED, Deployment.State.FAILED)
    assert first["event"] == "deployment.succeeded" and first["deployment"]["id"] == good.id
    assert first["summary"].startswith(f"{app.name} #{good.id} succeeded")
    assert first["deployment"]["url"] == f"{settings.SWITCHYARD['PUBLIC_URL']}/deployments/{good.id}/"
    assert second["event"] == "deployment.failed" and "build failed" in second["reason"]
    assert receiver.to("/hook")[0].headers["X-Switchyard-Event"] == "deployment.succeeded"
    assert slack["text"].startswith(f"<{settings.SWITCHYARD['PUBLIC_URL']}/deployments/{bad.id}/|")
    assert "build failed" in slack["text"]  # only failures go to this one
    assert any(f"#{good.id} succeeded" in mail and "To: ops@example.com" in mail for mail in _mails())
    assert all(d.attempts == 1 for d in EventDelivery.objects.all())


def test_the_traffic_proof_is_in_the_event(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    stack.deploy_live(app)
    app_repo.commit_version("v2")
    with Receiver() as receiver:
        event_targets.add_target(app, kind="webhook", url=f"{receiver.url}/hook", actor=TEST_ACTOR)
        with stack.load(f"{app.name}.localhost", max_seconds=60) as load:
            load.wait_for(100)
            deployment = stack.deploy_and_wait(app)
        stack.eventually(lambda: receiver.to("/hook"), "the event")
        event = receiver.to("/hook")[0].json()

    requests, failed = deployment.traffic_summary
    assert event["traffic"] == {"requests": requests, "failed": failed} and requests > 0
    assert f"{requests:,} requests, {failed:,} failed" in event["summary"]


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_try(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    with Receiver(fail_first=2) as receiver:
        event_targets.add_target(app, kind="webhook", url=f"{receiver.url}/hook", actor=TEST_ACTOR)
        deployment = stack.deploy_and_wait(app)
        stack.eventually(lambda: EventDelivery.objects.filter(state="delivered").exists(), "the delivery",
                         timeout=30)
        tries = receiver.to("/hook")

    delivery = EventDelivery.objects.get()
    assert (delivery.attempts, delivery.last_status, delivery.deployment_id) == (3, 204, deployment.id)
    assert len(tries) == 3 and len({t.headers["X-Switchyard-Delivery"] for t in tries}) == 1
    assert len({t.body for t in tries}) == 1  # the same event each time
    gaps = [later.at - earlier.at for earlier, later in zip(tries, tries[1:])]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # 1 s, then 2 s (SWITCHYARD_EVENT_RETRY_SECONDS=1)


@pytest.mark.slow
def test_a_gitea_push_marks_its_commit_pending_then_success_or_failure_on_gitea_only(stack, app_repo):
    """The app's repository is served by "Gitea" over HTTP (git's dumb protocol, from a local
    server that also records the API calls); a real Gitea delivery (with GitHub's headers beside
    Gitea's) deploys, and every status goes to Gitea's API with the app's token, none to GitHub's."""
    sha = app_repo.commit_version("v1")
    app_repo._git("update-server-info")
    app = stack.create_app(app_repo)
    repo_url = f"http://127.0.0.1:{PROVIDER_PORT}/gitea/team/shop.git"
    App.objects.filter(pk=app.pk).update(repo_url=repo_url, repo_private_allowed=True,
                                         webhook_secret=test_deliveries.SECRET)
    event_targets.set_commit_status_token(App.objects.get(pk=app.pk), token="gitea_test-token", actor=TEST_ACTOR)
    with Receiver(port=PROVIDER_PORT, git=("/gitea/team/shop.git", app_repo.path / ".git")) as provider:
        good = _pushed(stack, app, sha, repo_url)
        bad_sha = app_repo.commit_build_error()
        app_repo._git("update-server-info")
        bad = _pushed(stack, app, bad_sha, repo_url)
        stack.eventually(lambda: len(provider.to("/gitea/api/")) == 4, "four statuses", timeout=20)
        statuses, at_github = provider.to("/gitea/api/"), provider.to("/github/")

    assert (good.state, bad.state) == (Deployment.State.SUCCEEDED, Deployment.State.FAILED), good.error
    assert [(s.path, s.json()["state"]) for s in statuses] == [
        (f"/gitea/api/v1/repos/team/shop/statuses/{sha}", "pending"),
        (f"/gitea/api/v1/repos/team/shop/statuses/{sha}", "success"),
        (f"/gitea/api/v1/repos/team/shop/statuses/{bad_sha}", "pending"),
        (f"/gitea/api/v1/repos/team/shop/statuses/{bad_sha}", "failure")]
    assert all(s.headers["Authorization"] == "Bearer gitea_test-token" for s in statuses)
    assert at_github == []
    assert statuses[1].json()["target_url"].endswith(f"/deployments/{good.id}/")
    assert statuses[3].json()["target_url"].endswith(f"/deployments/{bad.id}/")
    assert statuses[1].json()["context"] == "switchyard"


def _pushed(stack, app: App, sha: str, repo_url: str) -> Deployment:
    _, recorded, _ = test_deliveries.delivery("gitea/push.json")
    repository = {**json.loads(recorded)["repository"], "full_name": "team/shop", "clone_url": repo_url}
    _, body, headers = test_deliveries.delivery("gitea/push.json", ref="refs/heads/main", after=sha,
                                                repository=repository)
    headers = {k: (f"delivery-{sha}" if k.endswith("-Delivery") else v) for k, v in headers.items()}
    status, answer = pushes.receive_webhook(App.objects.get(pk=app.pk), headers=headers, body=body)
    assert status == 202, answer
    return stack.wait(Deployment.objects.get(pk=answer["deployment"]))
