"""POST /hooks/<app>/: every provider's push queues exactly the pushed commit; everything
else is answered, recorded, and queues nothing."""
import hashlib
import hmac
import json
import uuid

import pytest
from django.conf import settings

from deployments import enqueue
from deployments.models import App, Deployment, WebhookDelivery

SHA = "a3f1c2e4b5d60718293a4b5c6d7e8f9012345678"
SECRET = "hook-secret-for-tests-0123456789"
# The app's repository; every helper's payload names it (tests/web/test_deliveries.py: other repositories).
REPO_URL = "https://git.example.com/team/shop.git"
WEB_URL, SSH_URL = "https://git.example.com/team/shop", "git@git.example.com:team/shop.git"


def _sign(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


# Payloads shaped like each provider's documented push event (trimmed to realistic fields).
def github(ref="refs/heads/main", after=SHA, event="push", delivery=None):
    body = json.dumps({
        "ref": ref, "before": "0" * 39 + "1", "after": after, "created": False, "deleted": False, "forced": False,
        "repository": {"id": 1296269, "full_name": "team/shop", "default_branch": "main", "clone_url": REPO_URL,
                       "ssh_url": SSH_URL, "html_url": WEB_URL},
        "pusher": {"name": "octocat", "email": "octocat@github.com"},
        "head_commit": {"id": after, "message": "Fix checkout", "author": {"name": "Mona"}},
        "commits": [{"id": after, "message": "Fix checkout"}],
    }).encode()
    return body, {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
                  "X-Hub-Signature-256": "sha256=" + _sign(body), "User-Agent": "GitHub-Hookshot/044aadd"}


def gitlab(ref="refs/heads/main", after=SHA, event="Push Hook", delivery=None):
    body = json.dumps({
        "object_kind": "push", "event_name": "push", "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": after, "ref": ref, "checkout_sha": after, "user_id": 4, "user_name": "John Smith",
        "user_username": "jsmith", "project_id": 15,
        "project": {"name": "Shop", "path_with_namespace": "team/shop", "default_branch": "main",
                    "web_url": WEB_URL, "git_ssh_url": SSH_URL, "git_http_url": REPO_URL},
        "commits": [{"id": after, "message": "Update Catalan translation"}], "total_commits_count": 1,
    }).encode()
    return body, {"X-Gitlab-Event": event, "X-Gitlab-Token": SECRET,
                  "X-Gitlab-Event-UUID": delivery or str(uuid.uuid4()), "X-Gitlab-Instance": "https://gitlab.com"}


def gitea(ref="refs/heads/main", after=SHA, event="push", delivery=None):
    body = json.dumps({
        "ref": ref, "before": "28e1879d029cb852e4844d9c718537df08844e03", "after": after,
        "compare_url": "http://localhost:3000/gitea/webhooks/compare/28e1879...", "commits": [{"id": after}],
        "repository": {"id": 140, "full_name": "team/shop", "default_branch": "main", "clone_url": REPO_URL,
                       "ssh_url": SSH_URL, "html_url": WEB_URL},
        "pusher": {"id": 1, "login": "gitea", "username": "gitea"}, "sender": {"login": "gitea"},
    }).encode()
    return body, {"X-Gitea-Event": event, "X-Gitea-Delivery": delivery or str(uuid.uuid4()),
                  "X-Gitea-Signature": _sign(body)}


def bitbucket(ref="refs/heads/main", after=SHA, event="repo:push", delivery=None):
    kind, name = ("tag", ref[len("refs/tags/"):]) if ref.startswith("refs/tags/") else ("branch", ref.split("/")[-1])
    body = json.dumps({
        "actor": {"display_name": "Emma", "type": "user"},
        "repository": {"full_name": "team/shop", "type": "repository", "links": {"html": {"href": WEB_URL}}},
        "push": {"changes": [{
            "new": {"type": kind, "name": name, "target": {"type": "commit", "hash": after, "message": "Fix"}},
            "old": {"type": kind, "name": name, "target": {"hash": "1" * 40}},
            "created": False, "forced": False, "closed": False,
        }]},
    }).encode()
    return body, {"X-Event-Key": event, "X-Request-UUID": delivery or str(uuid.uuid4()),
                  "X-Hub-Signature": "sha256=" + _sign(body), "X-Attempt-Number": "1"}


def generic(ref="refs/heads/main", after=SHA, event=None, delivery=None):
    body = json.dumps({"ref": ref, "after": after}).encode()
    headers = {"Authorization": f"Bearer {SECRET}"}
    if delivery:
        headers["Idempotency-Key"] = delivery
    return body, headers


PROVIDERS = {"github": github, "gitlab": gitlab, "gitea": gitea, "bitbucket": bitbucket, "generic": generic}
PUSHERS = {"github": "octocat", "gitlab": "jsmith", "gitea": "gitea", "bitbucket": "Emma", "generic": "generic"}


@pytest.fixture
def dispatched(monkeypatch) -> list[int]:
    """Deployments handed to the queue, recorded instead of sent (no build needed here)."""
    sent = []
    monkeypatch.setattr(enqueue, "send", sent.append)
    return sent


@pytest.fixture
def app(committed_per_request) -> App:
    return App.objects.create(name="shop", repo_url=REPO_URL, branch="main", webhook_secret=SECRET)


pytestmark = pytest.mark.usefixtures("full_rejection_budgets")


def _post(client, body: bytes, headers: dict, name: str = "shop", address: str = "127.0.0.1"):
    return client.post(f"/hooks/{name}/", data=body, content_type="application/json", headers=headers,
                       REMOTE_ADDR=address)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_push_to_the_branch_queues_exactly_the_pushed_commit(client, app, redis_server, dispatched, provider):
    response = _post(client, *PROVIDERS[provider]())

    assert response.status_code == 202, response.json()
    deployment = Deployment.objects.get()
    assert response.json() == {"detail": f"queued deployment #{deployment.pk} of {SHA[:12]}", "deployment": deployment.pk}
    assert (deployment.commit_sha, deployment.ref, deployment.trigger) == (SHA, "main", "webhook")
    assert deployment.triggered_by == PUSHERS[provider]
    assert dispatched == [deployment.pk]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.provider, delivery.status_code, delivery.deployment_id) == (provider, 202, deployment.pk)


def test_generic_hook_without_a_body_deploys_the_branch_head(client, app, redis_server, dispatched):
    response = _post(client, b"", {"Authorization": f"Bearer {SECRET}"})

    assert response.status_code == 202
    deployment = Deployment.objects.get()
    assert (deployment.ref, deployment.commit_sha) == ("main", "")


def _tamper(body: bytes, headers: dict) -> tuple[bytes, dict]:
    return body.replace(b"main", b"mainx", 1) if b"main" in body else body + b" ", headers


BAD_REQUESTS = {
    "github bad signature": lambda: _tamper(*github()),
    "gitlab wrong token": lambda: (gitlab()[0], {**gitlab()[1], "X-Gitlab-Token": "nope"}),
    "gitea bad signature": lambda: _tamper(*gitea()),
    "bitbucket bad signature": lambda: _tamper(*bitbucket()),
    "generic wrong bearer": lambda: (generic()[0], {"Authorization": "Bearer nope"}),
    "github signature missing": lambda: (github()[0], {"X-GitHub-Event": "push"}),
    "no provider headers": lambda: (github()[0], {}),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_or_missing_signature_is_403_and_queues_nothing(client, app, dispatched, case):
    response = _post(client, *BAD_REQUESTS[case]())

    assert response.status_code == 403
    assert "signature" in response.json()["detail"]
    assert not Deployment.objects.exists() and dispatched == []
    assert WebhookDelivery.objects.get().result.startswith("rejected:")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"ref": "refs/heads/main", "after": "not-a-sha"}',
                                  b'{"ref": 42}', b'{"push": {"changes": "x"}}'])
def test_malformed_body_with_a_valid_signature_is_400(client, app, dispatched, body):
    github_headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + _sign(body)}
    bitbucket_headers = {"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + _sign(body)}

    statuses = [_post(client, body, headers).status_code for headers in (github_headers, bitbucket_headers)]

    assert 400 in statuses and set(statuses) <= {400, 200}  # a body one provider cannot read at all
    assert not Deployment.objects.exists() and dispatched == []


def test_body_over_one_mebibyte_is_413(client, app, dispatched):
    body = json.dumps({"ref": "refs/heads/main", "after": SHA, "padding": "x" * (1024 * 1024)}).encode()

    response = _post(client, body, {"Authorization": f"Bearer {SECRET}"})

    assert response.status_code == 413
    assert not Deployment.objects.exists() and dispatched == []


def test_unknown_app_is_404(client, app, dispatched):
    response = _post(client, *github(), name="nope")

    assert response.status_code == 404 and response.json()["detail"] == "no app named 'nope'"
    assert not Deployment.objects.exists() and not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_repeated_delivery_id_queues_nothing(client, app, redis_server, dispatched, provider):
    body, headers = PROVIDERS[provider](delivery="delivery-0001")
    first, again = _post(client, body, headers), _post(client, body, headers)

    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["detail"] == "ignored: duplicate delivery delivery-0001"
    assert Deployment.objects.count() == 1 and len(dispatched) == 1
    assert WebhookDelivery.objects.count() == 2


IGNORED = [
    ("github", {"ref": "refs/heads/dev"}, "ignored: push to dev; shop deploys main"),
    ("gitlab", {"ref": "refs/heads/feature/x"}, "ignored: push to feature/x; shop deploys main"),
    ("gitea", {"ref": "refs/heads/dev"}, "ignored: push to dev; shop deploys main"),
    ("bitbucket", {"ref": "refs/heads/dev"}, "ignored: push to dev; shop deploys main"),
    ("generic", {"ref": "refs/heads/dev"}, "ignored: push to dev; shop deploys main"),
    ("github", {"ref": "refs/tags/v1.0"}, "ignored: tag push"),
    ("gitlab", {"ref": "refs/tags/v1.0", "event": "Tag Push Hook"}, "ignored: tag push"),
    ("gitea", {"ref": "refs/tags/v1.0"}, "ignored: tag push"),
    ("bitbucket", {"ref": "refs/tags/v1.0"}, "ignored: tag push"),
    ("github", {"event": "ping"}, "ignored: ping"),
    ("github", {"event": "issues"}, "ignored: issues event"),
    ("gitlab", {"event": "Merge Request Hook"}, "ignored: Merge Request Hook event"),
    ("bitbucket", {"event": "pullrequest:created"}, "ignored: pullrequest:created event"),
    ("gitea", {"after": "0" * 40}, "ignored: branch deleted"),
]


@pytest.mark.parametrize("provider, changes, detail", IGNORED)
def test_other_branches_tags_and_events_are_answered_2xx_and_queue_nothing(client, app, dispatched, provider,
                                                                           changes, detail):
    response = _post(client, *PROVIDERS[provider](**changes))

    assert response.status_code == 200 and response.json() == {"detail": detail}
    assert not Deployment.objects.exists() and dispatched == []
    assert WebhookDelivery.objects.get().result == detail


def test_auto_deploy_off_records_the_push_and_queues_nothing(client, app, dispatched):
    App.objects.filter(pk=app.pk).update(auto_deploy=False)

    response = _post(client, *github())

    assert response.json() == {"detail": "ignored: auto-deploy is off"}
    assert not Deployment.objects.exists() and dispatched == []
    assert WebhookDelivery.objects.get().push["sha"] == SHA


def test_redeliver_acts_on_the_recorded_push_again(client, app, redis_server, dispatched, django_user_model):
    body, headers = github(delivery="d-77")
    _post(client, body, headers)
    original = WebhookDelivery.objects.get()
    client.force_login(django_user_model.objects.create_superuser("root"))

    response = client.post(f"/apps/shop/deliveries/{original.pk}/redeliver")

    assert response.status_code == 302
    again = WebhookDelivery.objects.exclude(pk=original.pk).get()
    assert again.redelivery_of_id == original.pk and again.status_code == 202
    assert list(Deployment.objects.values_list("commit_sha", flat=True)) == [SHA, SHA]


def test_a_rejected_delivery_is_still_403_while_redis_is_down(client, app, dispatched, redis_server):
    """The count of rejections is lost while Redis is away; the delivery is refused all the same,
    never a 500."""
    redis_server.stop()
    try:
        response = _post(client, *_tamper(*github()), address="192.0.2.68")
    finally:
        redis_server.start()
    assert response.status_code == 403 and dispatched == []


def test_a_forged_flood_gets_429_past_the_budget_and_signed_deliveries_still_queue(client, app, dispatched):
    budget = settings.WEBHOOK_REJECTIONS_PER_MINUTE
    flood = [_post(client, *_tamper(*github()), address="192.0.2.66").status_code for _ in range(budget + 30)]

    assert flood == [403] * budget + [429] * 30
    assert WebhookDelivery.objects.count() == budget  # nothing recorded past the budget
    assert _post(client, *_tamper(*github()), address="192.0.2.67").status_code == 403  # others keep theirs
    signed_elsewhere = _post(client, *github(), address="198.51.100.1")
    signed_from_the_flood = _post(client, *github(after="b" * 40), address="192.0.2.66")
    assert (signed_elsewhere.status_code, signed_from_the_flood.status_code) == (202, 202)
    assert len(dispatched) == 2


def test_rejected_deliveries_from_many_addresses_keep_only_the_newest_per_app(client, app, dispatched):
    kept = settings.WEBHOOK_REJECTIONS_KEPT
    assert _post(client, *github()).status_code == 202
    statuses = {_post(client, *_tamper(*github()), address=f"192.0.2.{n % 40}").status_code for n in range(kept + 50)}

    rejected = WebhookDelivery.objects.filter(status_code=403)
    assert statuses == {403}
    assert rejected.count() == kept
    assert WebhookDelivery.objects.filter(status_code=202).count() == 1  # the accepted one is never pruned
    newest = WebhookDelivery.objects.order_by("-id").values_list("id", flat=True)[0]
    assert sorted(rejected.values_list("id", flat=True)) == list(range(newest - kept + 1, newest + 1))


def test_burst_of_pushes_while_deploying_builds_at_most_twice_and_ends_on_the_last_commit(stack, app_repo, client):
    """20 pushes arrive while a deployment runs: one build for the first, one for the last."""
    slow = 'RUN ["/bin/busybox", "sleep", "3"]\n'
    app_repo.commit_version("v0", extra_dockerfile=slow)
    app = stack.create_app(app_repo, name="burst")
    App.objects.filter(pk=app.pk).update(webhook_secret=SECRET)
    # A Bearer delivery: the app's repository is a path here, which no provider's payload can name.
    first = _post(client, *generic(after=app_repo._git("rev-parse", "HEAD").strip()), name="burst")
    stack.wait_for_state(Deployment.objects.get(pk=first.json()["deployment"]), Deployment.State.RUNNING)

    pushed = []
    for number in range(1, 21):
        pushed.append(app_repo.commit_version(f"v{number}", extra_dockerfile=slow))
        assert _post(client, *generic(after=pushed[-1]), name="burst").status_code == 202
    stack.wait_until_idle(timeout=180)

    deployments = Deployment.objects.filter(app=app)
    built = [d for d in deployments if "build" in d.phase_times]
    assert len(built) <= 2
    assert deployments.filter(state=Deployment.State.SUPERSEDED).count() >= 19
    live = App.objects.get(pk=app.pk).live_deployment
    assert live.commit_sha == pushed[-1]
    assert stack.get("burst.localhost") == (200, "v20")
