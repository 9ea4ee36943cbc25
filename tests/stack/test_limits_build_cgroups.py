"""A build's processes run under a parent cgroup with the build's process limit, in the form Docker's
cgroup driver wants (a directory under cgroupfs, a transient slice under systemd), and a worker
killed mid-build leaves none behind once a worker starts."""
import os
import re
import subprocess

import pytest
from django.conf import settings

from deployments.dockerd import build_cgroup, daemon
from tests.support.eventually import eventually
from tests.support.tenancy import CGROUPS


def test_the_build_parent_takes_the_form_dockers_cgroup_driver_wants_on_this_machine():
    """Docker's own answer decides; a parent of that form is made, with the process limit, and
    removed (a real build runs under it: the test above)."""
    driver = subprocess.run(["docker", "info", "--format", "{{.CgroupDriver}}"], capture_output=True, text=True,
                            check=True, timeout=30).stdout.strip()
    assert daemon.cgroup_driver() == driver
    if driver == "systemd":
        with build_cgroup.BuildCgroup(settings.SWITCHYARD["INSTANCE"], 77, driver) as parent:
            assert parent.problem or re.fullmatch(r"switchyard-build-[\w]+_\d+_[0-9a-f]{12}\.slice", parent.path)
        return
    with build_cgroup.BuildCgroup(settings.SWITCHYARD["INSTANCE"], 77, driver) as parent:
        assert not parent.problem and parent.path == f"/{parent.name}"
        assert parent.name.startswith(f"switchyard-build-{settings.SWITCHYARD['INSTANCE']}-{os.getpid()}-")
        assert next(CGROUPS.glob(f"*/{parent.name}/pids.max")).read_text().strip() == "77"
    assert not list(CGROUPS.glob(f"*/{parent.name}"))


class _Systemd:
    """busctl and systemctl as a systemd would answer them; records each call."""

    def __init__(self, refuse: str = "", slices: tuple[str, ...] = ()) -> None:
        self.calls: list[list[str]] = []
        self.refuse, self.slices = refuse, slices

    def __call__(self, args: list[str]) -> subprocess.CompletedProcess:
        self.calls.append(args)
        if args[0] == "systemctl":
            return subprocess.CompletedProcess(args, 0, "".join(f"{n} loaded active active x\n" for n in self.slices), "")
        if self.refuse and "StartTransientUnit" in args:
            return subprocess.CompletedProcess(args, 1, "", self.refuse)
        return subprocess.CompletedProcess(args, 0, 'o "/org/freedesktop/systemd1/job/1"', "")


def test_under_the_systemd_driver_a_build_parent_is_a_transient_slice_with_the_process_limit():
    systemd = _Systemd()
    with build_cgroup.BuildCgroup("test-a1b2", 77, "systemd", run=systemd) as parent:
        # A slice name, never a path (dockerd refuses a path under the systemd driver: the build fails).
        assert re.fullmatch(rf"switchyard-build-test_a1b2_{os.getpid()}_[0-9a-f]{{12}}\.slice", parent.path)
        start = systemd.calls[0]
        assert start[:2] == ["busctl", "call"] and "StartTransientUnit" in start and parent.path in start
        assert start[start.index("TasksMax"):start.index("TasksMax") + 3] == ["TasksMax", "t", "77"]
    assert systemd.calls[-1][-4:] == ["StopUnit", "ss", parent.path, "replace"]  # stopped: the slice is gone

    # systemd refuses (no bus in a worker's container): no parent, the reason; the build still runs.
    with build_cgroup.BuildCgroup("test-a1b2", 77, "systemd", run=_Systemd(refuse="Access denied")) as parent:
        assert parent.path == "" and "Access denied" in parent.problem

    # At worker start: this instance's slices whose worker process is gone, and only those.
    dead = _dead_pid()
    mine_dead = f"switchyard-build-test_a1b2_{dead}_{'a' * 12}.slice"
    mine_alive = f"switchyard-build-test_a1b2_{os.getpid()}_{'b' * 12}.slice"
    other_instance = f"switchyard-build-test_a1b2_x_{dead}_{'c' * 12}.slice"
    systemd = _Systemd(slices=(mine_dead, mine_alive, other_instance))
    assert build_cgroup.sweep("test-a1b2", "systemd", run=systemd) == [mine_dead]
    assert [call[-2] for call in systemd.calls if "StopUnit" in call] == [mine_dead]


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_build_cgroups_a_killed_worker_left_are_removed_when_a_worker_starts(celery_worker):
    if daemon.cgroup_driver() != "cgroupfs":
        pytest.skip("this machine's Docker uses the systemd driver: the slices are swept by systemd's calls")
    instance = settings.SWITCHYARD["INSTANCE"]
    dead, nonce = _dead_pid(), "d" * 12
    # As a worker killed mid-build leaves it: the parent in the pids hierarchy and, where runc
    # made them, in the others, one with a RUN step's cgroup still below it.
    left = f"switchyard-build-{instance}-{dead}-{nonce}"
    running = f"switchyard-build-{instance}-{os.getpid()}-{nonce}"  # a build that runs: its process lives
    other = f"switchyard-build-{instance}x-{dead}-{nonce}"  # another installation's
    made = [CGROUPS / "pids" / left / "0123456789ab", CGROUPS / "memory" / left, CGROUPS / "pids" / running,
            CGROUPS / "pids" / other]
    for directory in made:
        directory.mkdir(parents=True)
    try:
        celery_worker.restart()

        eventually(lambda: not list(CGROUPS.glob(f"*/{left}")), "the left parent is removed", timeout=30)
        assert (CGROUPS / "pids" / running).is_dir() and (CGROUPS / "pids" / other).is_dir()
        assert f"build cgroups a killed worker left removed: {left}" in celery_worker.log_path.read_text()
    finally:
        for directory in sorted(made, key=lambda d: -len(d.parts)):
            if directory.is_dir():
                directory.rmdir()
