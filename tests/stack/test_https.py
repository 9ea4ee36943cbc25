"""Automatic HTTPS against a real ACME server (pebble), validated through the suite's HAProxy.

For this module the worker runs with pebble as its ACME directory and looks for due
certificates every second.
"""
import http.client
import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.utils import timezone

from deployments.application import apps, domains
from deployments.application.apps import AppChanges
from deployments.application.errors import InvalidInput
from deployments.audit import Actor
from deployments.haproxy import process as haproxy_process, runtime_api, tls
from deployments.haproxy.config import parse_map, redirect_entries
from deployments.models import App, Certificate, Deployment
from deployments.traffic import changes, target
from deployments.traffic.table import PanelRoute, Server
from tests.support import tls as test_tls
from tests.support.eventually import eventually
from tests.support.load import Load
from tests.support.pebble import Pebble

DOMAIN = "shop.example.test"
ISSUED_WITHIN = 60


def _worker_env(pebble: Pebble) -> dict[str, str]:
    return {"SWITCHYARD_ACME_DIRECTORY": pebble.directory_url, "SWITCHYARD_ACME_CA_BUNDLE": str(pebble.ca_bundle),
            "SWITCHYARD_CERTIFICATE_INTERVAL": "1"}


@pytest.fixture(scope="module")
def acme(celery_worker, tmp_path_factory):
    pebble = Pebble(tmp_path_factory.mktemp("pebble"), http_port=settings.SWITCHYARD["HTTP_BIND"][1])
    pebble.start()
    values = {"ACME_DIRECTORY": pebble.directory_url, "ACME_CA_BUNDLE": str(pebble.ca_bundle)}
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in values.items():  # this process enqueues; the worker issues
                patch.setitem(settings.SWITCHYARD, key, value)
            celery_worker.restart(**_worker_env(pebble))
            yield pebble
    finally:
        celery_worker.restart()
        pebble.stop()


@pytest.fixture
def trusted(acme):
    """A TLS client context that trusts what pebble issues (its root is new at every start)."""
    return test_tls.trusting(acme.root_pem())


def https_port() -> int:
    return settings.SWITCHYARD["HTTPS_BIND"][1]


def _https_app(stack, app_repo, name: str = "shop", domains: tuple[str, ...] = (DOMAIN, f"www.{DOMAIN}")) -> App:
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name=name, domains=list(domains))
    deployment = stack.deploy_and_wait(app)
    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    return app


def _wait_for_certificate(app: App | None, status: str = Certificate.Status.VALID, timeout: float = ISSUED_WITHIN,
                          changed_from: str | None = None) -> Certificate:
    """The app's certificate (None: the panel's) once it has `status` (and, if valid, is served)."""
    def reached() -> Certificate | None:
        found = Certificate.objects.filter(app=app).first()
        if found and found.status == status and (changed_from is None or found.chain_pem != changed_from) \
                and (status != Certificate.Status.VALID or _served(found)):
            return found
        return None

    def left() -> str:
        found = Certificate.objects.filter(app=app).first()
        return (f"the certificate of {app.name if app else 'the panel'} being {status} "
                f"(is {found and (found.status, found.error)})")
    return eventually(reached, left, timeout, interval=0.2)


def _served(certificate: Certificate) -> bool:
    """Whether HAProxy presents it already: the row is stored a moment before the runtime API
    call that installs it (changes.certificates_changing), so VALID alone can come first."""
    serial = tls.facts(certificate.chain_pem).serial
    return test_tls.served_certificate(https_port(), certificate.domains[0]).serial_number == serial


def _plain_get(stack, host: str) -> tuple[int, str]:
    """Status and Location of a plain-HTTP GET (no redirect followed)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        connection.request("GET", "/some/page?x=1", headers={"Host": host})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Location") or ""
    finally:
        connection.close()


def test_a_domain_gets_a_certificate_served_over_https_and_plain_http_redirects(acme, trusted, stack, app_repo):
    app = _https_app(stack, app_repo)

    certificate = _wait_for_certificate(app)

    assert sorted(certificate.domains) == [DOMAIN, f"www.{DOMAIN}"]
    assert certificate.source == Certificate.Source.ACME and "Pebble" in certificate.issuer
    for host in (DOMAIN, f"www.{DOMAIN}"):
        status, body, headers = test_tls.get(https_port(), host, trusted)  # verified against pebble's root
        assert (status, body) == (200, "v1")
        assert headers.get("Strict-Transport-Security") is None  # HSTS is off by default
    assert _plain_get(stack, DOMAIN) == (301, f"https://{DOMAIN}:{https_port()}/some/page?x=1")
    assert stack.get(f"{app.name}.localhost") == (200, "v1")  # no certificate there: plain HTTP as before
    assert parse_map(target.paths().challenges_map.read_text()) == []  # the tokens were withdrawn


def test_hsts_and_the_redirect_follow_the_apps_switches(acme, trusted, stack, app_repo):
    app = _https_app(stack, app_repo)
    _wait_for_certificate(app)

    apps.update_app(App.objects.get(pk=app.pk), AppChanges(settings={"hsts": True, "https_redirect": False}), actor=Actor.cli("test"))

    def hsts_header() -> str | None:
        return test_tls.get(https_port(), DOMAIN, trusted)[2].get("Strict-Transport-Security")

    assert stack.eventually(hsts_header, "the worker turns HSTS on") == "max-age=31536000"
    assert stack.get(DOMAIN) == (200, "v1")  # no redirect any more


def test_renewal_when_a_third_of_its_life_is_left_replaces_it_without_a_reload(acme, trusted, stack, app_repo):
    app = _https_app(stack, app_repo)
    first = _wait_for_certificate(app)
    worker_pid = runtime_api.worker_pid(target.paths().admin_socket)
    # As if two thirds of its life had passed:
    now = timezone.now()
    Certificate.objects.filter(pk=first.pk).update(not_before=now - timedelta(days=60), not_after=now + timedelta(days=29))

    renewed = _wait_for_certificate(app, changed_from=first.chain_pem)

    assert renewed.not_after > now + timedelta(days=300)
    served = test_tls.served_certificate(https_port(), DOMAIN)
    assert served.serial_number == tls.facts(renewed.chain_pem).serial != tls.facts(first.chain_pem).serial
    assert runtime_api.worker_pid(target.paths().admin_socket) == worker_pid, "HAProxy was reloaded"
    assert test_tls.get(https_port(), DOMAIN, trusted)[:2] == (200, "v1")

    # A restart lands on the stored certificate.
    haproxy_process.stop(target.paths())
    changes.sync_all()
    assert test_tls.served_certificate(https_port(), DOMAIN).serial_number == served.serial_number


def test_a_refused_validation_is_shown_and_retried_while_the_app_serves_http(acme, trusted, stack, app_repo, client):
    domain = "broken.example.test"
    acme.resolve(domain, "127.0.0.2")  # HAProxy listens on 127.0.0.1 only: pebble's check finds nothing there
    app = _https_app(stack, app_repo, name="broken", domains=(domain,))

    failed = _wait_for_certificate(app, status=Certificate.Status.FAILED)

    assert failed.error.startswith(f"validation refused: {domain}: ") and "connection refused" in failed.error.lower()
    assert failed.failures >= 1 and failed.next_attempt_at > timezone.now() + timedelta(seconds=30)
    assert stack.get(domain) == (200, "v1")  # served over plain HTTP meanwhile, not redirected
    client.force_login(app.owner or _superuser())
    page = client.get(f"/apps/{app.name}/").content.decode()
    assert 'id="certificate-error"' in page and "connection refused" in page.lower()

    acme.resolve_as_default(domain)
    Certificate.objects.filter(pk=failed.pk).update(next_attempt_at=timezone.now())  # as when the backoff has passed
    issued = _wait_for_certificate(app)
    assert issued.error == "" and issued.failures == 0
    assert test_tls.get(https_port(), domain, trusted)[:2] == (200, "v1")


def test_an_uploaded_certificate_is_served_instead_and_a_bad_one_is_refused(acme, stack, app_repo):
    domain = "own.example.test"
    app = _https_app(stack, app_repo, name="own", domains=(domain,))
    _wait_for_certificate(app)
    own_ca = test_tls.PrivateCA("a customer's CA")
    own = own_ca.issue([domain])
    other = own_ca.issue(["elsewhere.example.test"])

    with pytest.raises(InvalidInput, match="does not belong to the certificate"):
        domains.upload_certificate(app, chain_pem=own.chain_pem, key_pem=other.key_pem, actor=Actor.cli("test"))
    with pytest.raises(InvalidInput, match="does not cover own.example.test, a domain of own"):
        domains.upload_certificate(app, chain_pem=other.chain_pem, key_pem=other.key_pem, actor=Actor.cli("test"))
    domains.upload_certificate(app, chain_pem=own.chain_pem, key_pem=own.key_pem, actor=Actor.cli("test"))

    expected = tls.facts(own.chain_pem).serial
    eventually(lambda: test_tls.served_certificate(https_port(), domain).serial_number == expected,
               "the uploaded certificate served", 20, interval=0.2)
    assert test_tls.get(https_port(), domain, test_tls.trusting(own_ca.pem))[:2] == (200, "v1")
    assert Certificate.objects.get(app=app).source == Certificate.Source.UPLOADED


def test_a_zero_downtime_deploy_of_an_https_app_under_load_fails_no_request(acme, trusted, stack, app_repo):
    app = _https_app(stack, app_repo)
    _wait_for_certificate(app)
    app_repo.commit_version("v2")

    with Load(https_port(), DOMAIN, tls=trusted, max_seconds=120) as load:
        load.wait_for(50)
        deployment = stack.deploy_and_wait(app)
        load.wait_for(load.result.total + 50)
    result = load.stop()

    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    assert not result.failed, result.failed[:5]
    assert set(result.bodies()) == {"v1", "v2"}


def _superuser():
    from django.contrib.auth import get_user_model
    return get_user_model().objects.create_superuser("root", password="a long enough password")


PANEL_DOMAIN = "panel.example.test"


def _wrong_password_through_the_panel_domain(trusted, forged_address: str) -> int:
    host = f"{PANEL_DOMAIN}:{https_port()}"
    connection = test_tls.HTTPSConnection(https_port(), PANEL_DOMAIN, trusted)
    try:
        connection.request("GET", "/login/", headers={"Host": host})
        response = connection.getresponse()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode()).group(1)
        cookie = response.getheader("Set-Cookie").split(";")[0]
        body = urlencode({"username": "nobody", "password": "not-the-password", "csrfmiddlewaretoken": token})
        connection.request("POST", "/login/", body=body, headers={
            "Host": host, "Cookie": cookie, "Origin": f"https://{host}", "X-Forwarded-For": forged_address,
            "Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_the_panel_is_served_on_its_own_domain_over_https(acme, trusted, stack, panel_server, celery_worker):
    panel_port = int(panel_server.rsplit(":", 1)[1])
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(settings.SWITCHYARD, "PANEL_DOMAIN", PANEL_DOMAIN)  # as the worker has it
        patch.setitem(settings.SWITCHYARD, "PANEL_BIND", ("127.0.0.1", panel_port))
        celery_worker.restart(**_worker_env(acme), SWITCHYARD_PANEL_DOMAIN=PANEL_DOMAIN,
                              SWITCHYARD_PANEL_BIND=f"127.0.0.1:{panel_port}")
        try:
            changes.sync_all()
            certificate = _wait_for_certificate(None)

            assert certificate.domains == [PANEL_DOMAIN] and "Pebble" in certificate.issuer
            status, body, _ = test_tls.get(https_port(), PANEL_DOMAIN, trusted, "/login/")
            assert status == 200 and 'name="password"' in body
            assert test_tls.get(https_port(), PANEL_DOMAIN, trusted, "/static/switchyard/panel.css")[0] == 200
            assert _plain_get(stack, PANEL_DOMAIN) == (301, f"https://{PANEL_DOMAIN}:{https_port()}/some/page?x=1")
            # Login throttling counts by the address HAProxy saw, never by one the client claims.
            assert _wrong_password_through_the_panel_domain(trusted, forged_address="203.0.113.9") == 200
            assert list(AccessAttempt.objects.filter(username="nobody").values_list("ip_address", flat=True)) == [
                "127.0.0.1"]
        finally:
            celery_worker.restart(**_worker_env(acme))
            Certificate.objects.filter(app=None).delete()
    changes.sync_all()
    assert _plain_get(stack, PANEL_DOMAIN)[0] == 404  # the apps' HAProxy no longer knows it


def test_plain_http_to_the_panel_redirects_even_before_its_certificate_comes():
    panel = PanelRoute(hostname=PANEL_DOMAIN, server=Server("127.0.0.1", 8000), tls=None)

    assert redirect_entries([], panel) == [(PANEL_DOMAIN, "1")]
