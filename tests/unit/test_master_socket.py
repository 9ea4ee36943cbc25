"""Commands to HAProxy's master CLI wait out its re-execution on a reload (it refuses
connections for ~60 ms then, while its socket file stays), and give up when it is gone."""
import socket
import threading
import time

import pytest

from deployments.haproxy import runtime_api


def _listen_later(path, delay: float, answer: bytes) -> threading.Thread:
    """A socket bound at `path` that refuses connections (bound, not listening) for `delay`
    seconds, then answers one command with `answer`, as the master does after its re-exec."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))

    def serve():
        time.sleep(delay)
        server.listen(1)
        connection, _ = server.accept()
        with connection, server:
            while connection.recv(4096):
                pass  # the client shuts its side down after the command
            connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_master_that_refuses_for_a_moment_is_asked_again(tmp_path):
    path = tmp_path / "master.sock"
    server = _listen_later(path, delay=0.15, answer=b"1234 worker\n")
    with pytest.raises(runtime_api.HAProxyUnavailable):
        runtime_api.send(path, "show proc")  # what a single try does in that moment

    assert runtime_api.send_to_master(path, "show proc") == "1234 worker\n"
    server.join(timeout=5)


def test_a_master_whose_socket_is_gone_is_not_waited_for(tmp_path):
    started = time.monotonic()
    with pytest.raises(runtime_api.HAProxyUnavailable):
        runtime_api.send_to_master(tmp_path / "master.sock", "reload")
    assert time.monotonic() - started < 0.5


def test_a_master_that_never_comes_back_is_given_up_after_the_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_api, "MASTER_RESTART_WAIT", 0.2)
    path = tmp_path / "master.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as never_listening:
        never_listening.bind(str(path))
        started = time.monotonic()
        with pytest.raises(runtime_api.HAProxyUnavailable):
            runtime_api.send_to_master(path, "reload")
    assert 0.2 <= time.monotonic() - started < 1.0


SHOW_PROC = """#<PID>          <type>          <reloads>       <uptime>        <version>
2558            master          1 [failed: 0]   0d00h00m01s     2.6.12-1+deb12u4
# workers
2605            worker          0               0d00h00m00s     2.6.12-1+deb12u4
# old workers
2559            worker          1               0d00h00m01s     2.6.12-1+deb12u4
# programs
"""


def test_the_master_tells_the_current_worker_from_old_ones_still_finishing(tmp_path):
    """`show proc` as HAProxy 2.6 answers it with an old worker still serving a request: reload
    waits for the current one (process.reload), the drain asks every one (sessions.py)."""
    path = tmp_path / "master.sock"
    server = _listen_later(path, delay=0, answer=SHOW_PROC.encode())
    assert runtime_api.master_workers(path) == ([2605], [2559])
    server.join(timeout=5)
