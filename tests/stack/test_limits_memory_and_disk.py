"""Memory and disk stay bounded: the source archive is streamed to the build, git runs at normal
priority, a build's stored log and the live output are cut, and old deployments' logs are pruned a
batch at a time."""
import os
import tracemalloc
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from deployments import tasks
from deployments.dockerd import builds, live_output
from deployments.dockerd.values import LABEL_APP
from deployments.engine import logs, priority
from deployments.git import source
from deployments.models import App, Deployment, LogLine
from tests.support.tenancy import MIB, stored_log, switchyard_settings


def test_the_source_archive_is_streamed_to_the_build_not_read_whole_and_a_huge_one_is_refused(app_repo):
    app_repo.commit_version("big")
    (app_repo.path / "blob").write_bytes(os.urandom(40 * MIB))
    sha = app_repo._commit("a 40 MiB file")
    name = "streamed"
    source.fetch(name, app_repo.url, "main")

    tracemalloc.start()
    try:
        with source.archive(name, sha) as context:
            builds.build_image(context, f"switchyard/{name}:test", "Dockerfile", {LABEL_APP: name},
                               lambda line: None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB held while sending a 40 MiB context"
    with switchyard_settings(MAX_SOURCE_MB=10), pytest.raises(source.SourceError, match=r"larger than 10 MiB \(SWITCHYARD_MAX_SOURCE_MB\)"):
        source.archive(name, sha)
    source.delete_cache(name)


def test_git_runs_at_normal_priority_while_the_deployment_runs_raised():
    """A deployment's thread runs raised (engine/priority.py); the git it starts on the tenant's
    repository does not."""
    normal = os.getpriority(os.PRIO_PROCESS, 0)
    with priority.raised() as allowed:
        result = source._git(["-c", "alias.niceness=!nice", "niceness"])
    if not allowed:
        pytest.skip("raising priority needs CAP_SYS_NICE")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == normal


def test_a_build_with_more_output_than_max_log_bytes_stores_the_cut_log_and_says_so(stack, app_repo):
    limit = settings.SWITCHYARD["MAX_LOG_BYTES"]
    lines = limit // 3900 + 300  # lines of 3,999 characters: under MAX_LOG_LINES, over MAX_LOG_BYTES
    app_repo.commit_version("chatty", extra_dockerfile=(
        'RUN ["/bin/busybox", "sh", "-c", "l=$(/bin/busybox head -c 3999 /dev/zero | /bin/busybox tr \'\\\\0\' x); '
        f'i=0; while [ $i -lt {lines} ]; do echo $l; i=$((i + 1)); done"]\n'))
    app = stack.create_app(app_repo, name="chatty-bytes")

    deployment = stack.wait(stack.deploy(app), timeout=240)

    assert deployment.state == "succeeded", deployment.error
    stored = stored_log(deployment)
    assert sum(len(line.encode()) for line in stored) <= limit + 100_000
    assert sum(line.startswith("[log cut: output beyond") and "(SWITCHYARD_MAX_LOG_BYTES=" in line
               for line in stored) == 1
    assert any(line.endswith("lines of output were not stored]") for line in stored)
    assert stored[-1] == "Deployment succeeded"


def test_a_line_without_end_is_cut_in_the_live_output_buffer():
    chunk = b"y" * 50_000
    pending, emitted = b"", []
    for _ in range(100):  # 5 MB without a newline
        lines, pending = live_output.split_lines(pending, chunk)
        emitted += lines
        assert len(pending) <= live_output.MAX_PENDING_LINE
    assert emitted and all(len(line) < live_output.MAX_PENDING_LINE + 100 for line in emitted)
    assert "[line cut:" in emitted[0]
    assert live_output.split_lines(b"ab", b"c\nd") == (["abc"], b"d")


def test_old_deployments_logs_are_pruned_by_the_periodic_task(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="old-logs")
    days = settings.SWITCHYARD["LOG_RETENTION_DAYS"]
    ended = {"old": timezone.now() - timedelta(days=days + 1), "recent": timezone.now() - timedelta(days=days - 1)}
    made = {}
    for age, finished_at in ended.items():
        made[age] = Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED,
                                              finished_at=finished_at)
        LogLine.objects.bulk_create(LogLine(deployment=made[age], seq=i, text=f"line {i}") for i in range(1, 301))
    assert settings.CELERY_BEAT_SCHEDULE["prune-logs"]["task"] == tasks.prune_logs.name

    tasks.prune_logs.delay()  # as beat sends it, to the real worker

    stack.eventually(lambda: LogLine.objects.filter(deployment=made["old"]).count() == 1, "the old log is pruned",
                     timeout=30)
    assert stored_log(made["old"])[0].startswith(logs.PRUNED_NOTE)
    assert LogLine.objects.filter(deployment=made["recent"]).count() == 300
    assert Deployment.objects.filter(pk=made["old"].pk).exists()
    assert logs.prune() == 0  # pruned once


@pytest.mark.django_db
def test_pruning_deletes_a_batch_of_lines_at_a_time_however_long_one_log_is():
    app = App.objects.create(name="old-logs", repo_url="/x")
    ended = timezone.now() - timedelta(days=settings.SWITCHYARD["LOG_RETENTION_DAYS"] + 1)
    old = [Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED, finished_at=ended)
           for _ in range(4)]
    lines = {old[0].pk: 1200, old[1].pk: 2, old[2].pk: 1, old[3].pk: 499}
    LogLine.objects.bulk_create(LogLine(deployment_id=pk, seq=i, text=f"line {i}")
                                for pk, count in lines.items() for i in range(1, count + 1))
    deleted, variables = [], []

    def measured(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        variables.append(len(params or ()))
        if sql.lstrip().upper().startswith("DELETE"):
            deleted.append(context["cursor"].rowcount)
        return result

    with connection.execute_wrapper(measured):
        assert logs.prune() == 4

    assert deleted and max(deleted) <= logs.PRUNE_BATCH, deleted  # one 50,000-line log: not in one statement
    assert sum(deleted) == sum(lines.values()) and max(variables) <= 999
    for deployment in old:
        assert [line.startswith(logs.PRUNED_NOTE) for line in stored_log(deployment)] == [True]
    assert logs.prune() == 0
