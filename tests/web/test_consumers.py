"""WebSockets: log lines live and in order, resume after a sequence number, access as on pages."""
import asyncio
from importlib import import_module

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.test import Client

from deployments.engine.logs import DeploymentLog, wait_until_published
from deployments import consumers
from deployments.models import App, Deployment, EnvVar, Membership
from deployments.ws_urls import websocket_urlpatterns

application = URLRouter(websocket_urlpatterns)


@pytest.fixture
def people(transactional_db, django_user_model):
    owner = django_user_model.objects.create_user("owner", password="x")
    outsider = django_user_model.objects.create_user("outsider", password="x")
    viewer = django_user_model.objects.create_user("viewer", password="x")
    app = App.objects.create(name="shop", repo_url="/srv/shop.git", owner=owner)
    Membership.objects.create(app=app, user=viewer, role=Membership.Role.VIEWER)
    deployment = Deployment.objects.create(app=app, ref="main", state=Deployment.State.RUNNING, phase="build")
    return {"owner": owner, "outsider": outsider, "viewer": viewer, "app": app, "deployment": deployment}


def _session_of(user) -> SessionBase | None:
    """The session the login page would leave, which the consumers re-check while connected."""
    if not user.is_authenticated:
        return None
    client = Client()
    client.force_login(user)
    return import_module(settings.SESSION_ENGINE).SessionStore(client.cookies[settings.SESSION_COOKIE_NAME].value)


async def _communicator(path: str, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path)
    communicator.scope["user"] = user
    communicator.scope["session"] = await database_sync_to_async(_session_of)(user)
    return communicator


async def _receive_lines(communicator: WebsocketCommunicator, count: int) -> list[dict]:
    lines = []
    while len(lines) < count:
        message = await communicator.receive_json_from(timeout=5)
        if message["type"] == "lines":
            lines += message["lines"]
    return lines


def _write(deployment_id: int, *texts: str) -> None:
    log = DeploymentLog(deployment_id)
    for text in texts:
        log.write(text)
    log.flush()
    wait_until_published()  # else a listener joining now may get these lines broadcast besides its backlog


def test_stored_then_live_lines_arrive_in_order(people, redis_server):
    deployment = people["deployment"]
    _write(deployment.id, "line 1", "line 2", "line 3")

    async def scenario():
        communicator = await _communicator(f"/ws/deployments/{deployment.id}/", people["viewer"])
        connected, _ = await communicator.connect()
        assert connected
        backlog = await _receive_lines(communicator, 3)
        state = await communicator.receive_json_from(timeout=5)
        await database_sync_to_async(_write)(deployment.id, *[f"live {i}" for i in range(1, 251)])
        live = await _receive_lines(communicator, 250)
        await communicator.disconnect()
        return backlog, state, live

    backlog, state, live = async_to_sync(scenario)()

    assert [line["text"] for line in backlog] == ["line 1", "line 2", "line 3"]
    assert state["type"] == "state" and state["state"] == "running" and state["phase"] == "build"
    assert [step["status"] for step in state["steps"]][:2] == ["pending", "pending"]
    assert [line["seq"] for line in live] == list(range(4, 254))
    assert live[-1]["text"] == "live 250"


def test_reconnect_resumes_after_the_last_sequence_it_has(people, redis_server):
    deployment = people["deployment"]
    _write(deployment.id, *[f"line {i}" for i in range(1, 2501)])

    async def scenario():
        communicator = await _communicator(f"/ws/deployments/{deployment.id}/?after=2400", people["owner"])
        assert (await communicator.connect())[0]
        resumed = await _receive_lines(communicator, 100)
        await communicator.send_json_to({"resume_after": 2498})
        gap = []
        while len(gap) < 2:
            message = await communicator.receive_json_from(timeout=5)
            if message["type"] == "lines":
                gap += message["lines"]
        await communicator.disconnect()
        return resumed, gap

    resumed, gap = async_to_sync(scenario)()

    assert [line["seq"] for line in resumed] == list(range(2401, 2501))
    assert [line["text"] for line in gap] == ["line 2499", "line 2500"]


def test_backlog_of_a_long_log_comes_in_pages(people, redis_server):
    deployment = people["deployment"]
    _write(deployment.id, *[f"line {i}" for i in range(1, 2501)])

    async def scenario():
        communicator = await _communicator(f"/ws/deployments/{deployment.id}/", people["owner"])
        assert (await communicator.connect())[0]
        sizes = []
        while sum(sizes) < 2500:
            message = await communicator.receive_json_from(timeout=5)
            if message["type"] == "lines":
                sizes.append(len(message["lines"]))
        await communicator.disconnect()
        return sizes

    assert async_to_sync(scenario)() == [1000, 1000, 500]


@pytest.mark.parametrize("path", ["/ws/deployments/{id}/", "/ws/apps/shop/output/"])
def test_outsider_and_anonymous_are_refused_before_any_data(people, redis_server, path):
    from django.contrib.auth.models import AnonymousUser

    _write(people["deployment"].id, "secret build output")
    path = path.format(id=people["deployment"].id)

    async def attempt(user):
        communicator = await _communicator(path, user)
        connected, _ = await communicator.connect()
        nothing = await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()
        return connected, nothing

    assert async_to_sync(attempt)(people["outsider"]) == (False, True)
    assert async_to_sync(attempt)(AnonymousUser()) == (False, True)
    assert async_to_sync(attempt)(people["viewer"])[0] is True


def test_container_output_streams_the_live_release(stack, app_repo, django_user_model):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    stack.deploy_live(app)
    owner = django_user_model.objects.create_user("ops", password="x")
    App.objects.filter(pk=app.pk).update(owner=owner)

    async def scenario():
        communicator = await _communicator(f"/ws/apps/{app.name}/output/", owner)
        assert (await communicator.connect())[0]
        message = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return message

    assert async_to_sync(scenario)() == {"type": "output", "lines": ["serving v1"]}


async def _closed_within(communicator: WebsocketCommunicator, seconds: float) -> dict | None:
    """The close message if the server closes the socket within `seconds` (data before it skipped);
    None otherwise (and the communicator has stopped the consumer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            message = await communicator.receive_output(timeout=left)
        except asyncio.TimeoutError:
            return None
        if message["type"] == "websocket.close":
            return message
    return None


def _remove_member(people) -> None:
    Membership.objects.filter(user=people["viewer"]).delete()


def _delete_app(people) -> None:
    people["app"].delete()


def _deactivate(people) -> None:
    type(people["viewer"]).objects.filter(pk=people["viewer"].pk).update(is_active=False)


def _log_out(people) -> None:
    from django.contrib.sessions.models import Session

    Session.objects.all().delete()


def _change_password(people) -> None:
    viewer = people["viewer"]
    viewer.set_password("a new one entirely 42")
    viewer.save()


@pytest.mark.parametrize("path", ["/ws/deployments/{id}/", "/ws/apps/shop/output/"])
@pytest.mark.parametrize("lose_access", [_remove_member, _delete_app, _deactivate, _log_out, _change_password])
def test_a_socket_closes_within_seconds_once_its_user_loses_access(people, redis_server, path, lose_access):
    path = path.format(id=people["deployment"].id)

    async def scenario():
        communicator = await _communicator(path, people["viewer"])
        assert (await communicator.connect())[0]
        await communicator.receive_json_from(timeout=5)  # the state, or "(no live release yet)"
        await database_sync_to_async(lose_access)(people)
        closed = await _closed_within(communicator, consumers.ACCESS_RECHECK + 3)
        await communicator.disconnect()
        return closed

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": consumers.ACCESS_LOST}


def test_a_member_who_keeps_access_stays_connected_and_receives_lines(people, redis_server):
    deployment = people["deployment"]

    async def scenario():
        communicator = await _communicator(f"/ws/deployments/{deployment.id}/", people["viewer"])
        assert (await communicator.connect())[0]
        await communicator.receive_json_from(timeout=5)  # the state
        quiet = await communicator.receive_nothing(timeout=consumers.ACCESS_RECHECK * 2 + 0.5)
        await database_sync_to_async(_write)(deployment.id, "still here")
        lines = await _receive_lines(communicator, 1)
        await communicator.disconnect()
        return quiet, lines

    quiet, lines = async_to_sync(scenario)()

    assert quiet is True  # neither closed nor anything else during two re-checks
    assert [line["text"] for line in lines] == ["still here"]


def _handshake(people, headers: dict[str, str]) -> bool:
    """Whether the panel's own ASGI application (origin check, session auth) accepts the socket."""
    from panel.asgi import application as panel_application

    client = Client()
    client.force_login(people["viewer"])
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    encoded = [(name.encode(), value.encode()) for name, value in {**headers, "cookie": cookie}.items()]

    async def attempt():
        communicator = WebsocketCommunicator(panel_application, f"/ws/deployments/{people['deployment'].id}/",
                                             headers=encoded)
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    return async_to_sync(attempt)()


@pytest.mark.parametrize("headers", [
    {"host": "panel.example.com", "origin": "http://panel.example.com"},
    {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"},
    {"host": "panel.example.com", "origin": "https://panel.example.com", "x-forwarded-proto": "https"},
    {"host": "10.0.0.5:8000", "origin": "https://panel.example.com"},  # listed in CSRF_TRUSTED_ORIGINS
])
def test_a_socket_from_the_panels_own_origin_is_accepted(people, redis_server, settings, headers):
    settings.CSRF_TRUSTED_ORIGINS = ["https://panel.example.com"]

    assert _handshake(people, headers) is True


@pytest.mark.parametrize("headers", [
    {"host": "panel.example.com", "origin": "http://evil.example"},
    {"host": "panel.example.com", "origin": "http://panel.example.com.evil.example"},
    {"host": "panel.example.com", "origin": "http://panel.example.com:8001"},
    {"host": "panel.example.com", "origin": "http://panel.example.com", "x-forwarded-proto": "https"},
    {"host": "panel.example.com", "origin": "null"},
    {"host": "panel.example.com"},
])
def test_a_socket_from_a_foreign_or_missing_origin_is_refused(people, redis_server, headers):
    assert _handshake(people, headers) is False


def test_a_socket_for_a_host_outside_allowed_hosts_is_refused(people, redis_server, settings):
    settings.ALLOWED_HOSTS = ["panel.example.com"]

    assert _handshake(people, {"host": "other.example", "origin": "http://other.example"}) is False
    assert _handshake(people, {"host": "panel.example.com", "origin": "http://panel.example.com"}) is True


def test_container_output_masks_the_apps_env_values(stack, app_repo, django_user_model):
    secret = "tok-5f2a9c81e7"
    app_repo.commit_version("v1", cmd='["/bin/busybox", "sh", "-c", "echo api token $API_TOKEN in use; '
                                      'exec /bin/busybox httpd -f -p 8000 -h /www"]')
    app = stack.create_app(app_repo)
    variable = EnvVar(app=app, key="API_TOKEN")
    variable.value = secret
    variable.save()
    stack.deploy_live(app)
    owner = django_user_model.objects.create_user("ops", password="x")
    App.objects.filter(pk=app.pk).update(owner=owner)

    async def scenario():
        communicator = await _communicator(f"/ws/apps/{app.name}/output/", owner)
        assert (await communicator.connect())[0]
        message = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return message

    assert async_to_sync(scenario)() == {"type": "output", "lines": ["api token **** in use"]}
