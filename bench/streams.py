"""Long-lived clients through the proxy: server-sent-event streams and WebSockets that
reconnect at once whenever their connection ends, as browsers' EventSource and most WebSocket
client libraries do. Each records when every connection ended and when the next one carried
its first message, and from which release every message came.

Messages lost in a reconnect: the app sends one every MESSAGE_INTERVAL, so the time between
the last message of the old connection and the first of the new one, less one interval, is
what the client missed. (A stream that resumed from an id, as EventSource's Last-Event-ID
allows, would lose none; these apps start each connection afresh, as most do.)
"""
import http.client
import socket
import threading
import time
from dataclasses import dataclass, field

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from bench.hard_apps import MESSAGE_INTERVAL

RETRY_PAUSE = 0.05  # a failed connect is tried again after this
READ_TIMEOUT = 5.0


@dataclass
class Reconnect:
    ended: float  # the old connection's end, as the client saw it
    last_message: float  # the last message on the old connection
    first_message: float  # the first message on the new one
    old_release: str
    new_release: str

    @property
    def seconds(self) -> float:
        return self.first_message - self.ended

    @property
    def lost_messages(self) -> int:
        return max(0, round((self.first_message - self.last_message) / MESSAGE_INTERVAL) - 1)


@dataclass
class StreamRecord:
    messages: int = 0
    releases: list[str] = field(default_factory=list)  # in the order they were first seen
    reconnects: list[Reconnect] = field(default_factory=list)
    failed_connects: int = 0


class LongLivedClient:
    """One client in a thread of its own; `stop()` ends it (it ends by itself after max_seconds)."""

    def __init__(self, port: int, host: str, max_seconds: float) -> None:
        self.port, self.host, self.max_seconds = port, host, max_seconds
        self.record = StreamRecord()
        self._stop = threading.Event()
        self._closer = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "LongLivedClient":
        self._thread.start()
        return self

    def stop(self) -> StreamRecord:
        self._stop.set()
        if self._closer:
            self._closer()
        self._thread.join(timeout=10)
        return self.record

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        last = None  # (time, release) of the last message of the previous connection
        ended = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            first = None
            try:
                for release in self._messages():
                    now = time.time()
                    if first is None:
                        first = now
                        if last is not None:
                            self.record.reconnects.append(Reconnect(ended, last[0], now, last[1], release))
                    if release not in self.record.releases:
                        self.record.releases.append(release)
                    self.record.messages += 1
                    last = (now, release)
                    if self._stop.is_set() or time.monotonic() > deadline:
                        return
            except (OSError, http.client.HTTPException, WebSocketException):
                pass
            except (AttributeError, ValueError):  # stop() closed the connection under the reader
                if not self._stop.is_set():
                    raise
            if first is None:
                self.record.failed_connects += 1
            else:
                ended = time.time()
            time.sleep(RETRY_PAUSE if first is None else 0)

    def _messages(self):
        raise NotImplementedError


class EventStreamClient(LongLivedClient):
    def _messages(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=READ_TIMEOUT)
        self._closer = connection.close
        try:
            connection.request("GET", "/cgi-bin/stream", headers={"Host": self.host})
            response = connection.getresponse()
            if response.status != 200:
                return
            while line := response.readline():
                if line.startswith(b"data: "):
                    yield line[6:].split()[0].decode()
        finally:
            connection.close()


class WebSocketClient(LongLivedClient):
    def _messages(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=READ_TIMEOUT)
        with connect(f"ws://{self.host}:{self.port}/", sock=sock, open_timeout=READ_TIMEOUT,
                     close_timeout=1) as websocket:
            self._closer = sock.close
            while True:
                yield str(websocket.recv(timeout=READ_TIMEOUT)).split()[0]
