"""What a tenant may point Switchyard at: domains, repositories, keys (issue 22, Medium).

Each test is a tenant (a non-superuser with their own app and token) trying it against the
real panel, worker, git, sshd and HAProxy: a wildcard, an address or another owner's name as a
domain; a repository on this machine in any spelling, at create and again at fetch; another
app's deploy key; a login lock-out dodged by moving within one IPv6 /64; a token in a
repository URL read back from the page, the API, the audit log or the deployment log."""
import functools
import http.server
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client

from deployments.application import apps
from deployments.application.app_settings import SETTINGS_FIELDS
from deployments.application.apps import AppChanges
from deployments.application.errors import InvalidInput
from deployments.audit import Actor
from deployments.git import source
from deployments.models import ApiToken, App, AuditEvent, Domain, LogLine
from deployments.traffic import changes
from tests.support.apprepo import AppRepo
from tests.support.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
CLI = Actor.cli("test")
TOKEN = "ghp_s3cretT0kenValue1234"


def _api(panel_server: str, token: str, method: str, path: str, **body) -> requests.Response:
    response = requests.request(method, f"{panel_server}/api{path}", json=body or None, timeout=30,
                                headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, response.text
    return response


@pytest.fixture
def tenants(transactional_db, django_user_model, app_repo, tmp_path):
    """Two non-superusers, each with an app (made by the CLI from a repository on this machine) and a token."""
    app_repo.commit_version("v1")
    found = {}
    for name in ("ann", "bob"):
        user = django_user_model.objects.create_user(name, password=f"pw-{name}-1234567")
        app = App.objects.create(name=f"{name}-app", repo_url=app_repo.url, owner=user)
        found[name] = (user, app, ApiToken.issue(user, "t")[1])
    return found


# A. Domains ---------------------------------------------------------------------------------

REFUSED_DOMAINS = {
    "*.example.com": "wildcard", "127.0.0.1": "IP address", "127.1": "IP address", "0x7f000001": "IP address",
    "2130706433": "IP address", "0177.0.0.1": "IP address", "localhost": "localhost names",
    "ann-app.localhost": "localhost names", "panel.example.net": "panel's own domain",
    "x.panel.example.net": "panel's own domain", "shop.bob.example.org": "another owner",
    "bob.example.org": "already a domain", "example.org": "another owner",
}


def test_a_tenant_cannot_claim_wildcards_addresses_localhost_the_panel_or_another_owners_names(
        tenants, panel_server, monkeypatch, app_repo, handed_over):
    """Through the API of the running panel (its settings: SWITCHYARD_PANEL_DOMAIN is read from
    the request's process, so it is checked here in-process as well, below)."""
    (_, ann_app, ann_token), (_, bob_app, _) = tenants["ann"], tenants["bob"]
    Domain.objects.create(app=bob_app, hostname="bob.example.org")

    for domain, reason in REFUSED_DOMAINS.items():
        if "panel" in domain:
            continue  # the running panel has no panel domain; see the in-process check below
        response = _api(panel_server, ann_token, "PATCH", f"/apps/{ann_app.name}", domains=[domain])
        assert response.status_code == 400 and reason in response.text, (domain, response.text)
    created = _api(panel_server, ann_token, "POST", "/apps", name="ann-two", repo_url="https://127.1/x.git",
                   domains=["shop.bob.example.org"])
    assert created.status_code == 400 and "another owner" in created.text
    assert list(ann_app.domains.values_list("hostname", flat=True)) == []
    assert _api(panel_server, ann_token, "PATCH", f"/apps/{ann_app.name}",
                domains=["ann.example.com"]).status_code == 200

    client = Client()  # the panel's settings form and the CLI say the same
    client.force_login(tenants["ann"][0])
    ann_app.refresh_from_db()
    form = {**{name: getattr(ann_app, name) for name in SETTINGS_FIELDS}, "domains": "ann.example.com 127.1"}
    page = client.post(f"/apps/{ann_app.name}/settings", form)
    assert page.status_code == 400 and "is an IP address" in page.content.decode()
    with pytest.raises(CommandError, match="wildcard"):
        call_command("apps", "create", "cli-app", "--repo", app_repo.url, "--domain", "*.example.com")

    monkeypatch.setitem(settings.SWITCHYARD, "PANEL_DOMAIN", "panel.example.net")
    actor = Actor(user=tenants["ann"][0], via="api")
    for domain in ("panel.example.net", "x.panel.example.net"):
        with pytest.raises(InvalidInput, match="panel's own domain"):
            apps.update_app(App.objects.get(pk=ann_app.pk), AppChanges(domains=[domain]), actor=actor)


def test_localhost_names_are_off_beyond_loopback_and_an_unknown_host_tells_nothing(stack, app_repo, monkeypatch):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="secretapp", domains=["secretapp.example.com"])
    assert stack.deploy_and_wait(app).state == "succeeded"
    assert stack.get("secretapp.localhost") == (200, "v1")  # loopback bind: on (the default there)

    monkeypatch.setitem(settings.SWITCHYARD, "LOCALHOST_NAMES", False)
    changes.sync_all()  # renders the map and reloads the real HAProxy, as the worker does

    def raw(host: str) -> bytes:
        with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as connection:
            connection.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            return b"".join(iter(lambda: connection.recv(65536), b""))

    real, unknown = raw("secretapp.localhost"), raw("nosuchapp.localhost")
    assert real == unknown == raw("nothing.example.com")  # byte for byte: the same 404
    assert real.startswith(b"HTTP/1.1 404") and b"secretapp" not in real
    assert stack.get("secretapp.example.com") == (200, "v1")


@pytest.mark.slow  # starts a Python process of its own: Django's start-up takes seconds
@pytest.mark.parametrize("bind, expected", [("127.0.0.1:8080", "True"), ("[::1]:8080", "True"),
                                            ("0.0.0.0:80", "False"), ("203.0.113.7:80", "False")])
def test_localhost_names_default_to_on_only_where_haproxy_binds_loopback(bind, expected):
    env = {**os.environ, "SWITCHYARD_HTTP_BIND": bind, "DJANGO_SETTINGS_MODULE": "panel.settings"}
    env.pop("SWITCHYARD_LOCALHOST_NAMES", None)
    result = subprocess.run([sys.executable, "-c", "import django; django.setup(); from django.conf import settings;"
                             "print(settings.SWITCHYARD['LOCALHOST_NAMES'])"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == expected, result.stderr


# B. Repositories ----------------------------------------------------------------------------

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
        created = _api(panel_server, token, "POST", "/apps", name="ann-new", repo_url=url)
        changed = _api(panel_server, token, "PATCH", f"/apps/{app.name}", repo_url=url)
        for response in (created, changed):
            assert response.status_code == 400 and "private network" in response.text, (url, response.text)
    ambiguous = _api(panel_server, token, "PATCH", f"/apps/{app.name}", repo_url="https://127.0.0.1\\@example.com/x.git")
    assert ambiguous.status_code == 400 and "backslash" in ambiguous.text
    assert App.objects.get(pk=app.pk).repo_url == before and not App.objects.filter(name="ann-new").exists()


def test_a_tenants_git_protocol_url_is_refused_since_git_would_resolve_its_name_again(stack, tenants, panel_server):
    """git:// cannot be pinned to the address that was checked: the name could resolve to this
    machine or the LAN when git connects (DNS rebinding). Refused when stored and at fetch."""
    _, app, token = tenants["ann"]
    for url in ("git://example.com/x.git", "git://LOCALHOST/x.git", "git://[fd00::1]/x.git"):
        response = _api(panel_server, token, "PATCH", f"/apps/{app.name}", repo_url=url)
        assert response.status_code == 400 and "https:// or ssh://" in response.text, (url, response.text)
    App.objects.filter(pk=app.pk).update(repo_url="git://localhost/team/app.git")  # stored before this rule

    response = _api(panel_server, token, "POST", f"/apps/{app.name}/deploy")
    assert response.status_code == 202
    deployment = stack.wait(App.objects.get(pk=app.pk).deployments.get())
    assert deployment.state == "failed" and deployment.phase == "fetch"
    assert "git:// repositories are not fetched" in deployment.error, deployment.error


def test_a_repository_name_that_now_resolves_to_this_machine_is_refused_at_fetch(stack, tenants, panel_server):
    """Stored while it was public (a row as it was after the check); at deploy the name resolves
    to 127.0.0.1 and the worker refuses to fetch. Nothing listens to be reached: the reason is the test."""
    _, app, token = tenants["ann"]
    App.objects.filter(pk=app.pk).update(repo_url="https://localhost/team/app.git")

    response = _api(panel_server, token, "POST", f"/apps/{app.name}/deploy")
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


# C. Deploy keys -----------------------------------------------------------------------------

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@pytest.fixture
def sshd(tmp_path):
    """A real OpenSSH server on a loopback port; authorize(public_key) lets that key in (only it)."""
    if not Path(SSHD).exists():
        pytest.fail("sshd is missing: scripts/install.sh installs openssh-server")
    Path("/run/sshd").mkdir(exist_ok=True)
    directory = tmp_path / "sshd"
    directory.mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / "host_key")], check=True,
                   timeout=30)
    authorized = directory / "authorized_keys"
    authorized.touch(mode=0o600)
    port = _free_port()
    (directory / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory / 'host_key'}\nAuthorizedKeysFile {authorized}\n"
        f"PidFile {directory / 'sshd.pid'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers root\n")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(directory / "sshd_config")], stderr=subprocess.PIPE,
                               start_new_session=True)
    eventually(lambda: _listening(port) or process.poll() is not None, "sshd listens", 10)
    assert process.poll() is None, process.stderr.read().decode()

    class Server:
        def url(self, repo: AppRepo) -> str:
            return f"ssh://root@127.0.0.1:{port}{repo.path}"

        def authorize(self, public_key: str) -> None:
            authorized.write_text(public_key + "\n")

    yield Server()
    process.terminate()
    process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.slow  # a real sshd and git over ssh
def test_each_app_fetches_its_private_repository_with_its_own_deploy_key_only(
        tenants, app_repo, sshd, monkeypatch):
    """Real sshd with only ann's app's public key authorized: her app reads the repository,
    bob's (its own key) is refused, and after her key is rotated hers is refused too."""
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:ssh")  # the suite allows local files only
    # The administrator allows this loopback git server (a tenant's URL must otherwise be public).
    monkeypatch.setitem(settings.SWITCHYARD, "REPOSITORY_ALLOWED_NETWORKS", (ipaddress.ip_network("127.0.0.0/8"),))
    url = sshd.url(app_repo)
    (ann, ann_app, _), (bob, bob_app, _) = tenants["ann"], tenants["bob"]
    assert ann_app.deploy_public_key != bob_app.deploy_public_key
    sshd.authorize(ann_app.deploy_public_key)

    apps.update_app(ann_app, AppChanges(settings={"repo_url": url}), actor=Actor(user=ann, via="api"))  # reads its branches
    with pytest.raises(InvalidInput, match="Permission denied"):
        apps.update_app(bob_app, AppChanges(settings={"repo_url": url}), actor=Actor(user=bob, via="api"))
    ann_app.refresh_from_db()
    assert not ann_app.repo_private_allowed  # a tenant's URL: checked at every fetch
    assert source.fetch(ann_app.name, url, "main", _access(ann_app)) == app_repo._git("rev-parse", "HEAD").strip()

    apps.rotate_deploy_key(ann_app, actor=Actor(user=ann, via="api"))
    with pytest.raises(source.SourceError, match="Permission denied"):
        source.fetch(ann_app.name, url, "main", _access(App.objects.get(pk=ann_app.pk)))
    source.delete_cache(ann_app.name)


def test_the_deploy_key_is_shown_to_the_apps_people_and_rotated_by_its_admins(tenants, panel_server):
    (_, ann_app, ann_token), (_, _, bob_token) = tenants["ann"], tenants["bob"]
    shown = _api(panel_server, ann_token, "GET", f"/apps/{ann_app.name}").json()["deploy_key"]
    assert shown.startswith("ssh-ed25519 ") and shown.endswith(" switchyard-ann-app")
    stored = App.objects.get(pk=ann_app.pk)
    assert stored.deploy_public_key == shown and "PRIVATE KEY" not in stored.encrypted_deploy_key
    assert stored.deploy_private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert _api(panel_server, bob_token, "POST", f"/apps/{ann_app.name}/deploy-key/rotate").status_code == 404

    rotated = _api(panel_server, ann_token, "POST", f"/apps/{ann_app.name}/deploy-key/rotate").json()["deploy_key"]
    assert rotated != shown and rotated.startswith("ssh-ed25519 ")
    assert AuditEvent.objects.filter(action="deploy_key.rotate", app_name=ann_app.name).exists()


def _access(app: App) -> "source.Access":
    return source.Access(private_key=app.deploy_private_key, allow_private=app.repo_private_allowed,
                         known_hosts=source.known_hosts(app.name))


# D. Panel -----------------------------------------------------------------------------------

def _log_in(panel_server: str, username: str, password: str, address: str) -> int:
    """A login from `address`, as a proxy on this machine reports it (the panel trusts loopback's
    X-Forwarded-For, as it does HAProxy's)."""
    session = requests.Session()
    headers = {"X-Forwarded-For": address}
    session.get(f"{panel_server}/login/", headers=headers, timeout=30)
    response = session.post(f"{panel_server}/login/", timeout=30, allow_redirects=False, headers=headers,
                            data={"username": username, "password": password,
                                  "csrfmiddlewaretoken": session.cookies["csrftoken"]})
    assert response.status_code < 500
    return response.status_code


def test_ipv6_logins_are_throttled_per_64(tenants, panel_server):
    statuses = [_log_in(panel_server, "ann", f"guess {n}", f"2001:db8:1:2::{n + 1:x}") for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]  # five addresses, one /64: one lock-out
    assert _log_in(panel_server, "ann", "pw-ann-1234567", "2001:db8:1:2:ffff::9") == 429
    assert _log_in(panel_server, "ann", "pw-ann-1234567", "2001:db8:1:3::1") == 302  # the next /64 is someone else


def test_a_token_in_a_repository_url_is_masked_everywhere_it_is_shown(stack, tenants, panel_server, monkeypatch):
    """Page, settings form, API, audit log and deployment log show https://user:****@...; the
    form sent back as shown keeps the stored URL."""
    (ann, app, token) = tenants["ann"]
    url = f"https://deploy:{TOKEN}@git.example.com/team/app.git"
    monkeypatch.setattr(source, "remote_branches", lambda url, access=None: ["main"])  # no git host here
    apps.update_app(app, AppChanges(settings={"repo_url": url}), actor=Actor(user=ann, via="api"))
    shown = "https://deploy:****@git.example.com/team/app.git"

    body = _api(panel_server, token, "GET", f"/apps/{app.name}").json()
    assert body["repo_url"] == shown
    assert _api(panel_server, token, "PATCH", f"/apps/{app.name}", repo_url=shown, port=8001).status_code == 200
    assert App.objects.get(pk=app.pk).repo_url == url  # sent back masked: unchanged
    audit = _api(panel_server, token, "GET", "/audit").text
    deployment = _api(panel_server, token, "POST", f"/apps/{app.name}/deploy").json()
    ended = stack.wait(App.objects.get(pk=app.pk).deployments.get(pk=deployment["id"]))
    logs = _api(panel_server, token, "GET", f"/deployments/{ended.pk}/logs").text
    session = requests.Session()
    token_field = _csrf(session, panel_server)
    login = session.post(f"{panel_server}/login/", data={"username": "ann", "password": "pw-ann-1234567",
                                                         "csrfmiddlewaretoken": token_field}, timeout=30)
    assert login.status_code == 200 and login.url.endswith("/"), (settings.DATA_DIR / "panel.log").read_text()[-3000:]
    page = session.get(f"{panel_server}/apps/{app.name}/", timeout=30).text

    assert shown in page and shown in audit and shown in logs
    for text in (page, audit, logs, ended.error, *LogLine.objects.filter(deployment=ended).values_list("text", flat=True),
                 *AuditEvent.objects.values_list("detail", flat=True)):
        assert TOKEN not in text


def _csrf(session: requests.Session, panel_server: str) -> str:
    session.get(f"{panel_server}/login/", timeout=30)
    return session.cookies["csrftoken"]
