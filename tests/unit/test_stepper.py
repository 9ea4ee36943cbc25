"""The stepper's statuses, read from a deployment's state, phase and phase times alone."""
from deployments.models import App, Deployment
from deployments.presenters import steps

T0, T1 = "2026-01-01T10:00:00+00:00", "2026-01-01T10:00:05+00:00"
UNTIL_WATCH = {phase: {"start": T0, "end": T1} for phase in ("fetch", "build", "start", "verify", "switch")}


def _statuses(**fields) -> dict[str, str]:
    return {step["name"]: step["status"] for step in steps(Deployment(app=App(name="shop"), ref="main", **fields))}


def test_a_deployment_reconcile_ended_as_succeeded_during_its_watch_shows_no_current_step():
    ended = _statuses(state=Deployment.State.SUCCEEDED, phase="watch",
                      phase_times={**UNTIL_WATCH, "watch": {"start": T1}})

    assert "active" not in ended.values()
    assert ended["watch"] == "done" and ended["drain"] == "skipped"


def test_a_running_deployment_in_its_watch_shows_watch_as_the_current_step():
    running = _statuses(state=Deployment.State.RUNNING, phase="watch",
                        phase_times={**UNTIL_WATCH, "watch": {"start": T1}})

    assert running["watch"] == "active" and running["drain"] == "pending"
    assert [status for status in running.values() if status == "active"] == ["active"]


def test_a_phase_left_unfinished_by_a_deployment_that_did_not_succeed_is_not_current():
    superseded = _statuses(state=Deployment.State.SUPERSEDED, phase="verify",
                           phase_times={**UNTIL_WATCH, "watch": {"start": T1}})

    assert superseded["watch"] == "cancelled" and "active" not in superseded.values()


def test_the_failed_phase_is_marked_failed_and_later_ones_skipped():
    failed = _statuses(state=Deployment.State.FAILED, phase="verify",
                       phase_times={"fetch": {"start": T0, "end": T1}, "verify": {"start": T1}})

    assert (failed["fetch"], failed["verify"], failed["switch"]) == ("done", "failed", "skipped")
