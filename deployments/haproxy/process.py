"""Start, reload and stop the HAProxy master process (master-worker mode, daemonised).

A reload goes through the master CLI, so listening sockets pass to the new worker
(`expose-fd listeners`) and no connection is refused while it happens.
"""
import os
import signal
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
import time

from deployments.haproxy import runtime_api
from deployments.haproxy.config import Paths, crt_list_line
from deployments.traffic.table import Tls

START_TIMEOUT = 10.0
CHECK_TIMEOUT = 30.0
CHECKS_AT_ONCE = 4


class HAProxyConfigInvalid(Exception):
    """`haproxy -c` rejected a rendered config; nothing was reloaded."""


def environment() -> dict[str, str]:
    """All HAProxy gets from ours: the panel's holds its secret key and database URL, and
    HAProxy substitutes "${NAME}" from its environment into the config."""
    return {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"}


def check_config(config_file: os.PathLike) -> None:
    """`haproxy -c`; its ALERT lines are the reason when it refuses (with -q it would say none)."""
    result = subprocess.run(["haproxy", "-c", "-f", str(config_file)], capture_output=True, text=True,
                            timeout=CHECK_TIMEOUT, env=environment())
    if result.returncode != 0:
        alerts = [line.split(":", 2)[-1].strip() for line in result.stderr.splitlines() if "[ALERT]" in line]
        raise HAProxyConfigInvalid("; ".join(alerts) or result.stderr.strip() or f"exit code {result.returncode}")


CERTIFICATE_CHECK_CONFIG = """global
    stats timeout 1s
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend certificate_check
    bind unix@{directory}/check.sock ssl crt-list {crt_list}
    http-request return status 200
"""


def check_certificate(held: Tls) -> None:
    """Raise HAProxyConfigInvalid unless HAProxy loads `held` as it would serve it: its PEM (chain
    and key) on its crt-list line, SNI filters and all (`haproxy -c` refuses a line of too many or
    too long), in a config of its own that holds this certificate alone, in a private temporary
    directory, so nothing HAProxy serves from is touched."""
    with tempfile.TemporaryDirectory(prefix="switchyard-certificate-") as directory:
        certificate = Path(directory) / "certificate.pem"
        certificate.touch(mode=0o600)
        certificate.write_text(held.pem)
        crt_list = Path(directory) / "certificate.list"
        crt_list.write_text(f"{crt_list_line(certificate, held)}\n")
        config = Path(directory) / "check.cfg"
        config.write_text(CERTIFICATE_CHECK_CONFIG.format(directory=directory, crt_list=crt_list))
        try:
            check_config(config)
        except HAProxyConfigInvalid as error:  # its words, without the temporary paths
            raise HAProxyConfigInvalid(str(error).replace(f"{directory}/", "")) from None
        except subprocess.TimeoutExpired:
            raise HAProxyConfigInvalid(f"HAProxy's check took longer than {CHECK_TIMEOUT} s") from None


def certificate_refusals(certificates: dict[str, Tls]) -> dict[str, str]:
    """Per certificate, HAProxy's words if it refuses it on its own (check_certificate), "" if it
    loads it. A few checks at a time: each is a process of ~0.1 s."""
    with ThreadPoolExecutor(max_workers=CHECKS_AT_ONCE) as pool:
        return dict(zip(certificates, pool.map(_refusal, certificates.values())))


def _refusal(held: Tls) -> str:
    try:
        check_certificate(held)
    except HAProxyConfigInvalid as error:
        return str(error)
    return ""


@lru_cache(maxsize=1)
def has_prometheus_exporter() -> bool:
    """Whether this HAProxy was built with its Prometheus exporter (`haproxy -vv` says so)."""
    try:
        result = subprocess.run(["haproxy", "-vv"], capture_output=True, text=True, timeout=CHECK_TIMEOUT,
                                env=environment())
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Prometheus exporter" in result.stdout


def is_running(paths: Paths) -> bool:
    return runtime_api.is_alive(paths.admin_socket)


def start(paths: Paths) -> None:
    """Start a daemonised master with the files on disk and wait until its worker answers."""
    subprocess.run(
        ["haproxy", "-W", "-D", "-f", str(paths.config), "-S", f"{paths.master_socket},mode,600", "-p", str(paths.pidfile)],
        check=True, capture_output=True, timeout=30, env=environment(),
    )
    _wait_until(lambda: runtime_api.is_alive(paths.admin_socket), "HAProxy did not start answering")


def reload(paths: Paths) -> None:
    """Seamless reload; returns once the master's new worker answers on the admin socket. Which
    worker is current is the master's word: for a moment after a reload the admin socket can
    still reach the worker before, whose pid, read as "the one before this reload", would make
    the previous reload's worker look new (and a command sent next would miss what this reload
    added: "No such backend")."""
    before = _current_worker(paths)
    runtime_api.send_to_master(paths.master_socket, "reload")
    _wait_until(lambda: _new_worker_answers(paths, before), "HAProxy did not finish reloading")


def _current_worker(paths: Paths) -> int | None:
    current, _ = runtime_api.master_workers(paths.master_socket)
    return current[0] if current else None


def _new_worker_answers(paths: Paths, before: int | None) -> bool:
    try:
        current = _current_worker(paths)
    except runtime_api.HAProxyUnavailable:
        return False
    return current not in (None, before) and runtime_api.worker_pid(paths.admin_socket) == current


def stop(paths: Paths) -> None:
    """Stop the master and its workers (used by `manage.py haproxy` on Ctrl-C and by tests)."""
    pid = master_pid(paths)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    _wait_until(lambda: not _pid_alive(pid), "HAProxy did not stop")


def master_pid(paths: Paths) -> int | None:
    try:
        return int(paths.pidfile.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child still "exists"; its state letter in /proc tells it is dead.
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


# Not shorter yet: with a 10 ms poll here and 5 ms on the router lock, two tests failed in one CI
# run with "No such backend": a command sent right after a reload reached the old worker. reload()
# now takes the current worker from the master, not from the admin socket; the faster polls come
# back once a stress run shows no old worker answers a command sent after reload() returned.
WAIT_POLL_SECONDS = 0.05


def _wait_until(condition, message: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(WAIT_POLL_SECONDS)
    raise TimeoutError(f"{message} within {timeout:.0f}s")
