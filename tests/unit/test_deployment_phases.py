"""Pieces of the deploy engine's phases that need no stack: the traffic counts across a hand-off and
a canary, what the watch's trouble is called, and how retiring a release waits (HAProxy and Docker
replaced by recorders)."""
import datetime
from types import SimpleNamespace

import pytest
from django.conf import settings

from deployments.engine import retire
from deployments.engine.phases import rollback, traffic_counts, watch
from deployments.haproxy.sessions import OpenStreams
from deployments.haproxy.stats import Responses


def context(**fields) -> SimpleNamespace:
    app = SimpleNamespace(idle_colour_of=lambda colour: "green" if colour == "blue" else "blue")
    defaults = dict(app=app, old_colour="blue", canary=None, traffic_before=None, canary_slots_before=None)
    return SimpleNamespace(**{**defaults, **fields})


def test_the_baseline_stored_for_the_hand_off_comes_back_as_it_was():
    before = context(traffic_before={"blue": Responses(10, 1), "green": Responses(3, 0)},
                     canary_slots_before=Responses(4, 2))
    after = context()
    traffic_counts.restore_baseline(after, traffic_counts.stored_baseline(before))
    assert (after.traffic_before, after.canary_slots_before) == (before.traffic_before, before.canary_slots_before)

    nothing = context()
    traffic_counts.restore_baseline(nothing, traffic_counts.stored_baseline(context()))
    assert (nothing.traffic_before, nothing.canary_slots_before) == (None, None)


def test_a_canarys_requests_count_for_the_new_release(monkeypatch):
    ctx = context(canary=object(), traffic_before={"blue": Responses(100, 0), "green": Responses(0, 0)},
                  canary_slots_before=Responses(50, 0))
    monkeypatch.setattr(traffic_counts, "_backend_responses",
                        lambda ctx: {"blue": Responses(200, 5), "green": Responses(30, 1)})
    monkeypatch.setattr(traffic_counts, "_canary_slot_responses", lambda ctx: Responses(70, 2))
    assert traffic_counts.traffic(ctx) == {"old": {"requests": 80, "failed": 3}, "new": {"requests": 50, "failed": 3}}


def test_without_haproxys_counters_there_are_no_traffic_numbers(monkeypatch):
    monkeypatch.setattr(traffic_counts, "_backend_responses", lambda ctx: None)
    assert traffic_counts.traffic(context(traffic_before={"blue": Responses(1, 0)})) == {}


@pytest.mark.parametrize("trouble, kind", [
    ("HAProxy's health check marked the new release DOWN: s1", "health"),
    ("3 of 10 responses were 5xx (30.0% > 5%)", "5xx"),
    ("container sy-web-1-0 exited (code 1)", "exited"),
    ("start failed: internal error: boom", "error"),
])
def test_the_watchs_trouble_in_a_word(trouble, kind):
    assert rollback._kind_of(trouble) == kind


class Recorder:
    """HAProxy and Docker as retire.py calls them, with the open requests counting down."""

    def __init__(self, monkeypatch, waiting: list[int]) -> None:
        self.calls, self.waiting = [], waiting
        monkeypatch.setattr(retire.changes, "withdraw_servers", lambda old: self.calls.append("withdraw"))
        monkeypatch.setattr(retire.changes, "close_sessions", lambda old: self.calls.append("close"))
        monkeypatch.setattr(retire.readings, "open_streams", self.open_streams)
        monkeypatch.setattr(retire.containers, "stop_and_remove",
                            lambda id, timeout: self.calls.append(f"stop {id} {timeout}"))
        monkeypatch.setattr(retire, "DRAIN_POLL_INTERVAL", 0)
        monkeypatch.setattr(retire.release_files, "remove_unused", lambda app_name, app_id: [])
        monkeypatch.setattr(retire, "run_pre_stop", self.pre_stop)

    def pre_stop(self, hooks, *, service: str, container_id: str, grace_seconds: float, say) -> None:
        shown = " ".join(word for hook in hooks for word in hook.command)
        self.calls.append(f"pre_stop {service} {shown} in {container_id} within {grace_seconds}")

    def open_streams(self, old) -> OpenStreams:
        return OpenStreams(waiting=self.waiting.pop(0) if len(self.waiting) > 1 else self.waiting[0])


def release(holds_backend: bool = True) -> SimpleNamespace:
    return SimpleNamespace(holds_backend=holds_backend, containers=[SimpleNamespace(id="a"), SimpleNamespace(id="b")],
                           app=SimpleNamespace(name="app", web_service="web"), app_id=1,
                           pre_stop={"web": [{"command": ["./drain"], "user": "", "working_dir": "", "environment": []}]})


def test_retiring_waits_for_the_requests_in_flight_then_stops_the_containers(monkeypatch):
    recorder, said = Recorder(monkeypatch, waiting=[2, 1, 0]), []
    retire.retire(release(), stop_timeout=7, say=said.append)
    assert recorder.calls == ["withdraw", "pre_stop web ./drain in a within 7", "stop a 7",
                              "pre_stop web ./drain in b within 7", "stop b 7", "close"]
    assert said == ["The old release has no requests in flight"]


def test_retiring_cuts_what_still_waits_at_the_drain_timeout(monkeypatch):
    monkeypatch.setitem(settings.SWITCHYARD, "DRAIN_TIMEOUT", 0)
    recorder, said = Recorder(monkeypatch, waiting=[3]), []
    retire.retire(release(), stop_timeout=1, say=said.append)
    assert recorder.calls == ["withdraw", "close", "pre_stop web ./drain in a within 1", "stop a 1",
                              "pre_stop web ./drain in b within 1", "stop b 1", "close"]
    assert said == ["Drain timeout (0s): closing 3 request(s) still open on the old release"]


def test_a_release_that_no_longer_holds_its_backend_is_only_stopped(monkeypatch):
    recorder = Recorder(monkeypatch, waiting=[5])
    retire.retire(release(holds_backend=False), stop_timeout=1, say=lambda text: None)
    assert recorder.calls == ["pre_stop web ./drain in a within 1", "stop a 1", "pre_stop web ./drain in b within 1",
                              "stop b 1", "close"]


def test_the_watchs_baseline_comes_back_as_it_was_read_across_a_hand_off():
    read = watch.Baseline(Responses(12, 1), watch.HealthBaseline(restarts={"c1": 0, "c2": 2}, downs={"s1": 1}),
                          datetime.datetime(2026, 12, 7, 15, 0, 1, 250000, tzinfo=datetime.timezone.utc))
    assert watch.Baseline.from_stored(read.stored()) == read
    assert watch.window_start(SimpleNamespace(deployment=SimpleNamespace(watch_baseline=read.stored()))) == read.at
    assert watch.window_start(SimpleNamespace(deployment=SimpleNamespace(watch_baseline={}))) is None
