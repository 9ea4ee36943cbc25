"""Panel routes for webhooks and API tokens: same access rules as every other page."""
import pytest

from deployments.models import ApiToken, App, Membership, WebhookDelivery

ROUTES = {  # name: (path, role needed)
    "auto_deploy": ("/apps/shop/auto-deploy", "admin"),
    "webhook_secret": ("/apps/shop/webhook/secret", "admin"),
    "webhook_rotate": ("/apps/shop/webhook/rotate", "admin"),
    "redeliver": ("/apps/shop/deliveries/{delivery}/redeliver", "deployer"),
}


@pytest.fixture
def world(committed_per_request, django_user_model):
    users = {name: django_user_model.objects.create_user(name, password="pw") for name in
             ("owner", "viewer", "deployer", "outsider")}
    app = App.objects.create(name="shop", repo_url="/srv/shop.git", owner=users["owner"], webhook_secret="s" * 43)
    for role in ("viewer", "deployer"):
        Membership.objects.create(app=app, user=users[role], role=role)
    delivery = WebhookDelivery.objects.create(app=app, provider="github", status_code=403, result="rejected: x")
    return users, app, delivery


def _path(route: str, delivery) -> str:
    return ROUTES[route][0].format(delivery=delivery.pk)


@pytest.mark.parametrize("route", ROUTES)
def test_anonymous_is_sent_to_login_and_outsider_gets_404(client, world, route):
    users, app, delivery = world
    assert client.post(_path(route, delivery))["Location"].startswith("/login/")
    client.force_login(users["outsider"])
    assert client.post(_path(route, delivery)).status_code == 404
    assert App.objects.get(pk=app.pk).webhook_secret == "s" * 43 and App.objects.get(pk=app.pk).auto_deploy


@pytest.mark.parametrize("route", ROUTES)
def test_a_role_below_the_one_needed_gets_403(client, world, route):
    users, app, delivery = world
    client.force_login(users["viewer"])
    assert client.post(_path(route, delivery)).status_code == 403
    if ROUTES[route][1] == "admin":
        client.force_login(users["deployer"])
        assert client.post(_path(route, delivery)).status_code == 403
    assert App.objects.get(pk=app.pk).webhook_secret == "s" * 43


def test_owner_reveals_rotates_and_switches_auto_deploy(client, world):
    users, app, _ = world
    client.force_login(users["owner"])

    assert client.post("/apps/shop/webhook/secret").json() == {"secret": "s" * 43}
    client.post("/apps/shop/webhook/rotate")
    rotated = App.objects.get(pk=app.pk).webhook_secret
    assert rotated != "s" * 43 and len(rotated) >= 40
    client.post("/apps/shop/auto-deploy", {})
    assert App.objects.get(pk=app.pk).auto_deploy is False
    page = client.get("/apps/shop/").content.decode()
    assert rotated not in page and "Auto-deploy off" in page


def test_a_rejected_delivery_cannot_be_redelivered(client, world):
    users, _, delivery = world
    client.force_login(users["deployer"])
    response = client.post(f"/apps/shop/deliveries/{delivery.pk}/redeliver", follow=True)
    assert "Only deliveries with a valid signature can be redelivered." in response.content.decode()
    assert WebhookDelivery.objects.count() == 1


def test_tokens_page_needs_login(client, world):
    assert client.get("/tokens/")["Location"] == "/login/?next=/tokens/"


def test_tokens_are_shown_once_stored_hashed_and_revocable_only_by_their_user(client, world):
    users, _, _ = world
    client.force_login(users["deployer"])
    page = client.post("/tokens/", {"name": "ci"}).content.decode()
    token = ApiToken.objects.get(user=users["deployer"])
    plain = page.split('<code class="copy" style="margin-top:8px">')[1].split("</code>")[0]
    assert plain.startswith("sy_") and ApiToken.hash(plain) == token.token_hash and plain not in token.token_hash
    assert plain not in client.get("/tokens/").content.decode()

    client.force_login(users["outsider"])
    client.post(f"/tokens/{token.pk}/revoke")
    assert ApiToken.objects.filter(pk=token.pk).exists()
    client.force_login(users["deployer"])
    client.post(f"/tokens/{token.pk}/revoke")
    assert not ApiToken.objects.filter(pk=token.pk).exists()
