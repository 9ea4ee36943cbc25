"""One user's deployments cannot take every worker slot, and deploy events go out in due order
whichever app they are for (issue 22, fair sharing)."""
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from deployments.outgoing import events
from deployments.models import App, Deployment, EventDelivery, LogLine
from tests.support.apprepo import AppRepo

SLOW_BUILD = 'RUN ["/bin/busybox", "sleep", "8"]\n'


def _user(django_user_model, name: str):
    return django_user_model.objects.create_user(name, password="a-long-password-1")


def test_one_users_deployments_leave_worker_slots_for_another_user(stack, tmp_path, django_user_model):
    limit = settings.SWITCHYARD["MAX_CONCURRENT_DEPLOYS_PER_USER"]
    greedy, other = _user(django_user_model, "greedy"), _user(django_user_model, "other")
    apps = []
    for index in range(4):  # as many as the test worker has slots (--concurrency 4)
        repo = AppRepo(tmp_path / f"g{index}")
        repo.commit_version(f"g{index}", extra_dockerfile=SLOW_BUILD)
        apps.append(stack.create_app(repo, f"greedy{index}", owner=greedy))
    repo = AppRepo(tmp_path / "other")
    repo.commit_version("other")
    polite = stack.create_app(repo, "polite", owner=other)

    greedy_deploys = [stack.deploy(app) for app in apps]
    stack.eventually(lambda: Deployment.objects.filter(app__owner=greedy, state="running").count() == limit,
                     f"{limit} of greedy's deployments run")
    polite_deploy = stack.deploy(polite)
    stack.wait_for_state(polite_deploy, Deployment.State.RUNNING, timeout=5)  # not behind greedy's builds

    polite_deploy = stack.wait(polite_deploy)
    greedy_deploys = [stack.wait(deployment) for deployment in greedy_deploys]
    assert polite_deploy.state == Deployment.State.SUCCEEDED, polite_deploy.error
    assert [d.state for d in greedy_deploys] == [Deployment.State.SUCCEEDED] * 4, [d.error for d in greedy_deploys]
    moments = sorted([(d.started_at, 1) for d in greedy_deploys] + [(d.finished_at, -1) for d in greedy_deploys])
    running = [sum(step for _, step in moments[:i + 1]) for i in range(len(moments))]
    assert max(running) == limit, moments
    waited = LogLine.objects.filter(deployment__in=greedy_deploys, text__startswith="Waiting: greedy already runs")
    assert waited.exists()
    assert stack.get("greedy3.localhost") == (200, "g3")


def test_due_events_go_out_longest_due_first_whichever_app_they_are_for(db, monkeypatch):
    old_app, new_app = App.objects.create(name="old", repo_url="/x"), App.objects.create(name="new", repo_url="/y")
    now = timezone.now()

    def delivery(app: App, due_minutes_ago: int) -> int:
        deployment = Deployment.objects.create(app=app, ref="main", state=Deployment.State.FAILED)
        return EventDelivery.objects.create(app=app, deployment=deployment, kind=EventDelivery.Kind.WEBHOOK,
                                            event="failed", next_attempt_at=now - timedelta(minutes=due_minutes_ago)).id
    retries = [delivery(old_app, 1) for _ in range(3)]  # the old app's retries, due a minute ago
    first = delivery(new_app, 10)  # a newer app's delivery, due ten minutes ago
    monkeypatch.setattr(events, "DUE_BATCH", 2)

    assert events.due() == [first, retries[0]]
