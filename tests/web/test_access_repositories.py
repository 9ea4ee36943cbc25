"""What a tenant may point an app's repository at (issue 22, Medium): nothing on this machine or a
private network in any spelling, at create and again at fetch; no git:// (its name is resolved
again by git); no redirect followed; nothing read from the host's git config."""
import functools
import http.server
import ipaddress
import socket
import subprocess
import threading

import pytest
from django.conf import settings

from deployments.git import source
from deployments.models import App
from tests.support.apprepo import AppRepo
from tests.support.tenant_api import call_api


PRIVATE_REPOSITORIES = [
    "https://127.1/x.git", "https://0x7f000001/x.git", "https://2130706433/x.git", "https://[::ffff:127.0.0.1]/x.git",
    "ssh://[::1]/x.git", "https://10.1.2.3/x.git", "http://169.254.169.254/latest/", "https://localhost/x.git",
    "git@localhost:x.git", "https://192.168.1.1/x.git",
    "https://0.0.0.0/x.git", "https://github.com@127.0.0.1/x.git",
]


def test_a_tenant_cannot_point_a_repository_at_this_machine_or_a_private_network(tenants, panel_server):
    _, app, token = tenants["ann"]
    before = App.objects.get(pk=app.pk).repo_url
    for url in PRIVATE_REPOSITORIES:
        created = call_api(panel_server, token, "POST", "/apps", name="ann-new", repo_url=url)
        changed = call_api(panel_server, token, "PATCH", f"/apps/{app.name}", repo_url=url)
        for response in (created, changed):
            assert response.status_code == 400 and "private network" in response.text, (url, response.text)
    ambiguous = call_api(panel_server, token, "PATCH", f"/apps/{app.name}", repo_url="https://127.0.0.1\\@example.com/x.git")
    assert ambiguous.status_code == 400 and "backslash" in ambiguous.text
    assert App.objects.get(pk=app.pk).repo_url == before and not App.objects.filter(name="ann-new").exists()


def test_a_tenants_git_protocol_url_is_refused_since_git_would_resolve_its_name_again(stack, tenants, panel_server):
    """git:// cannot be pinned to the address that was checked: the name could resolve to this
    machine or the LAN when git connects (DNS rebinding). Refused when stored and at fetch."""
    _, app, token = tenants["ann"]
    for url in ("git://example.com/x.git", "git://LOCALHOST/x.git", "git://[fd00::1]/x.git"):
        response = call_api(panel_server, token, "PATCH", f"/apps/{app.name}", repo_url=url)
        assert response.status_code == 400 and "https:// or ssh://" in response.text, (url, response.text)
    App.objects.filter(pk=app.pk).update(repo_url="git://localhost/team/app.git")  # stored before this rule

    response = call_api(panel_server, token, "POST", f"/apps/{app.name}/deploy")
    assert response.status_code == 202
    deployment = stack.wait(App.objects.get(pk=app.pk).deployments.get())
    assert deployment.state == "failed" and deployment.phase == "fetch"
    assert "git:// repositories are not fetched" in deployment.error, deployment.error


def test_a_repository_name_that_now_resolves_to_this_machine_is_refused_at_fetch(stack, tenants, panel_server):
    """Stored while it was public (a row as it was after the check); at deploy the name resolves
    to 127.0.0.1 and the worker refuses to fetch. Nothing listens to be reached: the reason is the test."""
    _, app, token = tenants["ann"]
    App.objects.filter(pk=app.pk).update(repo_url="https://localhost/team/app.git")

    response = call_api(panel_server, token, "POST", f"/apps/{app.name}/deploy")
    assert response.status_code == 202
    deployment = stack.wait(App.objects.get(pk=app.pk).deployments.get())
    assert deployment.state == "failed" and deployment.phase == "fetch"
    assert "refused" in deployment.error and "private network" in deployment.error, deployment.error


def test_git_reads_nothing_of_the_hosts_home_or_config(tmp_path, monkeypatch, app_repo):
    """A rule in the host's ~/.gitconfig would be applied to every app's fetch (here: one that
    sends another repository instead)."""
    app_repo.commit_version("mine")
    other = AppRepo(tmp_path / "other")
    other.commit_version("other")
    subprocess.run(["git", "-C", str(other.path), "branch", "-q", "elsewhere"], check=True, timeout=10)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f'[url "{other.url}"]\n\tinsteadOf = {app_repo.url}\n')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))

    assert "elsewhere" not in source.remote_branches(app_repo.url)


class _Redirecting(http.server.SimpleHTTPRequestHandler):
    """Serves a bare repository over git's dumb HTTP; /moved/... redirects to another address."""
    target = ""

    def do_GET(self):
        if self.path.startswith("/moved/"):
            self.send_response(302)
            self.send_header("Location", f"{self.target}{self.path.removeprefix('/moved')}")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_repo(tmp_path, app_repo):
    """The app repository as a bare clone served over HTTP on 127.0.0.1 (a thread of this process)."""
    bare = tmp_path / "served" / "app.git"
    subprocess.run(["git", "clone", "-q", "--bare", app_repo.url, str(bare)], check=True, timeout=30)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True, timeout=30)
    handler = functools.partial(_Redirecting, directory=str(tmp_path / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_tenants_http_repository_is_fetched_from_the_checked_address_and_redirects_are_not_followed(
        tenants, app_repo, http_repo, monkeypatch):
    """The pinning works (git reads the repository through `localhost`, resolved and checked by
    Switchyard), and a redirect, which could lead anywhere, is not followed."""
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:http")
    head = app_repo._git("rev-parse", "HEAD").strip()
    tenant_access = source.Access(private_key=tenants["ann"][1].deploy_private_key)
    url = f"http://localhost:{http_repo}/app.git"
    with pytest.raises(source.SourceError, match="private network"):
        source.fetch("ann-app", url, "main", tenant_access)

    monkeypatch.setitem(settings.SWITCHYARD, "REPOSITORY_ALLOWED_NETWORKS", (ipaddress.ip_network("127.0.0.1/32"),))
    assert source.fetch("ann-app", url, "main", tenant_access) == head
    # git connects to the address Switchyard checked, not to whatever the name resolves to by then:
    # here only Switchyard's lookup knows the name at all (git's own would fail).
    lookup = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: lookup("127.0.0.1" if host == "repo.invalid" else host, *a, **k))
    assert source.fetch("ann-app", f"http://repo.invalid:{http_repo}/app.git", "main", tenant_access) == head
    # A redirect could lead anywhere after the check; even one back to the same server is not followed.
    _Redirecting.target = f"http://127.0.0.1:{http_repo}"
    with pytest.raises(source.SourceError, match="returned error: 302"):
        source.fetch("ann-app", f"http://localhost:{http_repo}/moved/app.git", "main", tenant_access)
    source.delete_cache("ann-app")
