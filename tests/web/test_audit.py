"""The audit log: every state-changing action is recorded with who, when, from where and through
what; each person sees the events of the apps they can see; env var values are never recorded."""
import hashlib
import hmac
import json
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from deployments import enqueue
from deployments.models import ApiToken, App, AuditEvent, Deployment, Membership

SECRET_VALUE = "hunter2-never-in-the-audit-log"


@pytest.fixture(autouse=True)
def dispatched(monkeypatch) -> list[int]:
    """Deployments are queued, not run: this file is about what gets recorded."""
    sent = []
    monkeypatch.setattr(enqueue, "send", sent.append)
    return sent


@pytest.fixture
def world(committed_per_request, django_user_model, released_repo):
    users = {name: django_user_model.objects.create_user(name) for name in ("owner", "viewer", "outsider", "mallory")}
    users["root"] = django_user_model.objects.create_superuser("root")
    app = App.objects.create(name="shop", repo_url=released_repo.url, owner=users["owner"], webhook_secret="s" * 43)
    Membership.objects.create(app=app, user=users["viewer"], role="viewer")
    other = App.objects.create(name="secret-app", repo_url=released_repo.url, owner=users["mallory"])
    return SimpleNamespace(users=users, app=app, other=other, repo=released_repo)


def panel(user) -> Client:
    client = Client(REMOTE_ADDR="203.0.113.7")
    client.force_login(user)
    return client


def api(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(user, 't')[1]}", REMOTE_ADDR="198.51.100.9")


def events(**filters) -> list[tuple]:
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("username", "via", "address", "action"))


def test_panel_actions_are_recorded_with_user_address_and_channel(world, redis_server):
    client = panel(world.users["owner"])
    client.post(reverse("deploy", args=["shop"]), {"ref": "main"})
    client.post(reverse("env_set", args=["shop"]), {"key": "API_KEY", "value": SECRET_VALUE})
    client.post(reverse("env_delete", args=["shop", "API_KEY"]))
    client.post(reverse("member_set", args=["shop"]), {"username": "outsider", "role": "deployer"})
    client.post(reverse("member_remove", args=["shop", world.users["outsider"].pk]))
    client.post(reverse("zero_downtime", args=["shop"]), {})
    client.post(reverse("webhook_rotate", args=["shop"]))
    client.post(reverse("tokens"), {"name": "ci"})

    recorded = events()
    assert [action for *_, action in recorded] == [
        "deploy", "env.set", "env.delete", "member.set", "member.remove", "app.settings", "webhook.rotate",
        "token.create"]
    assert {(user, via, address) for user, via, address, _ in recorded} == {("owner", "panel", "203.0.113.7")}
    details = list(AuditEvent.objects.values_list("detail", flat=True))
    assert "API_KEY" in details and not any(SECRET_VALUE in d for d in details)
    assert AuditEvent.objects.get(action="member.set").detail == "outsider as deployer"


def test_api_actions_are_recorded_as_api_with_the_changes_named(world, redis_server):
    client = api(world.users["owner"])
    response = client.patch("/api/apps/shop", {"memory_limit_mb": 256, "env": {"TOKEN": SECRET_VALUE},
                                               "domains": ["shop.example.com"]}, content_type="application/json")
    assert response.status_code == 200, response.content
    deployment = client.post("/api/apps/shop/deploy", {}, content_type="application/json").json()["id"]
    client.post(f"/api/deployments/{deployment}/cancel")

    assert events() == [("owner", "api", "198.51.100.9", "app.settings"), ("owner", "api", "198.51.100.9", "deploy"),
                        ("owner", "api", "198.51.100.9", "deployment.cancel")]
    change = AuditEvent.objects.get(action="app.settings").detail
    assert "memory_limit_mb=256" in change and "+domain shop.example.com" in change and "env TOKEN" in change
    assert SECRET_VALUE not in change


def test_a_refused_change_records_nothing(world, redis_server):
    response = api(world.users["owner"]).patch("/api/apps/shop", {"pids_limit": 1}, content_type="application/json")

    assert response.status_code == 400 and "pids_limit" in response.json()["detail"]
    assert events() == []


def test_cli_actions_are_recorded_as_cli(world, redis_server):
    call_command("apps", "create", "made-here", "--repo", world.repo.url, "--memory-limit-mb", "128")
    call_command("apps", "update", "made-here", "--cpu-limit", "0.5", "--capabilities", "NET_BIND_SERVICE")
    call_command("deploy", "made-here")
    call_command("apps", "delete", "made-here")

    assert [(via, address, action) for _, via, address, action in events()] == [
        ("cli", None, "app.create"), ("cli", None, "app.settings"), ("cli", None, "deploy"), ("cli", None, "app.delete")]
    deleted = AuditEvent.objects.filter(action="app.delete").get()
    assert deleted.app is None and deleted.app_name == "made-here"  # the record outlives the app


def test_cli_update_refuses_bad_limits_and_changes_nothing(world, redis_server):
    with pytest.raises(CommandError, match="capability"):
        call_command("apps", "update", "shop", "--capabilities", "SYS_ADMIN", "--memory-limit-mb", "64")

    app = App.objects.get(pk=world.app.pk)
    assert (app.capabilities, app.memory_limit_mb) == ("", 512) and events() == []


def test_a_deploying_webhook_is_recorded_with_its_address(world, redis_server):
    App.objects.filter(pk=world.app.pk).update(repo_url="https://github.com/octocat/shop.git")  # the push's repository
    body = json.dumps({"ref": "refs/heads/main", "after": "b" * 40, "pusher": {"name": "octocat"},
                       "repository": {"html_url": "https://github.com/octocat/shop"}}).encode()
    signature = "sha256=" + hmac.new(b"s" * 43, body, hashlib.sha256).hexdigest()

    response = Client(REMOTE_ADDR="192.0.2.44").post(
        "/hooks/shop/", body, content_type="application/json",
        HTTP_X_GITHUB_EVENT="push", HTTP_X_GITHUB_DELIVERY="d-1", HTTP_X_HUB_SIGNATURE_256=signature)

    assert response.status_code == 202, response.content
    event = AuditEvent.objects.get()
    assert (event.via, event.address, event.action, event.app_name) == ("webhook", "192.0.2.44", "deploy", "shop")
    assert "octocat" in event.detail


def test_each_person_sees_only_the_events_of_apps_they_can_see(world, redis_server):
    api(world.users["mallory"]).post("/api/apps/secret-app/deploy", {}, content_type="application/json")
    api(world.users["owner"]).post("/api/apps/shop/deploy", {}, content_type="application/json")

    def apps_in(user) -> set[str]:
        return {event["app"] for event in api(user).get("/api/audit").json()}

    assert apps_in(world.users["viewer"]) == {"shop"} and apps_in(world.users["outsider"]) == set()
    assert apps_in(world.users["root"]) == {"shop", "secret-app"}
    assert api(world.users["outsider"]).get("/api/apps/secret-app/audit").status_code == 404
    assert [e["action"] for e in api(world.users["viewer"]).get("/api/apps/shop/audit").json()] == ["deploy"]
    page = panel(world.users["viewer"]).get(reverse("audit")).content.decode()
    assert "shop" in page and "secret-app" not in page


def test_the_app_pages_activity_tab_lists_its_recent_activity(world, redis_server):
    client = panel(world.users["owner"])
    client.post(reverse("deploy", args=["shop"]), {"ref": "main"})

    page = client.get(reverse("app_tab", args=["shop", "activity"]))

    assert [e.action for e in page.context["audit_events"]] == ["deploy"]
    assert 'id="audit"' in page.content.decode() and "203.0.113.7" in page.content.decode()
    assert Deployment.objects.get().triggered_by == "owner"
