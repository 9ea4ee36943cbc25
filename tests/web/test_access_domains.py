"""What a tenant may claim as a domain (issue 22, Medium): not a wildcard, an address, a localhost
name, the panel's own domain or another owner's name; and localhost names only where HAProxy binds
loopback, an unknown host telling nothing. Each test is a tenant (a non-superuser with their own app
and token) trying it against the real panel and HAProxy."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client

from deployments.application import apps
from deployments.application.app_settings import SETTINGS_FIELDS
from deployments.application.apps import AppChanges
from deployments.application.errors import InvalidInput
from deployments.audit import Actor
from deployments.models import App, Domain
from deployments.traffic import changes
from tests.support.tenant_api import call_api

ROOT = Path(__file__).resolve().parents[2]


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
        response = call_api(panel_server, ann_token, "PATCH", f"/apps/{ann_app.name}", domains=[domain])
        assert response.status_code == 400 and reason in response.text, (domain, response.text)
    created = call_api(panel_server, ann_token, "POST", "/apps", name="ann-two", repo_url="https://127.1/x.git",
                   domains=["shop.bob.example.org"])
    assert created.status_code == 400 and "another owner" in created.text
    assert list(ann_app.domains.values_list("hostname", flat=True)) == []
    assert call_api(panel_server, ann_token, "PATCH", f"/apps/{ann_app.name}",
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
