"""A command run inside a running container (`docker exec`): Compose's lifecycle hooks. Confined
as the container is (never privileged), bounded by a timeout: an exec cannot be killed through
Docker's API, so past its timeout it is reported as such and left to end with its container."""
import threading
from dataclasses import dataclass

import docker.errors

from deployments.dockerd import daemon

MAX_OUTPUT = 4000  # characters of the command's output kept for the log


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None: still running at the timeout, or Docker could not run it
    output: str
    error: str = ""


def run_in(container_id: str, command: tuple[str, ...], *, user: str = "", working_dir: str = "",
           environment: dict[str, str] | None = None, timeout: float) -> ExecResult:
    api = daemon.client().api
    try:
        created = api.exec_create(container_id, list(command), user=user or "", workdir=working_dir or None,
                                  environment=environment or None, privileged=False)
    except docker.errors.APIError as error:
        return ExecResult(None, "", f"Docker could not run it: {error.explanation or error}")
    result: dict = {}

    def run() -> None:
        try:
            result["output"] = api.exec_start(created["Id"], stream=False, demux=False) or b""
        except docker.errors.APIError as error:
            result["error"] = f"Docker could not run it: {error.explanation or error}"

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return ExecResult(None, "", f"still running after {timeout:g}s")
    if "error" in result:
        return ExecResult(None, "", result["error"])
    text = result["output"].decode(errors="replace").rstrip()[-MAX_OUTPUT:]
    return ExecResult(api.exec_inspect(created["Id"]).get("ExitCode"), text)
