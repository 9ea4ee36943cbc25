"""A stream read with ticks while it is quiet (dockerd/quiet_ticks.py)."""
import threading
import time

import pytest

from deployments.dockerd.quiet_ticks import QUIET, with_quiet_ticks


def _slow(items, pause: float):
    for item in items:
        time.sleep(pause)
        yield item


def test_items_come_in_order_with_a_tick_for_each_quiet_stretch():
    seen = list(with_quiet_ticks(_slow(["a", "b"], 0.5), seconds=0.05))  # ten times over: a loaded machine

    assert [item for item in seen if item is not QUIET] == ["a", "b"]
    assert seen.index("a") >= 1 and seen.index("b") - seen.index("a") >= 2  # ticks before each


def test_a_stream_that_never_pauses_gets_no_tick():
    assert list(with_quiet_ticks(iter(range(5000)), seconds=5)) == list(range(5000))


def test_the_streams_error_is_raised_in_the_callers_thread():
    def broken():
        yield "first"
        raise ConnectionResetError("dockerd went away")

    seen = []
    with pytest.raises(ConnectionResetError, match="dockerd went away"):
        for item in with_quiet_ticks(broken(), seconds=1):
            seen.append(item)
    assert seen == ["first"]


def test_a_caller_that_stops_early_leaves_no_reader_behind():
    def endless():
        while True:
            yield "line"

    ticks = with_quiet_ticks(endless(), seconds=1, capacity=10)
    assert next(ticks) == "line"
    ticks.close()

    deadline = time.monotonic() + 5
    while _readers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _readers() == []


def _readers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "quiet-ticks"]
