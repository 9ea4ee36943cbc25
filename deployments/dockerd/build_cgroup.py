"""A parent cgroup that bounds the processes of one build's RUN steps.

Docker's classic builder (what dockerd 20.10 uses for API builds) takes memory and CPU limits
for RUN steps but no process limit, and RLIMIT_NPROC does not bind root in a container without
a user namespace. It does take a cgroup parent, and a parent's process limit bounds every cgroup
under it: so each build gets a parent of its own, removed afterwards. What a parent is depends on
Docker's cgroup driver (`docker info` CgroupDriver):

- cgroupfs: a path. The directory is made here in the host's cgroupfs with pids.max =
  SWITCHYARD_BUILD_PIDS. That needs the cgroupfs writable, as it is for a worker on the host as
  root (cgroup v1 or v2).
- systemd: a slice name (`name.slice`; dockerd refuses a path, and the build would fail). The
  slice is made by systemd as a transient unit with TasksMax = SWITCHYARD_BUILD_PIDS (D-Bus,
  through busctl), and stopped afterwards. Memory and CPU stay the build's own limits, which
  Docker applies to each RUN step under either driver.

Where the parent cannot be made (a worker in a container, no systemd bus), the build runs without
one and its log says so: never a build that fails because of its limit's parent.

A worker killed mid-build leaves its parent behind; the next worker to start sweeps those whose
process is gone (sweep). A parent's name carries the instance and the worker process's id for it.
"""
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
REMOVE_ATTEMPTS = 10  # a RUN step's cgroup may outlive its container by a moment
SYSTEMD_TIMEOUT = 10  # seconds for one call to systemd
SYSTEMD = "systemd"
PREFIX = "switchyard-build-"
# cgroupfs: switchyard-build-<instance>-<pid>-<nonce>. systemd: a dash in a slice's name is a
# level of its hierarchy, so the instance's dashes become underscores and the parts are joined by
# underscores: switchyard-build-<instance>_<pid>_<nonce>.slice, under switchyard-build.slice.
_CGROUPFS_NAME = re.compile(rf"^{PREFIX}(?P<instance>.+)-(?P<pid>\d+)-(?P<nonce>[0-9a-f]{{12}})$")
_SLICE_NAME = re.compile(rf"^{PREFIX}(?P<instance>.+)_(?P<pid>\d+)_(?P<nonce>[0-9a-f]{{12}})\.slice$")

Run = Callable[[list[str]], subprocess.CompletedProcess]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=SYSTEMD_TIMEOUT)


def _slice_instance(instance: str) -> str:
    return instance.replace("-", "_")


class BuildCgroup:
    """`with BuildCgroup(instance, pids, driver) as parent:` parent.path is the cgroup parent to
    build under, in the form Docker's cgroup driver `driver` takes ("" if none could be made;
    parent.problem says why)."""

    def __init__(self, instance: str, pids: int, driver: str, run: Run = _run) -> None:
        self.pids, self.driver, self._run = pids, driver, run
        nonce = uuid.uuid4().hex[:12]
        if driver == SYSTEMD:
            self.name = f"{PREFIX}{_slice_instance(instance)}_{os.getpid()}_{nonce}.slice"
        else:
            self.name = f"{PREFIX}{instance}-{os.getpid()}-{nonce}"
        self.path = ""
        self.problem = ""

    def __enter__(self) -> "BuildCgroup":
        self.problem = _start_slice(self.name, self.pids, self._run) if self.driver == SYSTEMD else \
            _make_directory(self.name, self.pids)
        if self.problem:
            self.__exit__()
        else:
            self.path = self.name if self.driver == SYSTEMD else f"/{self.name}"
        return self

    def __exit__(self, *exc) -> None:
        if self.driver == SYSTEMD:
            _stop_slice(self.name, self._run)
        else:
            _remove_directories(self.name)


def sweep(instance: str, driver: str, run: Run = _run) -> list[str]:
    """Remove the build parents of this instance whose worker process is gone (killed mid-build);
    returns their names. One whose process lives belongs to a build that runs: left alone."""
    if driver == SYSTEMD:
        left = [name for name in _slices(run) if _is_leftover(_SLICE_NAME, name, _slice_instance(instance))]
        for name in left:
            _stop_slice(name, run)
        return left
    names = {directory.name for directory in [*CGROUP_ROOT.glob(f"{PREFIX}*"), *CGROUP_ROOT.glob(f"*/{PREFIX}*")]}
    left = sorted(name for name in names if _is_leftover(_CGROUPFS_NAME, name, instance))
    for name in left:
        _remove_directories(name)
    return left


def _is_leftover(pattern: re.Pattern, name: str, instance: str) -> bool:
    match = pattern.match(name)
    return bool(match) and match["instance"] == instance and not _alive(int(match["pid"]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# cgroupfs -------------------------------------------------------------------------------------

def _make_directory(name: str, pids: int) -> str:
    """The parent's directory with its pids.max; "" or why it could not be made."""
    unified = (CGROUP_ROOT / "cgroup.controllers").exists()
    directory = CGROUP_ROOT / name if unified else CGROUP_ROOT / "pids" / name
    try:
        directory.mkdir()
        (directory / "pids.max").write_text(str(pids))
    except OSError as error:
        return f"{error.strerror or error}: {error.filename or directory}"
    return ""


def _remove_directories(name: str) -> None:
    """Every controller's directory of it (runc makes one in each under cgroup v1), deepest
    first: the builder removes its RUN steps' cgroups below it, but a killed worker's build may
    have left one (rmdir refuses a cgroup that still has processes: those stay)."""
    for _ in range(REMOVE_ATTEMPTS):
        left = [d for d in [CGROUP_ROOT / name, *CGROUP_ROOT.glob(f"*/{name}")] if d.is_dir()]
        for top in left:
            for directory in [*_deepest_first(top), top]:
                try:
                    directory.rmdir()
                except OSError:
                    pass
        if not any(d.is_dir() for d in left):
            return
        time.sleep(0.1)


def _deepest_first(top: Path) -> list[Path]:
    """The directories under `top`, each before its parent. os.walk, not Path.rglob: runc removes
    a RUN step's cgroup while this walks, and rglob fails on a directory gone from under it
    (a build that timed out failed with "internal error: No such file or directory")."""
    return [Path(root) for root, _, _ in os.walk(top, topdown=False) if Path(root) != top]


# systemd --------------------------------------------------------------------------------------

_MANAGER = ["busctl", "call", "--system", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager"]


def _start_slice(name: str, pids: int, run: Run) -> str:
    """A transient slice with TasksMax = pids (systemd creates its cgroup; runc puts each RUN
    step's scope under it); "" or why it could not be made."""
    try:
        result = run([*_MANAGER, "StartTransientUnit", "ssa(sv)a(sa(sv))", name, "fail",
                      "2", "Description", "s", "Switchyard build (process limit of its RUN steps)",
                      "TasksMax", "t", str(pids), "0"])
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"cannot ask systemd for slice {name}: {error}"
    if result.returncode != 0:
        return f"systemd did not make slice {name}: {(result.stderr or result.stdout).strip()[-300:]}"
    return ""


def _stop_slice(name: str, run: Run) -> None:
    """Stopping a transient slice removes it (and stops what a killed build left in it)."""
    try:
        run([*_MANAGER, "StopUnit", "ss", name, "replace"])
    except (OSError, subprocess.TimeoutExpired):
        pass


def _slices(run: Run) -> list[str]:
    try:
        result = run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "--type=slice", f"{PREFIX}*"])
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()] if result.returncode == 0 else []
