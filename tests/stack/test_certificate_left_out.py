"""A certificate that went bad or that HAProxy refuses cannot stop HAProxy for every app (issue 22,
High 1): left out with a warning, at upload, at start and in a running HAProxy, while every other
app keeps serving."""
import datetime
import os
import signal
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from deployments.application import apps, domains
from deployments.application.app_settings import AppSpec
from deployments.haproxy import process as haproxy_process, tls
from deployments.models import App, Certificate
from deployments.traffic import changes, rows, target
from tests.support.certworld import (CLI, DEFAULT_SUBJECT, MALLORY_DOMAIN, VICTIM_DOMAIN,
                                     assert_running_crt_list_is_the_files, assert_the_victim_serves, held, long_host,
                                     restart_haproxy, served_subject, store_directly, store_domains_directly,
                                     wait_served, wildcard_certificate)

ROOT = Path(__file__).resolve().parents[2]


def test_a_certificate_that_went_bad_is_left_out_with_a_warning_and_the_others_keep_serving(cert_world, stack):
    expired = cert_world.ca.issue([MALLORY_DOMAIN], ago=datetime.timedelta(days=3), days=1)
    store_directly(cert_world.mallory, expired.chain_pem, expired.key_pem)
    legacy = apps.create_app(AppSpec.of(name="legacy", repo_url=cert_world.victim.repo_url, domains=["legacy.example.test"]), actor=CLI, owner=cert_world.mallory.owner)
    weak = cert_world.ca.issue(["legacy.example.test"], key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    store_directly(legacy, weak.chain_pem, weak.key_pem)

    stack.reconcile()
    restart_haproxy()

    assert_the_victim_serves(cert_world, stack)
    assert served_subject(MALLORY_DOMAIN) == f"CN={DEFAULT_SUBJECT}"
    assert served_subject("legacy.example.test") == f"CN={DEFAULT_SUBJECT}"
    warning = cert_world.api.get(f"/api/apps/{cert_world.mallory.name}/certificate").json()["warning"]
    assert "not served: it expired on" in warning
    page = cert_world.panel.get(f"/apps/{legacy.name}/").content.decode()
    assert 'id="certificate-warning"' in page and "RSA of 1024 bits" in page
    page = cert_world.panel.get(f"/apps/{cert_world.mallory.name}/").content.decode()
    assert 'id="certificate-warning"' in page and "expired on" in page


def test_a_certificate_haproxy_refuses_only_with_the_apps_sni_filters_is_refused_at_upload(cert_world, stack):
    store_domains_directly(cert_world.mallory, [long_host(n) for n in range(270)])
    issued = wildcard_certificate(cert_world)
    pem = tls.bundle(issued.chain_pem, issued.key_pem)
    haproxy_process.check_certificate(held(pem))  # on a line of its own, without filters, HAProxy loads it

    response = cert_world.upload(issued.chain_pem, issued.key_pem)

    assert response.status_code == 400, response.content[:300]
    assert "SNI filters" in response.json()["detail"] and "line too long" in response.json()["detail"]
    assert not Certificate.objects.filter(app=cert_world.mallory, source=Certificate.Source.UPLOADED).exists()
    restart_haproxy()
    assert_the_victim_serves(cert_world, stack)


def _haproxy_command() -> subprocess.Popen:
    """`manage.py haproxy`, as `make run` and the compose stack start HAProxy."""
    return subprocess.Popen([sys.executable, "manage.py", "haproxy"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.support.settings"})


def _read_until(process: subprocess.Popen, text: str) -> str:
    output = ""
    while text not in output and (line := process.stdout.readline()):
        output += line
    assert text in output, output
    return output


def test_a_certificate_haproxy_refuses_at_start_is_left_out_and_every_other_app_still_serves(cert_world, stack):
    # Rows written around the upload's checks: a certificate HAProxy refuses on its crt-list line, with a verdict
    # that says it loaded it (as an older HAProxy did): a start checks what it is given, whatever was stored.
    store_domains_directly(cert_world.mallory, [long_host(n) for n in range(270)])
    issued = wildcard_certificate(cert_world)
    store_directly(cert_world.mallory, issued.chain_pem, issued.key_pem)
    held = next(route.tls for route in rows.app_routes() if route.name == cert_world.mallory.name)
    Certificate.objects.filter(app=cert_world.mallory).update(haproxy_checked=held.verdict_key, haproxy_refusal="")
    location = target.paths()
    haproxy_process.stop(location)
    location.certificate(cert_world.victim.name).write_text("corrupted on disk\n")  # the render writes it again

    served = _haproxy_command()
    output = ""
    try:
        output += _read_until(served, "HAProxy serves apps")
        assert_the_victim_serves(cert_world, stack)
        assert served_subject(MALLORY_DOMAIN) == f"CN={DEFAULT_SUBJECT}"
        assert stack.get("mallory.localhost")[0] == 503  # routed still: no release yet
        warning = cert_world.api.get(f"/api/apps/{cert_world.mallory.name}/certificate").json()["warning"]
        assert "not served: HAProxy refused it" in warning and "line too long" in warning, warning
        page = cert_world.panel.get(f"/apps/{cert_world.mallory.name}/").content.decode()
        assert 'id="certificate-warning"' in page and "HAProxy refused it" in page
        # Started again (HAProxy died): the stored verdict leaves it out, nothing is checked on its own.
        haproxy_process.stop(location)
        output += _read_until(served, "starting it again")
        stack.eventually(lambda: haproxy_process.is_running(location), "HAProxy is started again")
        assert_the_victim_serves(cert_world, stack)
    finally:
        served.send_signal(signal.SIGTERM)
        output += served.communicate(timeout=30)[0]
    assert "certificate of mallory left out of HAProxy: HAProxy refuses it on its own" in output, output
    assert output.count("HAProxy refused its config") == 1, output
    assert "certificate of victim left out" not in output
    changes.sync_all()


def test_a_certificate_haproxy_refuses_is_left_out_of_a_running_haproxy_and_other_changes_go_through(cert_world, stack):
    store_domains_directly(cert_world.mallory, [long_host(n) for n in range(270)])
    issued = wildcard_certificate(cert_world)
    store_directly(cert_world.mallory, issued.chain_pem, issued.key_pem)  # HAProxy has neither yet

    renewed = cert_world.ca.issue([VICTIM_DOMAIN])  # the next change installs both: a reload for mallory's long line
    domains.upload_certificate(App.objects.get(pk=cert_world.victim.pk), chain_pem=renewed.chain_pem, key_pem=renewed.key_pem, actor=CLI)

    cert_world.victim_serial = tls.facts(renewed.chain_pem).serial
    wait_served(VICTIM_DOMAIN, cert_world.victim_serial)
    assert_the_victim_serves(cert_world, stack)
    assert served_subject(MALLORY_DOMAIN) == f"CN={DEFAULT_SUBJECT}"
    warning = cert_world.api.get(f"/api/apps/{cert_world.mallory.name}/certificate").json()["warning"]
    assert "not served: HAProxy refused it" in warning and "line too long" in warning, warning
    assert_running_crt_list_is_the_files()
