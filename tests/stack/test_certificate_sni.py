"""A tenant's certificate is served only for its own app's domains (issue 22, High 2), against the
suite's real HAProxy and worker: never for another tenant's, the panel's or an unknown name, not even
as a wildcard or from an app named default; domains per app capped, a long crt-list line installed."""
import json

import pytest
from django.conf import settings

from deployments import crypto
from deployments.application import apps
from deployments.application.app_settings import AppSpec
from deployments.application.apps import AppChanges
from deployments.haproxy import runtime_api, tls
from deployments.models import App, Certificate
from deployments.traffic import changes, target
from tests.support import tls as test_tls
from tests.support.certworld import (CLI, DEFAULT_SUBJECT, MALLORY_DOMAIN, PANEL_DOMAIN, VICTIM_DOMAIN,
                                     assert_running_crt_list_is_the_files, assert_the_victim_serves, https_port,
                                     long_host, restart_haproxy, served_serial, served_subject, wait_served,
                                     wildcard_certificate)


def _store_the_panels_certificate(ca: test_tls.PrivateCA) -> int:
    """The panel's own certificate for PANEL_DOMAIN, as an administrator stores it; returns its serial."""
    issued = ca.issue([PANEL_DOMAIN])
    facts = tls.facts(issued.chain_pem)
    Certificate.objects.create(app=None, source=Certificate.Source.UPLOADED, status=Certificate.Status.VALID,
                               domains=[PANEL_DOMAIN], chain_pem=issued.chain_pem,
                               encrypted_key=crypto.encrypt(issued.key_pem), not_before=facts.not_before,
                               not_after=facts.not_after)
    return facts.serial


def _upload_and_check_only_mallorys_names_get_it(cert_world, stack, issued, panel_serial: int) -> int:
    """Mallory uploads `issued`; before and after a restart of HAProxy it is served for her domain
    only: the victim and the panel keep theirs, other names and no SNI get the default. Returns its serial."""
    assert cert_world.upload(issued.chain_pem, issued.key_pem).status_code == 200
    serial = tls.facts(issued.chain_pem).serial
    wait_served(MALLORY_DOMAIN, serial)
    for restarted in (False, True):
        if restarted:
            restart_haproxy()
        assert served_serial(MALLORY_DOMAIN) == serial
        assert served_serial(VICTIM_DOMAIN) == cert_world.victim_serial, restarted
        assert served_serial(PANEL_DOMAIN) == panel_serial, restarted
        assert served_subject("unknown.example.test") == f"CN={DEFAULT_SUBJECT}", restarted
        assert served_subject(None) == f"CN={DEFAULT_SUBJECT}", restarted  # no SNI at all
        assert_the_victim_serves(cert_world, stack)
        assert_running_crt_list_is_the_files()
    return serial


def _a_domain_added_later_gets_the_wildcard_without_a_reload(cert_world, stack, serial: int) -> None:
    """Through the runtime API (a new SNI filter), HAProxy's worker the same."""
    worker_pid = runtime_api.worker_pid(target.paths().admin_socket)
    apps.update_app(App.objects.get(pk=cert_world.mallory.pk), AppChanges(domains=[MALLORY_DOMAIN, "second.example.test"]), actor=CLI)
    stack.eventually(lambda: served_serial("second.example.test") == serial, "the new domain gets its certificate")
    assert runtime_api.worker_pid(target.paths().admin_socket) == worker_pid, "HAProxy was reloaded"
    assert_running_crt_list_is_the_files()
    assert served_subject("unknown.example.test") == f"CN={DEFAULT_SUBJECT}"


def test_a_tenants_certificate_is_served_only_for_its_own_apps_domains(cert_world, stack, celery_worker, panel_server):
    panel_port = int(panel_server.rsplit(":", 1)[1])
    panel_serial = _store_the_panels_certificate(cert_world.ca)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(settings.SWITCHYARD, "PANEL_DOMAIN", PANEL_DOMAIN)  # as the worker has it
        patch.setitem(settings.SWITCHYARD, "PANEL_BIND", ("127.0.0.1", panel_port))
        patch.setitem(settings.SWITCHYARD, "CERTIFICATE_UPLOAD_INTERVAL", 0)  # two uploads in a row
        celery_worker.restart(SWITCHYARD_PANEL_DOMAIN=PANEL_DOMAIN, SWITCHYARD_PANEL_BIND=f"127.0.0.1:{panel_port}")
        try:
            changes.sync_all()
            wait_served(PANEL_DOMAIN, panel_serial)
            greedy = cert_world.ca.issue([MALLORY_DOMAIN, VICTIM_DOMAIN, PANEL_DOMAIN, "unknown.example.test"])
            _upload_and_check_only_mallorys_names_get_it(cert_world, stack, greedy, panel_serial)
            wildcard = cert_world.ca.issue(["*.example.test"])
            serial = _upload_and_check_only_mallorys_names_get_it(cert_world, stack, wildcard, panel_serial)
            _a_domain_added_later_gets_the_wildcard_without_a_reload(cert_world, stack, serial)
            # The panel over HTTPS says so for a year: a browser never again sends its login form in clear.
            status, _, headers = test_tls.get(https_port(), PANEL_DOMAIN, test_tls.trusting(cert_world.ca.pem), "/login/")
            assert status == 200 and headers.get("Strict-Transport-Security") == "max-age=31536000"
        finally:
            celery_worker.restart()
            Certificate.objects.filter(app=None).delete()
    changes.sync_all()


def test_an_app_named_default_never_takes_over_the_default_certificate(cert_world, stack):
    """Its certificate file is not the bind's default certificate: other names keep the default one."""
    app = apps.create_app(AppSpec.of(name="default", repo_url=cert_world.victim.repo_url, domains=["default.example.test"]), actor=CLI, owner=cert_world.mallory.owner)
    try:
        greedy = cert_world.ca.issue(["default.example.test", "*.example.test", VICTIM_DOMAIN, "unknown.example.test"])
        response = cert_world.api.post(f"/api/apps/{app.name}/certificate", content_type="application/json",
                                  data=json.dumps({"certificate": greedy.chain_pem, "key": greedy.key_pem}))
        assert response.status_code == 200, response.content[:300]
        serial = tls.facts(greedy.chain_pem).serial
        wait_served("default.example.test", serial)
        for restarted in (False, True):
            if restarted:
                stack.reconcile()
                restart_haproxy()
            assert served_serial("default.example.test") == serial
            assert served_subject("unknown.example.test") == f"CN={DEFAULT_SUBJECT}", restarted
            assert served_subject(None) == f"CN={DEFAULT_SUBJECT}", restarted
            assert_the_victim_serves(cert_world, stack)
            assert tls.facts(target.paths().default_certificate.read_text()).names == (DEFAULT_SUBJECT,)
    finally:
        apps.delete_app(app.name, actor=CLI)
        changes.sync_all()


def test_domains_per_app_are_capped_and_a_crt_list_line_too_long_for_the_runtime_api_is_installed_by_a_reload(cert_world, stack):
    most = settings.SWITCHYARD["MAX_APP_DOMAINS"]
    too_many = [f"d{n}.mallory.example.test" for n in range(most + 1)]
    response = cert_world.api.patch(f"/api/apps/{cert_world.mallory.name}", content_type="application/json",
                               data=json.dumps({"domains": too_many}))
    assert response.status_code == 400 and "SWITCHYARD_MAX_APP_DOMAINS" in response.content.decode(), response.content
    assert cert_world.mallory.domains.count() == 1
    issued = wildcard_certificate(cert_world)
    assert tls.fits_runtime(target.paths().certificate(cert_world.mallory.name), tls.bundle(issued.chain_pem, issued.key_pem))
    assert cert_world.upload(issued.chain_pem, issued.key_pem).status_code == 200
    serial = tls.facts(issued.chain_pem).serial
    wait_served(MALLORY_DOMAIN, serial)
    # As many long domains as allowed: only their crt-list line (~24 KiB) is more than one runtime command takes.
    # Sent anyway, its `del` passes, its `add` resets the connection: the app's hosts get the default certificate.
    hosts = [MALLORY_DOMAIN, *(long_host(n) for n in range(most - 1))]
    assert len(" ".join(hosts)) > tls.RUNTIME_COMMAND_MAX
    worker_pid = runtime_api.worker_pid(target.paths().admin_socket)
    response = cert_world.api.patch(f"/api/apps/{cert_world.mallory.name}", content_type="application/json",
                               data=json.dumps({"domains": hosts}))
    assert response.status_code == 200, response.content[:300]
    kept = []

    def installed() -> bool:
        kept.append(served_serial(MALLORY_DOMAIN) == serial)
        return served_serial(hosts[-1]) == serial

    stack.eventually(installed, "the last long domain gets its certificate")
    assert all(kept), "the app's line went through the runtime API: its hosts got the default certificate meanwhile"
    assert runtime_api.worker_pid(target.paths().admin_socket) != worker_pid, "HAProxy was not reloaded"
    assert_the_victim_serves(cert_world, stack)
    assert_running_crt_list_is_the_files()
    worker_pid = runtime_api.worker_pid(target.paths().admin_socket)
    apps.update_app(App.objects.get(pk=cert_world.victim.pk), AppChanges(settings={"hsts": True}), actor=CLI)  # not reloaded for the long line
    stack.eventually(lambda: target.paths().hsts_map.read_text().count(VICTIM_DOMAIN) == 1, "the victim's HSTS")
    assert runtime_api.worker_pid(target.paths().admin_socket) == worker_pid, "HAProxy was reloaded"
    restart_haproxy()
    assert_the_victim_serves(cert_world, stack)
    assert served_serial(hosts[-1]) == serial
