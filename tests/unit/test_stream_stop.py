"""A build's or a pull's stream closed on purpose (cancel, deadline) reads as the stop, whatever
error the closed socket makes of the last read; a stream that breaks on its own still raises."""
import json
import threading

import pytest

from deployments.dockerd.cancel import StopWatcher


def _read_until_closed(closed: threading.Event):
    def read():
        closed.wait(5)
        raise json.JSONDecodeError("Unterminated string starting at", '{"stream": "Step 2/3 : RUN', 11)
    return read


def test_a_read_broken_by_the_stop_closing_its_stream_is_the_stop():
    closed = threading.Event()
    with StopWatcher(lambda: True, closed.set, interval=0.01) as watcher:
        assert watcher.unless_stopped(_read_until_closed(closed)) is None
    assert watcher.fired


def test_a_read_that_breaks_on_its_own_still_raises():
    closed = threading.Event()
    closed.set()
    with StopWatcher(lambda: False, lambda: None, interval=0.01) as watcher:
        with pytest.raises(json.JSONDecodeError):
            watcher.unless_stopped(_read_until_closed(closed))
    assert not watcher.fired
