"""The panel's apps page creating apps (the creator its owner, bad input shown, nothing on this
machine for ordinary users), the deployment log read a page at a time, and an app's certificate
uploaded in the panel."""

import pytest
from django.urls import reverse

from deployments.git import source
from deployments.models import App, Certificate, LogLine, Membership
from deployments.views import LOG_PAGE
from tests.support.panelworld import APP, current_tab, db_state, settings_data
from tests.support.routing import ROUTING, haproxy_files, routed
from tests.support.tls import PrivateCA

pytestmark = pytest.mark.usefixtures("dispatched")


# Creating apps -------------------------------------------------------------------------------

def _new_app(repo_url: str, changes: dict | None = None) -> dict:
    return {"name": "new-app", "repo_url": repo_url, "branch": "main", "dockerfile": "Dockerfile", "port": "8000",
            "health_path": "/health", "domains": "new.example.com", **(changes or {})}


def test_creating_an_app_on_the_apps_page_makes_the_creator_its_owner(client, panel_world, redis_server, monkeypatch,
                                                                      handed_over):
    creator = panel_world.users["outsider"]
    client.force_login(creator)
    # An ordinary user needs a remote repository; none is reachable here, so the remote answers as git would.
    monkeypatch.setattr(source, "remote_branches", lambda url, access=None: ["main"])

    response = client.post(reverse("apps"), _new_app("https://git.example.com/team/new-app.git"))

    assert response.status_code == 302 and response.url == reverse("app", kwargs={"name": "new-app"})
    app = App.objects.get(name="new-app")
    assert app.owner == creator
    assert list(app.domains.values_list("hostname", flat=True)) == ["new.example.com"]
    assert routed("new.example.com app_new-app_blue") and ROUTING in handed_over
    assert client.get(response.url).context["role"] == Membership.Role.ADMIN
    assert "new-app" in [row["app"].name for row in client.get(reverse("apps")).context["rows"]]
    client.force_login(panel_world.users["viewer"])
    assert "new-app" not in [row["app"].name for row in client.get(reverse("apps")).context["rows"]]
    assert client.get(reverse("app", kwargs={"name": "new-app"})).status_code == 404


def test_creating_a_compose_app_on_the_apps_page_stores_its_file_web_service_and_port(client, panel_world, redis_server,
                                                                                     monkeypatch, handed_over):
    client.force_login(panel_world.users["outsider"])
    monkeypatch.setattr(source, "remote_branches", lambda url, access=None: ["main"])
    monkeypatch.setattr(source, "read_remote_file", lambda *args: "services: {front: {build: .}}")

    response = client.post(reverse("apps"), _new_app("https://git.example.com/team/counter.git", {
        "compose_file": "deploy/compose.yaml", "web_service": "front", "port": "3000"}))

    assert response.status_code == 302, response.context["form"].errors
    app = App.objects.get(name="new-app")
    assert (app.compose_file, app.web_service, app.port) == ("deploy/compose.yaml", "front", 3000)


@pytest.mark.parametrize("changes, field, error", [
    ({"name": "Bad_Name!"}, "name", "is not a valid app name"),
    ({"name": APP}, "name", "already exists"),
    ({"repo_url": "/nonexistent/repo.git"}, "repo_url", "cannot read git repository"),
    ({"branch": "release"}, "branch", "branch 'release' does not exist"),
    ({"branch": "main; rm -rf /"}, "branch", "is not a usable git branch"),
    ({"port": "70000"}, "port", "less than or equal to 65535"),
    ({"domains": "not a host!"}, "domains", "is not a hostname"),
])
def test_creating_an_app_with_bad_input_shows_the_error_and_creates_nothing(client, panel_world, redis_server,
                                                                            changes, field, error):
    client.force_login(panel_world.users["superuser"])  # the only ones besides the CLI who may use a local repo
    before, files_before = db_state(), haproxy_files()

    response = client.post(reverse("apps"), _new_app(panel_world.app.repo_url, changes))

    form = response.context["form"]
    assert any(error in message for message in form.errors[field])
    assert db_state() == before
    assert haproxy_files() == files_before


# Deployment log ------------------------------------------------------------------------------

@pytest.mark.parametrize("query, seqs", [
    ({}, [1, 2, 3]), ({"after": "0"}, [1, 2, 3]), ({"after": "2"}, [3]), ({"after": "3"}, []),
    ({"after": "-5"}, [1, 2, 3]),
])
def test_deployment_log_returns_the_stored_lines_after_a_sequence_number(client, panel_world, query, seqs):
    client.force_login(panel_world.users["viewer"])

    response = client.get(panel_world.url("deployment_log"), query)

    assert response.status_code == 200
    assert response.json() == {"lines": [{"seq": seq, "text": f"line {seq}"} for seq in seqs]}


@pytest.mark.parametrize("after", ["abc", "1.5", ""])
def test_deployment_log_rejects_an_after_that_is_not_a_whole_number(client, panel_world, after):
    client.force_login(panel_world.users["viewer"])

    response = client.get(panel_world.url("deployment_log"), {"after": after})

    assert response.status_code == 400
    assert response.json() == {"detail": "after must be a whole number"}


def test_deployment_log_pages_long_logs(client, panel_world):
    LogLine.objects.bulk_create(LogLine(deployment=panel_world.release, seq=seq, text=f"line {seq}")
                                for seq in range(4, LOG_PAGE + 11))
    client.force_login(panel_world.users["viewer"])

    first = client.get(panel_world.url("deployment_log")).json()["lines"]
    rest = client.get(panel_world.url("deployment_log"), {"after": first[-1]["seq"]}).json()["lines"]

    assert [line["seq"] for line in first] == list(range(1, LOG_PAGE + 1))
    assert [line["seq"] for line in rest] == list(range(LOG_PAGE + 1, LOG_PAGE + 11))


def test_deployment_log_of_a_missing_deployment_is_404(client, panel_world):
    client.force_login(panel_world.users["superuser"])

    response = client.get(reverse("deployment_log", kwargs={"pk": panel_world.queued.pk + 1000}))

    assert response.status_code == 404


@pytest.mark.parametrize("repo_url", ["{local}", "file://{local}", "http://127.0.0.1:6379/x.git",
                                      "ssh://[::1]/srv/x.git", "git@localhost:x.git", "https://169.254.169.254/x"])
def test_an_ordinary_user_cannot_point_an_app_at_this_machine(client, panel_world, redis_server, repo_url):
    """A local path or loopback URL would let a user read what Switchyard can read (other apps' repos)."""
    client.force_login(panel_world.users["owner"])
    before = db_state()

    response = client.post(reverse("apps"), _new_app(repo_url.format(local=panel_world.app.repo_url)))

    assert any("only the CLI or a superuser" in message for message in response.context["form"].errors["repo_url"])
    assert db_state() == before
    changed = client.post(panel_world.url("app_settings"), settings_data(panel_world.app, repo_url="/srv/other-app.git"))
    assert changed.status_code == 400 and App.objects.get(pk=panel_world.app.pk).repo_url == panel_world.app.repo_url


def test_a_superuser_may_point_an_app_at_a_repository_on_this_machine(client, panel_world, redis_server):
    client.force_login(panel_world.users["superuser"])

    response = client.post(reverse("apps"), _new_app(panel_world.app.repo_url))

    assert response.status_code == 302 and App.objects.get(name="new-app").repo_url == panel_world.app.repo_url


@pytest.mark.parametrize("action", ["certificate_upload", "certificate_acme"])
def test_certificate_actions_are_hidden_from_outsiders_and_refused_below_admin(client, panel_world, action):
    for role, status in (("outsider", 404), ("viewer", 403), ("deployer", 403)):
        client.force_login(panel_world.users[role])
        assert client.post(reverse(action, kwargs={"name": APP}), {"certificate": "x", "key": "y"}).status_code == status
    assert not Certificate.objects.exists()


def test_an_admin_uploads_a_certificate_in_the_panel_and_a_bad_one_is_shown_why(client, panel_world):
    panel_world.app.domains.create(hostname="billing.example.com")
    own = PrivateCA().issue(["billing.example.com"])
    client.force_login(panel_world.users["admin"])
    url = reverse("certificate_upload", kwargs={"name": APP})

    refused = client.post(url, {"certificate": own.chain_pem, "key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"})
    assert refused.status_code == 400 and "the key field holds a stray or unfinished" in refused.content.decode()
    assert current_tab(refused) == "settings" and refused.context["certificate_form"]["certificate"].value() == own.chain_pem
    assert not Certificate.objects.exists()

    assert client.post(url, {"certificate": own.chain_pem, "key": own.key_pem}).status_code == 302
    assert Certificate.objects.get(app=panel_world.app).domains == ["billing.example.com"]
    for name in ("app", "app_tab:settings"):
        page = client.get(panel_world.url(name)).content.decode()
        assert 'id="certificate-status">valid' in page and "uploaded" in page
