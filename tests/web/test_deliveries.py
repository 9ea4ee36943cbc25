"""Deliveries as each provider sends them (tests/data/deliveries/: headers and body from each
provider's documentation): each is recognised as its own provider, even where it also carries
GitHub's headers (Gitea, Forgejo), verified with its own signature header, and deploys the pushed
commit of the app's repository, recording who pushed; a push of another repository, or one with
a wrong signature, queues nothing and says why."""
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from deployments import enqueue
from deployments.models import App, Deployment, WebhookDelivery

DELIVERIES = Path(__file__).resolve().parent.parent / "data" / "deliveries"
SECRET = "delivery-secret-for-tests-987654"
FILES = sorted(str(path.relative_to(DELIVERIES)) for path in DELIVERIES.glob("*/*.json"))


def delivery(name: str, secret: str = SECRET, **body_changes) -> tuple[dict, bytes, dict]:
    """(expected outcome, body, headers) of a recorded delivery, signed with `secret`."""
    recorded = json.loads((DELIVERIES / name).read_text())
    body = json.dumps({**recorded["body"], **body_changes}, indent=2).encode()
    fill = {"{hmac-sha256-hex}": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "{hmac-sha1-hex}": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(), "{secret}": secret}
    headers = {}
    for header, value in recorded["headers"].items():
        for placeholder, filled in fill.items():
            value = value.replace(placeholder, filled)
        headers[header] = value
    return recorded["expect"], body, headers


# A rejected delivery is counted in Redis (incoming/endpoint.py): every test has it, with fresh budgets.
pytestmark = pytest.mark.usefixtures("full_rejection_budgets")

def send(client, body: bytes, headers: dict):
    content_type = headers.get("Content-Type", "application/json")
    sent = {k: v for k, v in headers.items() if k not in ("Content-Type", "Request-URL")}
    return client.post("/hooks/shop/", data=body, content_type=content_type, headers=sent)


@pytest.fixture
def dispatched(monkeypatch) -> list[int]:
    sent = []
    monkeypatch.setattr(enqueue, "send", sent.append)
    return sent


def make_app(expect: dict, repo_url: str | None = None) -> App:
    return App.objects.create(name="shop", repo_url=repo_url or expect["app_repo_url"], branch=expect["branch"],
                              webhook_secret=SECRET)


def test_every_provider_has_a_recorded_delivery():
    assert {name.split("/")[0] for name in FILES} == {
        "github", "gitlab", "gitea", "forgejo", "gogs", "bitbucket", "bitbucket-server"}
    assert "gitlab/push-before-user-username.json" in FILES


@pytest.mark.parametrize("name", FILES)
def test_a_real_push_deploys_the_pushed_commit_as_its_own_provider(client, committed_per_request, redis_server,
                                                                    dispatched, name):
    expect, body, headers = delivery(name)
    make_app(expect)

    response = send(client, body, headers)

    assert response.status_code == 202, response.json()
    deployment = Deployment.objects.get()
    assert (deployment.commit_sha, deployment.ref) == (expect["sha"], expect["branch"])
    assert deployment.triggered_by == expect["pusher"]
    assert dispatched == [deployment.pk]
    recorded = WebhookDelivery.objects.get()
    assert (recorded.provider, recorded.status_code) == (expect["provider"], 202)


@pytest.mark.parametrize("name", FILES)
def test_a_push_of_another_repository_is_ignored_and_says_so(client, committed_per_request, dispatched, name):
    expect, body, headers = delivery(name)
    make_app(expect, repo_url="https://git.example.net/someone/else.git")

    response = send(client, body, headers)

    detail = response.json()["detail"]
    assert response.status_code == 200 and detail.startswith("ignored: the delivery is for "), detail
    assert detail.endswith("which is not the repository shop deploys")
    assert "someone/else" not in detail  # the app's URL is not told (it may carry a password)
    assert not Deployment.objects.exists() and dispatched == []
    assert WebhookDelivery.objects.get().result == detail


@pytest.mark.parametrize("name", FILES)
def test_a_wrong_signature_is_403_and_queues_nothing(client, committed_per_request, dispatched, name):
    expect, body, headers = delivery(name, secret="not-the-secret-of-this-app")
    make_app(expect)

    response = send(client, body, headers)

    assert response.status_code == 403
    assert response.json()["detail"].startswith(f"bad signature for {expect['provider']}")
    assert not Deployment.objects.exists() and dispatched == []
    assert WebhookDelivery.objects.get().provider == expect["provider"]


OWN_SIGNATURE = {"gitea/push.json": "X-Gitea-Signature", "forgejo/push.json": "X-Forgejo-Signature",
                 "gogs/push.json": "X-Gogs-Signature"}


@pytest.mark.parametrize("name", OWN_SIGNATURE)
def test_gitea_forgejo_and_gogs_are_verified_with_their_own_signature_header(client, committed_per_request,
                                                                               dispatched, name):
    """Every other signature header (GitHub's among them) is right: only the provider's own counts."""
    expect, body, headers = delivery(name)
    make_app(expect)
    headers[OWN_SIGNATURE[name]] = "0" * 64

    response = send(client, body, headers)

    assert response.status_code == 403, response.json()
    assert not Deployment.objects.exists() and dispatched == []


@pytest.mark.parametrize("spelling", [
    "HTTPS://LOCALHOST:3000/gitea/webhooks.git/", "http://localhost:3000/gitea/webhooks",
    "git@localhost:gitea/webhooks.git", "ssh://gitea@localhost:2222/gitea/webhooks/"])
def test_the_repository_matches_whatever_url_spelling_the_app_uses(client, committed_per_request, redis_server,
                                                                   dispatched, spelling):
    expect, body, headers = delivery("gitea/push.json")
    make_app(expect, repo_url=spelling)

    assert send(client, body, headers).status_code == 202


def test_a_push_naming_no_repository_is_ignored(client, committed_per_request, dispatched):
    expect, body, headers = delivery("github/push.json", repository={"full_name": "Codertocat/Hello-World"})
    make_app(expect)

    response = send(client, body, headers)

    assert response.json() == {"detail": "ignored: the delivery names no repository, so it cannot be matched to "
                                         "shop's"}
    assert not Deployment.objects.exists() and dispatched == []


def test_a_bitbucket_server_tag_push_and_ping_queue_nothing(client, committed_per_request, dispatched):
    expect, _, _ = delivery("bitbucket-server/refs_changed.json")
    make_app(expect)
    tag = [{"ref": {"id": "refs/tags/v1.0", "displayId": "v1.0", "type": "TAG"}, "refId": "refs/tags/v1.0",
            "fromHash": "0" * 40, "toHash": expect["sha"], "type": "ADD"}]
    _, body, headers = delivery("bitbucket-server/refs_changed.json", changes=tag)
    _, ping_body, ping_headers = delivery("bitbucket-server/refs_changed.json")

    tagged = send(client, body, headers)
    pinged = send(client, ping_body, {**ping_headers, "X-Event-Key": "diagnostics:ping", "X-Request-Id": "ping-1"})

    assert (tagged.json(), pinged.json()) == ({"detail": "ignored: tag push"}, {"detail": "ignored: ping"})
    assert not Deployment.objects.exists() and dispatched == []
