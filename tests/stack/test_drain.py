"""The drain: requests waiting for their answer are waited for, in every HAProxy process
(a reload for another app leaves the old worker serving them); long-lived streams are not
waited for, they end when the old release stops, and a client that reconnects gets the new one."""
import http.client
import threading

from django.conf import settings

from deployments.haproxy import sessions
from deployments.models import Deployment
from deployments.traffic import changes, target


class EventStream:
    """One client of /cgi-bin/stream through HAProxy, reading until the server closes it."""

    def __init__(self, port: int, host: str) -> None:
        self.lines: list[str] = []
        self.closed = threading.Event()
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connection.request("GET", "/cgi-bin/stream", headers={"Host": host})
        self.response = self.connection.getresponse()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while line := self.response.readline():
                if line.startswith(b"data: "):
                    self.lines.append(line[6:].decode().strip())
        except OSError:
            pass
        finally:
            self.closed.set()
            self.connection.close()


def slow_request(port: int, host: str, answers: list) -> threading.Thread:
    def ask() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", "/cgi-bin/slow", headers={"Host": host})
            response = connection.getresponse()
            answers.append((response.status, response.read().decode().strip()))
        except (OSError, http.client.HTTPException) as error:
            answers.append((0, repr(error)))
        finally:
            connection.close()
    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    return thread


def drain_lines(deployment: Deployment) -> list[str]:
    return [t for t in deployment.log_lines.values_list("text", flat=True) if "in flight" in t or "Drain" in t]


def test_the_drain_waits_for_a_request_the_old_worker_of_a_reload_carries_but_not_for_an_event_stream(
        stack, app_repo):
    app_repo.commit_streams("v1", slow_seconds=8)
    app = stack.create_app(app_repo, name="streams")
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED
    host = "streams.localhost"
    stream = EventStream(stack.port, host)
    stack.eventually(lambda: len(stream.lines) >= 3, "the event stream flows")
    answers = []
    slow = slow_request(stack.port, host, answers)

    app_repo.commit_streams("v2")
    second = stack.deploy(app)
    stack.wait_for_state_phase(second, "drain", timeout=60)
    stack.create_app(app_repo, name="bystander")  # a new backend: HAProxy reloads
    changes.apps_changed()
    # The old worker holds the slow request (and the stream); the new one has neither.
    stack.eventually(lambda: len(sessions.worker_pids(target.paths().master_socket)) >= 2, "an old worker")
    second = stack.wait(second)
    slow.join(timeout=30)

    assert second.state == Deployment.State.SUCCEEDED, second.error
    assert answers == [(200, "v1")]  # its container stopped only after it was answered
    assert drain_lines(second) == ["No requests in flight; 1 long-lived connection(s) (WebSocket, streamed "
                                   "response) stay open until the old release stops"]
    assert stream.closed.wait(timeout=5), "the old release's stream was left open"
    assert stream.lines[-1].startswith("v1 ")
    again = EventStream(stack.port, host)
    stack.eventually(lambda: again.lines, "the reconnected stream flows")
    assert again.lines[0].startswith("v2 ")
    again.connection.close()


SHOW_SESS = """0x55d2: [02/Dec/2026:09:58:54.570076] id=1 proto=tcpv4 source=127.0.0.1:47582
  flags=0x1ce, conn_retries=0, conn_exp=<NEVER> conn_et=0x000 srv_conn=0x55d2, pend_pos=(nil) waiting=0 epoch=0
  frontend=apps (id=3 mode=http), listener=? (id=1) addr=127.0.0.1:9100
  backend=app-a-blue (id=3 mode=http) addr=127.0.0.1:55408
  server=s1 (id=1) addr=127.0.0.1:9101
  txn=0x56208571a0b0 flags=0x3000 meth=1 status=200 req.st=MSG_DONE rsp.st=MSG_DATA req.f=0x4c rsp.f=0x0e
0x56208571aa90: [02/Dec/2026:09:58:55.566344] id=2 proto=unix_stream source=unix:1
  backend=<NONE> (id=-1 mode=-)
  server=<NONE> (id=-1)
0x7fd9dc041da0: [02/Dec/2026:09:58:54.567475] id=0 proto=tcpv4 source=127.0.0.1:47572
  backend=app-a-blue (id=3 mode=http) addr=127.0.0.1:55400
  server=s2 (id=2) addr=127.0.0.1:9101
  txn=0x7fd9dc042370 flags=0x3000 meth=1 status=-1 req.st=MSG_DONE rsp.st=MSG_RPBEFORE req.f=0x4c rsp.f=0x00
0x7fd9dc041da1: [02/Dec/2026:09:58:54.567475] id=4 proto=tcpv4 source=127.0.0.1:47573
  backend=app-a-blue (id=3 mode=http) addr=127.0.0.1:55401
  server=s1 (id=1) addr=127.0.0.1:9101
  txn=0x55d267b9b6b0 flags=0x8000 meth=1 status=101 req.st=MSG_TUNNEL rsp.st=MSG_TUNNEL req.f=0xcc rsp.f=0xcc
"""


def test_show_sess_is_read_as_waiting_requests_and_long_lived_streams():
    streams = sessions.parse(SHOW_SESS)
    assert [(s.server, s.status, s.waiting) for s in streams] == [("s1", 200, False), ("s2", -1, True),
                                                                   ("s1", 101, False)]
    assert settings.SWITCHYARD["DRAIN_TIMEOUT"] == 10  # the slow request (8 s) ends before it
