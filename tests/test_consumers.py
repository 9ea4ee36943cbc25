"""WebSockets: log lines live and in order, resume after a sequence number, access as on pages."""
import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from deployments.engine.logs import DeploymentLog
from deployments.models import App, Deployment, Membership
from deployments.routing import websocket_urlpatterns

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


def _communicator(path: str, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path)
    communicator.scope["user"] = user
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


def test_stored_then_live_lines_arrive_in_order(people, redis_server):
    deployment = people["deployment"]
    _write(deployment.id, "line 1", "line 2", "line 3")

    async def scenario():
        communicator = _communicator(f"/ws/deployments/{deployment.id}/", people["viewer"])
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
        communicator = _communicator(f"/ws/deployments/{deployment.id}/?after=2400", people["owner"])
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
        communicator = _communicator(f"/ws/deployments/{deployment.id}/", people["owner"])
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
        communicator = _communicator(path, user)
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
    stack.deploy_and_wait(app)
    owner = django_user_model.objects.create_user("ops", password="x")
    App.objects.filter(pk=app.pk).update(owner=owner)

    async def scenario():
        communicator = _communicator(f"/ws/apps/{app.name}/output/", owner)
        assert (await communicator.connect())[0]
        message = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return message

    assert async_to_sync(scenario)() == {"type": "output", "lines": ["serving v1"]}
