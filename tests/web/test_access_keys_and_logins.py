"""A tenant's keys and logins (issue 22, Medium): each app fetches with its own deploy key only, shown
to its people and rotated by its admins; a login lock-out is not dodged by moving within one IPv6
/64; a token in a repository URL is masked on the page, the API, the audit log and the deployment log."""
import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from django.conf import settings

from deployments.application import apps
from deployments.application.apps import AppChanges
from deployments.application.errors import InvalidInput
from deployments.audit import Actor
from deployments.git import source
from deployments.models import App, AuditEvent, LogLine
from tests.support.apprepo import AppRepo
from tests.support.eventually import eventually
from tests.support.processes import answers, free_port
from tests.support.tenant_api import call_api

TOKEN = "ghp_s3cretT0kenValue1234"


# Deploy keys -----------------------------------------------------------------------------

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
    port = free_port()
    (directory / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory / 'host_key'}\nAuthorizedKeysFile {authorized}\n"
        f"PidFile {directory / 'sshd.pid'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers root\n")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(directory / "sshd_config")], stderr=subprocess.PIPE,
                               start_new_session=True)
    eventually(lambda: answers(port) or process.poll() is not None, "sshd listens", 10)
    assert process.poll() is None, process.stderr.read().decode()

    class Server:
        def url(self, repo: AppRepo) -> str:
            return f"ssh://root@127.0.0.1:{port}{repo.path}"

        def authorize(self, public_key: str) -> None:
            authorized.write_text(public_key + "\n")

    yield Server()
    process.terminate()
    process.wait(timeout=10)


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
    shown = call_api(panel_server, ann_token, "GET", f"/apps/{ann_app.name}").json()["deploy_key"]
    assert shown.startswith("ssh-ed25519 ") and shown.endswith(" switchyard-ann-app")
    stored = App.objects.get(pk=ann_app.pk)
    assert stored.deploy_public_key == shown and "PRIVATE KEY" not in stored.encrypted_deploy_key
    assert stored.deploy_private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert call_api(panel_server, bob_token, "POST", f"/apps/{ann_app.name}/deploy-key/rotate").status_code == 404

    rotated = call_api(panel_server, ann_token, "POST", f"/apps/{ann_app.name}/deploy-key/rotate").json()["deploy_key"]
    assert rotated != shown and rotated.startswith("ssh-ed25519 ")
    assert AuditEvent.objects.filter(action="deploy_key.rotate", app_name=ann_app.name).exists()


def _access(app: App) -> "source.Access":
    return source.Access(private_key=app.deploy_private_key, allow_private=app.repo_private_allowed,
                         known_hosts=source.known_hosts(app.name))


# Panel -----------------------------------------------------------------------------------

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

    body = call_api(panel_server, token, "GET", f"/apps/{app.name}").json()
    assert body["repo_url"] == shown
    assert call_api(panel_server, token, "PATCH", f"/apps/{app.name}", repo_url=shown, port=8001).status_code == 200
    assert App.objects.get(pk=app.pk).repo_url == url  # sent back masked: unchanged
    audit = call_api(panel_server, token, "GET", "/audit").text
    deployment = call_api(panel_server, token, "POST", f"/apps/{app.name}/deploy").json()
    ended = stack.wait(App.objects.get(pk=app.pk).deployments.get(pk=deployment["id"]))
    logs = call_api(panel_server, token, "GET", f"/deployments/{ended.pk}/logs").text
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
