"""Building an app's image from a tar of its source, bounded in time, memory, CPU and processes."""
import contextlib
import logging
import re
from typing import BinaryIO, Callable

from django.conf import settings

from deployments.dockerd import build_cgroup, build_lock, cancel, daemon, image_removal, networks
from deployments.dockerd.build_errors import BuildFailed, BuildStopped  # raised by pulls too (images.py)
from deployments.dockerd.quiet_ticks import QUIET, QUIET_SECONDS, with_quiet_ticks
from deployments.dockerd.values import LABEL_APP, instance_labels

logger = logging.getLogger(__name__)


def build_image(context_tar: BinaryIO, tag: str, dockerfile: str, labels: dict[str, str],
                on_line: Callable[[str], None], **options) -> str:
    """_build_image; a build that fails, is stopped or ends in an error of ours (a log write)
    leaves none of the images its steps made."""
    made = StepImages(on_line)
    try:
        return _build_image(context_tar, tag, dockerfile, labels, made.see, **options)
    except Exception:
        _remove_quietly(made)  # after the build let go of the build lock: set aside instead while other builds run
        raise


def _remove_quietly(made: "StepImages") -> None:
    """The step images' removal must not replace the error that ended the build."""
    try:
        made.remove()
    except Exception as error:  # dockerd gone meanwhile, say: the images stay for a prune
        logger.warning("a failed build's step images were not removed: %s", error)


STEP_IMAGE = re.compile(r"^\s*---> ([0-9a-f]{12,64})\s*$")
STEP = re.compile(r"^Step \d+/\d+ : ", re.IGNORECASE)
FROM_STEP = re.compile(r"^Step \d+/\d+ : FROM ", re.IGNORECASE)


class StepImages:
    """The images a build's own steps committed, read from its output (` ---> ID` after each step;
    not the base image of a FROM, nor one after ` ---> Using cache`: those are older builds').
    The classic builder keeps each step's image when a later step fails: untagged, without the
    labels that come last, used by nothing, and never removed by anyone else."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line, self.made, self._not_ours = on_line, [], False

    def see(self, line: str) -> None:
        self.on_line(line)
        if STEP.match(line):  # each step says anew (`FROM scratch` is followed by no image at all)
            self._not_ours = bool(FROM_STEP.match(line))
        elif line.strip() == "---> Using cache":
            self._not_ours = True
        elif found := STEP_IMAGE.match(line):
            if not self._not_ours:
                self.made.append(found[1])
            self._not_ours = False

    def remove(self) -> None:
        image_removal.remove_build_cache(reversed(self.made))  # newest first: each has no child left


def _build_image(context_tar: BinaryIO, tag: str, dockerfile: str, labels: dict[str, str],
                 on_line: Callable[[str], None], should_stop: Callable[[], bool] = lambda: False,
                 timeout: int | None = None, build_args: dict[str, str] | None = None, target: str = "",
                 labels_in_dockerfile: bool = False, on_quiet: Callable[[], None] = lambda: None) -> str:
    """Build from a tar of the source (a file, streamed to dockerd as it is read: never whole in
    memory); every output line goes to on_line, and on_quiet is called whenever the build has been
    silent for QUIET_SECONDS (a RUN step at work: what came before it can be shown). Returns the
    image id. The labels (and this installation's) go through the API unless the Dockerfile ends
    with them (build_context.with_labels).
    RUN steps get the build limits (memory without swap, at most BUILD_CPUS, half the CPU weight
    of an app, at most BUILD_PIDS processes in all: build_cgroup.py).
    To stop a build, on request or after `timeout` seconds (default BUILD_TIMEOUT), a
    watcher shuts the build's connection down; dockerd cancels a build whose client went
    away (its RUN step's container is killed and removed). docker-py sends the build with
    no HTTP timeout at all, so the watcher is the only deadline there is."""
    timeout = timeout or settings.SWITCHYARD["BUILD_TIMEOUT"]
    stop_now = cancel.Deadline(timeout, should_stop)
    # RUN steps run on the app's own network: under the egress rules like its containers.
    network = networks.ensure_app_network(labels[LABEL_APP])
    api = _BuildClient(**daemon.own_client_options())
    try:
        with build_cgroup.BuildCgroup(settings.SWITCHYARD["INSTANCE"], settings.SWITCHYARD["BUILD_PIDS"],
                                      daemon.cgroup_driver()) as cgroup, build_lock.building():
            if cgroup.problem:
                on_line(f"(no process limit for this build's RUN steps: cannot make its cgroup: {cgroup.problem})")
            api.cgroup_parent = cgroup.path
            stream = api.build(
                fileobj=context_tar, custom_context=True, tag=tag, dockerfile=dockerfile,
                labels=None if labels_in_dockerfile else instance_labels(**labels), rm=True, forcerm=True, decode=True,
                container_limits=_build_limits(), buildargs=build_args or None, target=target or None,
                network_mode=network,
            )
            image_id, watcher = _follow_until_stopped(stream, stop_now, on_line, on_quiet)
    finally:
        api.close()
    if watcher.fired and stop_now.expired:
        raise BuildFailed(f"timed out after {timeout} s")
    if watcher.fired:
        raise BuildStopped()
    return image_id or daemon.client().images.get(tag).id


def sweep_build_cgroups() -> list[str]:
    """Remove the build parents a killed worker left (build_cgroup.py); returns their names."""
    return build_cgroup.sweep(settings.SWITCHYARD["INSTANCE"], daemon.cgroup_driver())


def _build_limits() -> dict[str, int]:
    # The classic builder (what dockerd 20.10 uses for API builds) applies these to each RUN
    # step's container. cpushares 512: under contention a build gets half the CPU of an app.
    memory = settings.SWITCHYARD["BUILD_MEMORY_MB"] * 1024 * 1024
    return {"memory": memory, "memswap": memory, "cpushares": 512}


CPU_PERIOD = 100_000  # µs: the CFS period; the quota is BUILD_CPUS of it


class _BuildClient(cancel.CancellableClient):
    """Also sends what docker-py's build() does not pass on: the CPU ceiling of RUN steps (the
    API's cpuperiod and cpuquota) and their cgroup parent (cgroupparent)."""
    cgroup_parent = ""

    def _post(self, url, **kwargs):
        if url.endswith("/build"):
            quota = int(settings.SWITCHYARD["BUILD_CPUS"] * CPU_PERIOD)
            kwargs["params"] = {**kwargs.get("params", {}), "cpuperiod": CPU_PERIOD, "cpuquota": quota}
            if self.cgroup_parent:
                kwargs["params"]["cgroupparent"] = self.cgroup_parent
        return super()._post(url, **kwargs)


def _follow_until_stopped(stream, stop_now: cancel.Deadline, on_line: Callable[[str], None],
                          on_quiet: Callable[[], None]) -> tuple[str | None, cancel.StopWatcher]:
    """The build's output followed to its end, or until the watcher shuts the stream at stop_now:
    (the image id if it said one, the watcher, which tells whether it fired)."""
    with cancel.StopWatcher(stop_now, stream.close) as watcher:
        try:
            return watcher.unless_stopped(lambda: _follow_build(stream, on_line, on_quiet)), watcher
        finally:
            # Read in a thread of its own (quiet_ticks): if the caller's side failed (a log write),
            # only closing the stream ends that reader and makes dockerd cancel the build.
            _close(stream)


def _close(stream) -> None:
    with contextlib.suppress(OSError, AttributeError):  # the watcher may be closing it at the same moment
        stream.close()


def _follow_build(stream, on_line: Callable[[str], None], on_quiet: Callable[[], None]) -> str | None:
    image_id = None
    for chunk in with_quiet_ticks(stream, QUIET_SECONDS):
        if chunk is QUIET:
            on_quiet()
            continue
        if "error" in chunk:
            raise BuildFailed(chunk["error"].strip())
        for line in chunk.get("stream", "").splitlines():
            if line.strip():
                on_line(line.rstrip())
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    return image_id
