"""WebSockets: a deployment's log and state, and a live app's container output.

Access is checked exactly as on the pages, before the socket is accepted: a user without
access is refused at the handshake and receives nothing.
"""
import asyncio
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from deployments import access, presenters
from deployments.engine import runtime
from deployments.engine.logs import group_name
from deployments.models import Deployment, LogLine

BACKLOG_PAGE = 1000
OUTPUT_TAIL = 200


class DeploymentConsumer(AsyncJsonWebsocketConsumer):
    """Sends stored lines after ?after=SEQ, then live ones; the page drops seq it has."""

    async def connect(self) -> None:
        self.deployment_id = int(self.scope["url_route"]["kwargs"]["pk"])
        if not await self._allowed():
            await self.close()
            return
        # Join first, then read the backlog: a line stored in between arrives twice
        # (the page skips it by seq) rather than never.
        await self.channel_layer.group_add(group_name(self.deployment_id), self.channel_name)
        await self.accept()
        await self._send_backlog(_query_int(self.scope, "after"))
        await self._send_state()

    async def disconnect(self, code: int) -> None:
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
        await self.send_json(await self._state())

    @database_sync_to_async
    def _allowed(self) -> bool:
        try:
            access.deployment_for_user(self.scope["user"], self.deployment_id)
        except (Http404, PermissionDenied):
            return False
        return True

    @database_sync_to_async
    def _stored_lines(self, after: int) -> list[dict]:
        rows = (LogLine.objects.filter(deployment_id=self.deployment_id, seq__gt=after)
                .order_by("seq").values("seq", "text")[:BACKLOG_PAGE])
        return list(rows)

    @database_sync_to_async
    def _state(self) -> dict:
        return presenters.state_message(Deployment.objects.get(pk=self.deployment_id))


class ContainerOutputConsumer(AsyncJsonWebsocketConsumer):
    """Follows the output of the app's live container(s), prefixed by replica number."""

    async def connect(self) -> None:
        self.app_name = self.scope["url_route"]["kwargs"]["name"]
        containers = await self._live_containers()
        if containers is None:
            await self.close()
            return
        await self.accept()
        if not containers:
            await self.send_json({"type": "output", "lines": ["(no live release yet)"]})
        self.streams = [runtime.follow_output(c["id"], OUTPUT_TAIL) for c in containers]
        self.pumps = [asyncio.create_task(self._pump(i + 1, s)) for i, s in enumerate(self.streams)]

    async def disconnect(self, code: int) -> None:
        for stream in getattr(self, "streams", []):
            stream.close()
        for pump in getattr(self, "pumps", []):
            pump.cancel()

    async def _pump(self, replica: int, stream: "runtime.OutputStream") -> None:
        prefix = f"[{replica}] " if len(self.streams) > 1 else ""
        while (line := await asyncio.to_thread(stream.next_line)) is not None:
            await self.send_json({"type": "output", "lines": [prefix + line]})

    @database_sync_to_async
    def _live_containers(self) -> list[dict] | None:
        """None when the user may not see the app; [] when it has no live release."""
        try:
            app = access.app_for_user(self.scope["user"], self.app_name)
        except (Http404, PermissionDenied):
            return None
        return app.live_deployment.containers if app.live_deployment else []


def _query_int(scope: dict, name: str) -> int:
    values = parse_qs(scope.get("query_string", b"").decode()).get(name, ["0"])
    try:
        return max(int(values[0]), 0)
    except ValueError:
        return 0
