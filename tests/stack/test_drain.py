"""The drain: requests waiting for their answer are waited for, in every HAProxy process
(a reload for another app leaves the old worker serving them); long-lived streams are not
waited for, they end when the old release stops, and a client that reconnects gets the new one."""
import http.client
import threading


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


