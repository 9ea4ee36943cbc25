"""`manage.py deploy --follow` prints the whole log: the pipeline stores its last lines, and those
it held in memory since its last write, just after the final state (engine/pipeline.py, _finish);
a follower that stopped at the final state lost them (a CLI test saw "==> switch" missing)."""
import io
import threading
import time

import pytest
from django.db import connection

from deployments.management.commands.deploy import Command
from deployments.models import App, Deployment, LogLine

pytestmark = pytest.mark.django_db(transaction=True)  # the late lines come from another thread


def _store(deployment: Deployment, first_seq: int, texts: list[str]) -> None:
    LogLine.objects.bulk_create(LogLine(deployment=deployment, seq=seq, text=text)
                                for seq, text in enumerate(texts, start=first_seq))


def _store_later(deployment: Deployment, first_seq: int, texts: list[str], delay: float) -> threading.Thread:
    def run():
        time.sleep(delay)
        try:
            _store(deployment, first_seq, texts)
        finally:
            connection.close()  # this thread's own connection
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _follow(deployment: Deployment) -> list[str]:
    out = io.StringIO()
    Command(stdout=out)._follow(deployment)
    return out.getvalue().splitlines()


def test_lines_stored_just_after_the_final_state_are_printed():
    app = App.objects.create(name="web", repo_url="/srv/web.git")
    deployment = Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED, phase="drain",
                                           commit_sha="a" * 40)
    _store(deployment, 1, ["==> fetch", "==> build"])  # the rest was held in memory at the end
    late = _store_later(deployment, 3, ["==> switch", "==> drain", "Deployment succeeded"], delay=0.5)

    printed = _follow(deployment)
    late.join()

    assert printed == ["==> fetch", "==> build", "==> switch", "==> drain", "Deployment succeeded",
                       f"Deployment #{deployment.id} succeeded: aaaaaaaaaaaa is live"]


def test_a_log_without_its_last_lines_is_printed_as_it_is_after_a_few_seconds(monkeypatch):
    monkeypatch.setattr("deployments.management.commands.deploy.LAST_LINES_WAIT_SECONDS", 0.3)
    app = App.objects.create(name="web", repo_url="/srv/web.git")
    deployment = Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED, phase="drain",
                                           commit_sha="b" * 40)
    _store(deployment, 1, ["==> fetch"])  # the worker died before its last write

    assert _follow(deployment) == ["==> fetch", f"Deployment #{deployment.id} succeeded: bbbbbbbbbbbb is live"]
