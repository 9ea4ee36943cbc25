"""Stopping a long Docker call (a build, a pull, a one-off run) on request or at a deadline: a
watcher thread closes its stream, and dockerd cancels what its client went away from."""
import threading
import time
from typing import Callable, TypeVar

import docker
from docker.types.daemon import CancellableStream

T = TypeVar("T")


class CancellableClient(docker.APIClient):
    """docker-py returns a build's or a pull's output as a bare generator; this returns it as a
    CancellableStream (as it already does for logs), whose close() ends it from any thread."""

    def _stream_helper(self, response, decode=False):
        return CancellableStream(super()._stream_helper(response, decode=decode), response)


class Deadline:
    """A StopWatcher's should_stop: true once `seconds` passed (then `expired`) or `asked()` is."""

    def __init__(self, seconds: float, asked: Callable[[], bool]) -> None:
        self._at, self._asked, self.expired = time.monotonic() + seconds, asked, False

    def __call__(self) -> bool:
        self.expired = time.monotonic() >= self._at
        return self.expired or self._asked()


class StopWatcher:
    """While in its `with` block, polls should_stop() in a thread and calls stop() once
    when it turns true; `fired` tells afterwards whether it did."""

    def __init__(self, should_stop: Callable[[], bool], stop: Callable[[], None], interval: float = 0.3) -> None:
        self.fired = False
        self._should_stop, self._stop_action, self._interval = should_stop, stop, interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "StopWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def unless_stopped(self, read: Callable[[], T]) -> T | None:
        """read()'s answer, or None if it raised because this watcher closed its stream: reading a
        stream shut from another thread ends in whatever the layer below makes of it (end of
        stream, a reset socket, a JSON fragment cut in half), and that is the stop, not a failure."""
        try:
            return read()
        except Exception:
            if self.fired:
                return None
            raise

    def _watch(self) -> None:
        while not self._done.wait(self._interval):
            if self._should_stop():
                self.fired = True
                self._stop_action()
                return
