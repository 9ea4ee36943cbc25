"""A commit status goes to the host the app's token was stored for, with that token, and nowhere
else: a Gitea or Forgejo push (which also carries GitHub's headers) never reaches the GitHub API.
The providers' APIs are local HTTP servers that record what they get (tests/support/receiver.py);
everything else is real: the delivery through the endpoint, the recorded status, its HTTP POST."""
import json
import os

import pytest
from django.conf import settings

from deployments import enqueue
from deployments.application import events as event_targets
from deployments.models import App, Deployment, EventDelivery
from deployments.outgoing import commit_status, events
from tests.support.receiver import Receiver
from tests.support.stack import TEST_ACTOR
from tests.web.test_deliveries import delivery, send

PROVIDER_PORT = int(os.environ["SWITCHYARD_TEST_PROVIDER_PORT"])  # SWITCHYARD_GITHUB_API_URL etc. point here
TOKEN = "gitea-token-of-this-app"


@pytest.fixture
def dispatched(monkeypatch) -> list[int]:
    sent = []
    monkeypatch.setattr(enqueue, "send", sent.append)
    return sent


def _pushed(client, name: str, repo_host: str) -> Deployment:
    """The recorded delivery `name`, its repository moved to `repo_host`, pushed to an app deploying
    that repository with a provider token: the deployment it queued."""
    expect, recorded_body, _ = delivery(name)
    repository = json.loads(recorded_body)["repository"]
    repository.update(clone_url=f"http://{repo_host}/team/shop.git", html_url=f"http://{repo_host}/team/shop",
                      ssh_url=f"git@{repo_host.split(':')[0]}:team/shop.git", full_name="team/shop")
    _, body, headers = delivery(name, repository=repository)
    app = App.objects.create(name="shop", repo_url=f"http://{repo_host}/team/shop.git", branch=expect["branch"],
                             webhook_secret="delivery-secret-for-tests-987654", repo_private_allowed=True)
    event_targets.set_commit_status_token(app, token=TOKEN, actor=TEST_ACTOR)
    response = send(client, body, headers)
    assert response.status_code == 202, response.json()
    return Deployment.objects.get(pk=response.json()["deployment"])


def _statuses_sent(deployment: Deployment) -> list[EventDelivery]:
    """Record the start and the success, and send each the way the events worker does."""
    events.record_start(deployment.pk)
    Deployment.objects.filter(pk=deployment.pk).update(state=Deployment.State.SUCCEEDED)
    events.record_end(deployment.pk)
    for sending in EventDelivery.objects.filter(kind="commit_status", state="pending").order_by("id"):
        events.attempt(sending.pk)
    return list(EventDelivery.objects.filter(kind="commit_status").order_by("id"))


@pytest.mark.parametrize("name", ["gitea/push.json", "forgejo/push.json"])
def test_a_gitea_or_forgejo_status_goes_to_the_forge_with_its_token_never_to_github(
        client, committed_per_request, dispatched, name):
    with Receiver(port=PROVIDER_PORT) as providers:
        deployment = _pushed(client, name, repo_host="127.0.0.1")  # the configured Gitea API's host
        sent = _statuses_sent(deployment)
        requests = list(providers.requests)

    sha = deployment.commit_sha
    assert [r.path for r in requests] == [f"/gitea/api/v1/repos/team/shop/statuses/{sha}"] * 2
    assert [r.json()["state"] for r in requests] == ["pending", "success"]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in requests)
    assert not [r for r in requests if r.path.startswith("/github/")]
    assert [d.state for d in sent] == ["delivered", "delivered"]


def test_without_a_configured_api_the_status_goes_to_the_repository_host(client, committed_per_request, dispatched,
                                                                         monkeypatch):
    monkeypatch.setitem(settings.SWITCHYARD, "GITEA_URL", "")
    with Receiver(port=PROVIDER_PORT) as configured, Receiver() as forge:
        deployment = _pushed(client, "gitea/push.json", repo_host=forge.url.removeprefix("http://"))
        sent = _statuses_sent(deployment)
        at_the_forge, elsewhere = list(forge.requests), list(configured.requests)

    assert [r.path for r in at_the_forge] == [f"/api/v1/repos/team/shop/statuses/{deployment.commit_sha}"] * 2
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in at_the_forge)
    assert elsewhere == [] and [d.state for d in sent] == ["delivered", "delivered"]


def test_a_repository_moved_to_another_host_gets_no_status_and_says_why(client, committed_per_request, dispatched):
    with Receiver(port=PROVIDER_PORT) as providers:
        deployment = _pushed(client, "gitea/push.json", repo_host="127.0.0.1")
        events.record_start(deployment.pk)
        pending = EventDelivery.objects.get(kind="commit_status")
        App.objects.filter(pk=deployment.app_id).update(repo_url="https://attacker.example.net/team/shop.git")
        events.attempt(pending.pk)  # recorded for 127.0.0.1, sent after the move: checked again
        Deployment.objects.filter(pk=deployment.pk).update(state=Deployment.State.SUCCEEDED)
        events.record_end(deployment.pk)
        requests = list(providers.requests)

    assert requests == []
    attempted, refused = EventDelivery.objects.filter(kind="commit_status").order_by("id")
    assert attempted.state == "failed" and "not the host the commit status token was stored for" in attempted.last_error
    assert refused.state == "failed" and refused.attempts == 0
    assert refused.last_error == ("no commit status: the token was stored for 127.0.0.1, and the repository is now "
                                  "at attacker.example.net; set the token again")


def test_a_token_stored_before_hosts_were_recorded_is_pinned_to_the_repository_host(db):
    app = App.objects.create(name="old", repo_url="git@gitea.example.org:team/shop.git")
    app.commit_status_token = "stored-long-ago"
    app.save()

    assert commit_status.token_host(app) == "gitea.example.org"
    assert App.objects.get(pk=app.pk).commit_status_token_host == "gitea.example.org"
    App.objects.filter(pk=app.pk).update(repo_url="https://elsewhere.example.net/team/shop.git")
    with pytest.raises(commit_status.Refused, match="stored for gitea.example.org"):
        commit_status.destination(App.objects.get(pk=app.pk), provider="gitea", repository="team/shop", sha="a" * 40)


@pytest.mark.parametrize("repo_url, provider, reason", [
    ("/srv/shop.git", "github", "a path on this machine"),
    ("https://github.com/octocat/shop.git", "github", "is not the API of github.com"),
])
def test_no_host_or_no_api_for_the_host_refuses_rather_than_guesses(db, repo_url, provider, reason):
    app = App.objects.create(name="shop", repo_url=repo_url)
    event_targets.set_commit_status_token(app, token="t0ken", actor=TEST_ACTOR)

    with pytest.raises(commit_status.Refused, match=reason):  # the tests' GitHub API is on 127.0.0.1
        commit_status.destination(app, provider=provider, repository="octocat/shop", sha="a" * 40)


def test_github_com_statuses_go_to_api_github_com(db, monkeypatch):
    monkeypatch.setitem(settings.SWITCHYARD, "GITHUB_API_URL", "https://api.github.com")
    app = App.objects.create(name="shop", repo_url="git@github.com:octocat/shop.git")
    event_targets.set_commit_status_token(app, token="ghp_t0ken", actor=TEST_ACTOR)

    found = commit_status.destination(app, provider="github", repository="octocat/shop", sha="a" * 40)

    assert found == commit_status.Destination(f"https://api.github.com/repos/octocat/shop/statuses/{'a' * 40}", False)
