"""A parent cgroup that bounds the processes of one build's RUN steps.

Docker's classic builder (what dockerd 20.10 uses for API builds) takes memory and CPU limits
for RUN steps but no process limit, and RLIMIT_NPROC does not bind root in a container without
a user namespace. It does take a cgroup parent, and a parent's pids.max bounds every cgroup
under it: so each build gets a parent of its own with SWITCHYARD_BUILD_PIDS, made here in the
host's cgroupfs and removed afterwards. That needs the cgroupfs writable, as it is for a worker
on the host as root (cgroup v1 with Docker's cgroupfs driver, or v2); elsewhere (a worker in a
container) the build runs without it and its log says so.
"""
import time
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
REMOVE_ATTEMPTS = 10  # a RUN step's cgroup may outlive its container by a moment


class BuildCgroup:
    """`with BuildCgroup(instance, pids) as parent:` parent.path is the cgroup parent to build
    under ("" if none could be made; parent.problem says why)."""

    def __init__(self, instance: str, pids: int) -> None:
        self.name = f"switchyard-build-{instance}-{uuid.uuid4().hex[:12]}"
        self.pids = pids
        self.path = ""
        self.problem = ""

    def __enter__(self) -> "BuildCgroup":
        unified = (CGROUP_ROOT / "cgroup.controllers").exists()
        directory = CGROUP_ROOT / self.name if unified else CGROUP_ROOT / "pids" / self.name
        try:
            directory.mkdir()
            (directory / "pids.max").write_text(str(self.pids))
        except OSError as error:
            self.problem = f"{error.strerror or error}: {error.filename or directory}"
            self._remove()
            return self
        self.path = f"/{self.name}"
        return self

    def __exit__(self, *exc) -> None:
        self._remove()

    def _remove(self) -> None:
        """Every controller's directory of it (runc makes one in each under cgroup v1); the
        builder removes its RUN steps' cgroups below it first."""
        for _ in range(REMOVE_ATTEMPTS):
            left = [d for d in [CGROUP_ROOT / self.name, *CGROUP_ROOT.glob(f"*/{self.name}")] if d.is_dir()]
            for directory in left:
                try:
                    directory.rmdir()
                except OSError:
                    pass
            if not any(d.is_dir() for d in left):
                return
            time.sleep(0.1)
