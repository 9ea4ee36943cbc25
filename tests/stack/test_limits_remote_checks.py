"""The repository checks a tenant's settings make at create or change are bounded: a slow repository
gives up in time with a clear error, a compose check reads the file, not the repository, and a
too large tip or list of branches is refused."""
import os
import socketserver
import subprocess
import threading
import time

import pytest

from deployments.models import App
from tests.support.eventually import eventually
from tests.support.tenancy import (MIB, commit_compose, make_tenant, own_app, patch_app, switchyard_settings,
                                   token_client)


class _SlowGitServer:
    """An HTTP server that answers git's first request one byte every 0.2 s, never ending: a
    repository host that holds the panel's request open. `connections`: how many are open."""

    def __init__(self) -> None:
        owner = self
        self.connections = 0

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.connections += 1
                try:
                    self.request.recv(4096)
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while True:
                        self.request.sendall(b"x")
                        time.sleep(0.2)
                except OSError:
                    pass
                finally:
                    owner.connections -= 1

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/repo.git"

    def __enter__(self) -> "_SlowGitServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.django_db
def test_a_compose_check_against_a_slow_repository_gives_up_in_time_with_a_clear_error(
        app_repo, handed_over, monkeypatch):
    app_repo.commit_version("v1")
    tenant = make_tenant()
    app = own_app(app_repo, tenant, "slow-source")
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:http")
    with _SlowGitServer() as slow, switchyard_settings(REMOTE_CHECK_TIMEOUT=2, GIT_TIMEOUT=600):
        App.objects.filter(pk=app.pk).update(repo_url=slow.url)  # set by a superuser, as the app was made
        started = time.monotonic()
        response = patch_app(token_client(tenant), "slow-source", {"compose_file": "compose.yaml"})
        took = time.monotonic() - started

        assert response.status_code == 400, response.content
        assert took < 10, f"the request took {took:.1f}s"
        assert "took longer than 2s (SWITCHYARD_REMOTE_CHECK_TIMEOUT)" in response.json()["detail"]
        # git and its HTTP helper are gone, not left reading.
        eventually(lambda: slow.connections == 0, "the git connection is closed", timeout=5)

        # The branch check (git ls-remote) is bounded the same way.
        started = time.monotonic()
        response = patch_app(token_client(tenant), "slow-source", {"branch": "other"})
        took = time.monotonic() - started
        assert response.status_code == 400 and took < 10, (took, response.content)
        assert "no answer within 2s (SWITCHYARD_REMOTE_CHECK_TIMEOUT)" in response.json()["detail"]
        eventually(lambda: slow.connections == 0, "the git connection is closed", timeout=5)
    app.refresh_from_db()
    assert (app.compose_file, app.branch) == ("", "main")


@pytest.mark.django_db
def test_a_compose_check_reads_the_file_not_the_repository_and_a_too_large_tip_is_refused(app_repo, handed_over):
    app_repo.commit_version("v1")
    (app_repo.path / "blob").write_bytes(os.urandom(12 * MIB))
    commit_compose(app_repo, "services:\n  web:\n    build: .\n")
    tenant = make_tenant()
    own_app(app_repo, tenant, "large-source")
    api = token_client(tenant)

    with switchyard_settings(REMOTE_CHECK_MAX_MB=4):
        # A server that cannot leave file contents out sends the whole tip: refused past the cap.
        response = patch_app(api, "large-source", {"compose_file": "compose.yaml"})
        assert response.status_code == 400, response.content
        assert "more than 4 MiB (SWITCHYARD_REMOTE_CHECK_MAX_MB)" in response.json()["detail"]
        assert App.objects.get(name="large-source").compose_file == ""

        # One that can (partial clone): only the commit, its trees and the compose file come.
        app_repo._git("config", "uploadpack.allowFilter", "true")
        response = patch_app(api, "large-source", {"compose_file": "compose.yaml"})
        assert response.status_code == 200, response.content
    assert App.objects.get(name="large-source").compose_file == "compose.yaml"

    # A list of branches larger than the cap is not read into the panel's memory.
    head = app_repo._git("rev-parse", "HEAD").strip()
    subprocess.run(["git", "update-ref", "--stdin"], cwd=app_repo.path, check=True, timeout=60,
                   input="".join(f"create refs/heads/many/{'b' * 40}-{i} {head}\n" for i in range(20_000)).encode())
    with switchyard_settings(REMOTE_CHECK_MAX_MB=1):
        response = patch_app(api, "large-source", {"branch": "many/x"})
    assert response.status_code == 400, response.content
    assert "list of branches is larger than 1 MiB (SWITCHYARD_REMOTE_CHECK_MAX_MB)" in response.json()["detail"]
