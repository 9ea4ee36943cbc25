"""A bounded HTTP load through HAProxy, recording every answer.

Each thread keeps one keep-alive connection (HTTPS with SNI when given a TLS context) (reconnecting after an error) and sends GET /
(or `path`) with the app's Host header until told to stop, `max_requests` is reached, or `max_seconds`
pass — it always ends by itself. With `body` (a function giving each request's body), it POSTs;
each answer keeps the body it was sent for. With `pace`, a thread starts a request at most every
`pace` seconds (the test suite's loads: enough to catch a gap of a few milliseconds, without
spending the machine's CPU on thousands of CGI processes a second that the other tests need).
"""
import http.client
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from tests.support.tls import HTTPSConnection


@dataclass
class Answer:
    thread: int
    status: int  # 0: no HTTP answer (connection error)
    body: str
    at: float  # wall-clock time the answer was complete (comparable with the database's timestamps)
    started: float = 0.0  # wall-clock time the request was sent
    sent: str = ""  # the body that was POSTed, if any


@dataclass
class LoadResult:
    answers: list[Answer] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.answers)

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]

    def bodies(self) -> Counter:
        return Counter(a.body for a in self.answers if a.status == 200)

    def per_thread_bodies(self) -> dict[int, list[str]]:
        sequences: dict[int, list[str]] = {}
        for answer in sorted(self.answers, key=lambda a: a.at):
            sequences.setdefault(answer.thread, []).append(answer.body)
        return sequences


class Load:
    def __init__(self, port: int, host: str, threads: int = 4, max_requests: int = 10_000_000, max_seconds: float = 120,
                 path: str = "/", tls: ssl.SSLContext | None = None, body: Callable[[], str] | None = None,
                 pace: float = 0.0) -> None:
        self.port, self.host, self.path, self.tls, self.body, self.pace = port, host, path, tls, body, pace
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self) -> "Load":
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.result

    def wait_for(self, requests: int) -> None:
        """Keep the load going until at least `requests` answers (bounded by max_seconds)."""
        while self.result.total < requests and not self._stop.is_set() and self._time_left() > 0:
            time.sleep(0.05)

    def _time_left(self) -> float:
        return self.max_seconds - (time.monotonic() - self._started)

    def _run(self, index: int) -> None:
        connection = None
        while not self._stop.is_set() and self._time_left() > 0 and self.result.total < self.max_requests:
            if connection is None:
                connection = (HTTPSConnection(self.port, self.host, self.tls) if self.tls
                              else http.client.HTTPConnection("127.0.0.1", self.port, timeout=10))
            payload = self.body() if self.body else None
            started = time.time()
            try:
                connection.request("GET" if payload is None else "POST", self.path, body=payload,
                                   headers={"Host": self.host})
                response = connection.getresponse()
                answer = Answer(index, response.status, response.read().decode(errors="replace").strip(), time.time(),
                                started, payload or "")
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as error:
                answer = Answer(index, 0, f"{type(error).__name__}: {error}", time.time(), started, payload or "")
                connection.close()
                connection = None
            with self._lock:
                self.result.answers.append(answer)
            if self.pace:
                time.sleep(max(0.0, started + self.pace - time.time()))
        if connection is not None:
            connection.close()
