"""Deploy events: one signed delivery per target and deployment, retried with backoff, a Slack
message and an e-mail, and commit statuses for deployments from a push; receivers are local
HTTP servers (tests/support/receiver.py), since no provider is reachable here."""
import hashlib
import hmac
import os
from pathlib import Path

import pytest
from django.conf import settings

from deployments.application import events as event_targets, pushes
from deployments.application.errors import InvalidInput
from deployments.outgoing import events, pinned_http
from deployments.models import App, Deployment, EventDelivery
from tests.web import test_webhooks
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
    stack.deploy_and_wait(app)
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


def test_a_push_marks_its_commit_pending_then_success_or_failure(stack, app_repo):
    sha = app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    App.objects.filter(pk=app.pk).update(webhook_secret=test_webhooks.SECRET)
    event_targets.set_commit_status_token(App.objects.get(pk=app.pk), token="ghp_test-token", actor=TEST_ACTOR)
    with Receiver(port=PROVIDER_PORT) as github:
        good = _pushed(stack, app, sha)
        bad_sha = app_repo.commit_build_error()
        bad = _pushed(stack, app, bad_sha)
        stack.eventually(lambda: len(github.to("/github/")) == 4, "four statuses", timeout=20)
        statuses = github.to("/github/")

    assert [(s.path, s.json()["state"]) for s in statuses] == [
        (f"/github/repos/octocat/shop/statuses/{sha}", "pending"),
        (f"/github/repos/octocat/shop/statuses/{sha}", "success"),
        (f"/github/repos/octocat/shop/statuses/{bad_sha}", "pending"),
        (f"/github/repos/octocat/shop/statuses/{bad_sha}", "failure")]
    assert all(s.headers["Authorization"] == "Bearer ghp_test-token" for s in statuses)
    assert statuses[1].json()["target_url"].endswith(f"/deployments/{good.id}/")
    assert statuses[3].json()["target_url"].endswith(f"/deployments/{bad.id}/")
    assert statuses[1].json()["context"] == "switchyard"


def _pushed(stack, app: App, sha: str) -> Deployment:
    body, headers = test_webhooks.github(after=sha)
    status, answer = pushes.receive_webhook(App.objects.get(pk=app.pk), headers=headers, body=body)
    assert status == 202, answer
    return stack.wait(Deployment.objects.get(pk=answer["deployment"]))


@pytest.mark.parametrize("provider, repository, url", [
    ("github", "octocat/shop", "{github}/repos/octocat/shop/statuses/{sha}"),
    ("gitea", "gitea/webhooks", "{gitea}/api/v1/repos/gitea/webhooks/statuses/{sha}"),
    ("gitlab", "15", "{gitlab}/api/v4/projects/15/statuses/{sha}"),
    ("github", "../../admin", None), ("github", "octocat/shop?x=1", None), ("gitlab", "mike/diaspora", None),
])
def test_a_commit_status_url_is_made_of_checked_words(provider, repository, url):
    sha = "a" * 40
    bases = {"github": settings.SWITCHYARD["GITHUB_API_URL"], "gitea": settings.SWITCHYARD["GITEA_URL"],
             "gitlab": settings.SWITCHYARD["GITLAB_URL"]}
    assert events._status_url(provider, repository, sha) == (url and url.format(sha=sha, **bases))


def test_a_slack_message_cannot_ping_the_channel_or_make_links():
    message = events._slack_message({"summary": "shop #3 failed", "reason": "boom <!channel> <https://evil|click>",
                                     "deployment": {"url": "https://panel.example.com/deployments/3/"}})
    assert message["text"] == ("<https://panel.example.com/deployments/3/|shop #3 failed>\n"
                               "> boom &lt;!channel&gt; &lt;https://evil|click&gt;")


@pytest.mark.parametrize("url, message", [
    ("ftp://hooks.example.com/x", "is not an http(s) URL"),
    ("http://[x/hook", "is not an http(s) URL"),
    ("https://user:pw@hooks.example.com/x", "put no user or password in the URL"),
    ("https://hooks.example.com/a b", "spaces or characters outside ASCII"),
    ("https://hooks.example.com:99999/x", "is not an http(s) URL"),
    ("", "a webhook target needs the URL"),
])
def test_a_bad_target_is_refused_with_the_reason(db, url, message):
    app = App.objects.create(name="shop", repo_url="/srv/shop.git")
    with pytest.raises(InvalidInput) as refused:
        event_targets.add_target(app, kind="webhook", url=url, actor=TEST_ACTOR)
    assert message in str(refused.value)
    assert not app.notification_targets.exists()


def test_a_target_on_a_private_address_is_not_sent_to(settings):
    settings.SWITCHYARD = {**settings.SWITCHYARD, "EVENTS_ALLOW_PRIVATE": False}
    with Receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        for url in (f"http://127.0.0.1:{port}/admin", f"http://localhost:{port}/", "http://10.0.0.5/hook",
                    f"http://[::1]:{port}/"):
            with pytest.raises(pinned_http.Unreachable, match="not a public address"):
                pinned_http.post(url, b"{}", {})
        assert receiver.requests == []
    with pytest.raises(pinned_http.Unreachable, match="does not resolve"):
        pinned_http.post("http://no-such-host.invalid/hook", b"{}", {})
