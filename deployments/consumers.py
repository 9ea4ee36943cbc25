"""WebSockets: a deployment's log and state, and a live app's container output.

Access is checked exactly as on the pages, before the socket is accepted: a user without
access is refused at the handshake and receives nothing. It is checked again every
ACCESS_RECHECK seconds while the socket is open, so a removed member, a deleted app, a
deactivated user or a logged-out session stops receiving within seconds, not when the
browser tab closes.
"""
import asyncio
from importlib import import_module
from types import SimpleNamespace
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from deployments import access, presenters
from deployments.dockerd.values import Container
from deployments.dockerd import output
from deployments.engine.logs import group_name
from deployments.masking import Masker
from deployments.models import App, Deployment, LogLine

BACKLOG_PAGE = 1000
OUTPUT_TAIL = 200
ACCESS_RECHECK = 2.0  # seconds
ACCESS_LOST = 4403  # close code: the application-defined range, after HTTP's 403


class AccessCheckedConsumer(AsyncJsonWebsocketConsumer):
    """Checks access at the handshake and then every ACCESS_RECHECK seconds; closes once it is lost.
    Subclasses say what access means (check_access) and what to stop sending (stop_sending)."""

    def check_access(self, user: AbstractBaseUser) -> None:
        """Raise Http404 or PermissionDenied unless `user` may see this socket's data (sync, in a thread)."""
        raise NotImplementedError

    async def stop_sending(self) -> None:
        """Leave groups, end streams; may be called twice (access lost, then disconnect)."""

    async def allowed(self) -> bool:
        return await database_sync_to_async(self._allowed)(self.scope["user"])

    def watch_access(self) -> None:
        """Start re-checking; call right after accept()."""
        self._watch = asyncio.create_task(self._watch_access())

    async def disconnect(self, code: int) -> None:
        watch = getattr(self, "_watch", None)
        if watch is not None and watch is not asyncio.current_task():
            watch.cancel()
        await self.stop_sending()

    async def _watch_access(self) -> None:
        while True:
            await asyncio.sleep(ACCESS_RECHECK)
            if not await database_sync_to_async(self._still_allowed)():
                break
        await self.stop_sending()
        await self.close(code=ACCESS_LOST)

    def _allowed(self, user: AbstractBaseUser) -> bool:
        try:
            self.check_access(user)
        except (Http404, PermissionDenied):
            return False
        return True

    def _still_allowed(self) -> bool:
        user = _session_user(self.scope)
        return user is not None and self._allowed(user)


def _session_user(scope: dict) -> AbstractBaseUser | None:
    """The connection's user as its session says now, read afresh from the session store: None once
    the session is gone (logged out), the user deleted or deactivated, or the password changed
    (django.contrib.auth.get_user checks all of these, as for every page request)."""
    session = scope.get("session")
    if session is None or not session.session_key:
        return None
    fresh = import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)
    user = auth.get_user(SimpleNamespace(session=fresh))
    if not user.is_authenticated or user.pk != scope["user"].pk:
        return None
    return user


class DeploymentConsumer(AccessCheckedConsumer):
    """Sends stored lines after ?after=SEQ, then live ones; the page drops seq it has."""

    async def connect(self) -> None:
        self.deployment_id = int(self.scope["url_route"]["kwargs"]["pk"])
        if not await self.allowed():
            await self.close()
            return
        # Join first, then read the backlog: a line stored in between arrives twice
        # (the page skips it by seq) rather than never.
        await self.channel_layer.group_add(group_name(self.deployment_id), self.channel_name)
        await self.accept()
        self.watch_access()
        await self._send_backlog(_query_int(self.scope, "after"))
        await self._send_state()

    def check_access(self, user: AbstractBaseUser) -> None:
        access.deployment_for_user(user, self.deployment_id)

    async def stop_sending(self) -> None:
        await self.channel_layer.group_discard(group_name(self.deployment_id), self.channel_name)

    async def receive_json(self, content: dict, **kwargs) -> None:
        """The page asks to resume after a gap it noticed: {"resume_after": SEQ}."""
        if isinstance(content.get("resume_after"), int):
            await self._send_backlog(content["resume_after"])

    async def log_lines(self, event: dict) -> None:
        await self.send_json({"type": "lines", "lines": event["lines"]})

    async def deployment_state(self, event: dict) -> None:
        await self._send_state()

    async def _send_backlog(self, after: int) -> None:
        while lines := await self._stored_lines(after):
            await self.send_json({"type": "lines", "lines": lines})
            after = lines[-1]["seq"]

    async def _send_state(self) -> None:
        if state := await self._state():
            await self.send_json(state)

    @database_sync_to_async
    def _stored_lines(self, after: int) -> list[dict]:
        rows = (LogLine.objects.filter(deployment_id=self.deployment_id, seq__gt=after)
                .order_by("seq").values("seq", "text")[:BACKLOG_PAGE])
        return list(rows)

    @database_sync_to_async
    def _state(self) -> dict | None:
        """None once the deployment is gone (its app deleted): the access watch closes the socket."""
        deployment = Deployment.objects.filter(pk=self.deployment_id).first()
        return presenters.state_message(deployment) if deployment else None


class ContainerOutputConsumer(AccessCheckedConsumer):
    """Follows the output of the app's live container(s), prefixed by replica number, with the
    app's env var values masked as in deployment logs."""

    async def connect(self) -> None:
        self.app_name = self.scope["url_route"]["kwargs"]["name"]
        self.streams: list[output.OutputStream] = []
        self.pumps: list[asyncio.Task] = []
        if not await self.allowed():
            await self.close()
            return
        containers = await self._live_containers()
        await self.accept()
        self.watch_access()
        if not containers:
            await self.send_json({"type": "output", "lines": ["(no live release yet)"]})
        self.streams = [output.follow_output(c.id, OUTPUT_TAIL) for c in containers]
        self.pumps = [asyncio.create_task(self._pump(i + 1, s)) for i, s in enumerate(self.streams)]

    def check_access(self, user: AbstractBaseUser) -> None:
        app = access.app_for_user(user, self.app_name)
        # Values set since the last check are masked from now on; old ones stay masked, since the
        # live container may still hold a value that was changed after it started.
        self.secrets = getattr(self, "secrets", set()) | set(app.environment().values())
        self.mask = Masker(self.secrets)

    async def stop_sending(self) -> None:
        for stream in self.streams:
            stream.close()
        for pump in self.pumps:
            pump.cancel()

    async def _pump(self, replica: int, stream: "output.OutputStream") -> None:
        prefix = f"[{replica}] " if len(self.streams) > 1 else ""
        while (line := await asyncio.to_thread(stream.next_line)) is not None:
            await self.send_json({"type": "output", "lines": [prefix + self.mask(line)]})

    @database_sync_to_async
    def _live_containers(self) -> list[Container]:
        """[] when the app has no live release (or was deleted a moment ago: the watch closes the socket)."""
        app = App.objects.select_related("live_deployment").filter(name=self.app_name).first()
        return app.live_deployment.containers if app and app.live_deployment else []


def _query_int(scope: dict, name: str) -> int:
    values = parse_qs(scope.get("query_string", b"").decode()).get(name, ["0"])
    try:
        return max(int(values[0]), 0)
    except ValueError:
        return 0
