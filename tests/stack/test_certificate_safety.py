"""A tenant's certificate can neither stop HAProxy for every app nor be served for names that are
not its app's (issue 22, High 1 and 2), against the suite's real HAProxy and worker.

The attacker is a non-superuser with an app of their own and an API token; the victim is another
tenant whose app is deployed and served over HTTPS with a certificate of its own.
"""
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from deployments import crypto
from deployments.application import apps, domains
from deployments.application.app_settings import AppSpec
from deployments.application.apps import AppChanges
from deployments.audit import Actor
from deployments.haproxy import process as haproxy_process, runtime_api, tls
from deployments.models import ApiToken, App, Certificate, Deployment, Domain
from deployments.traffic import changes, rows, target
from deployments.traffic.table import Tls
from tests.support import tls as test_tls
from tests.support.eventually import eventually

VICTIM_DOMAIN = "victim.example.test"
MALLORY_DOMAIN = "mallory.example.test"
PANEL_DOMAIN = "panel.example.test"
DEFAULT_SUBJECT = "switchyard default certificate"
ROOT = Path(__file__).resolve().parents[2]
CLI = Actor.cli("test")


def https_port() -> int:
    return settings.SWITCHYARD["HTTPS_BIND"][1]


@dataclass
class World:
    ca: test_tls.PrivateCA
    victim: App
    victim_serial: int
    mallory: App
    api: Client  # mallory's token
    panel: Client  # mallory logged in

    def upload(self, chain_pem: str, key_pem: str):
        return self.api.post(f"/api/apps/{self.mallory.name}/certificate", content_type="application/json",
                             data=json.dumps({"certificate": chain_pem, "key": key_pem}))


def _serial(host: str | None) -> int:
    return test_tls.served_certificate(https_port(), host).serial_number


def _subject(host: str | None) -> str:
    return test_tls.served_certificate(https_port(), host).subject.rfc4514_string()


def _wait_served(host: str, serial: int, timeout: float = 30) -> None:
    eventually(lambda: _serial(host) == serial, f"{host} served certificate {serial}", timeout, interval=0.2)


@pytest.fixture
def world(stack, app_repo, django_user_model) -> World:
    victim_user = django_user_model.objects.create_user("victor", password="pw-victor-12345")
    mallory_user = django_user_model.objects.create_user("mallory", password="pw-mallory-12345")
    app_repo.commit_version("v1")
    victim = apps.create_app(AppSpec.of(name="victim", repo_url=app_repo.url, domains=[VICTIM_DOMAIN]), actor=CLI, owner=victim_user)
    mallory = apps.create_app(AppSpec.of(name="mallory", repo_url=app_repo.url, domains=[MALLORY_DOMAIN]), actor=CLI, owner=mallory_user)
    deployment = stack.deploy_and_wait(victim)
    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    ca = test_tls.PrivateCA("tenants' CA")
    own = ca.issue([VICTIM_DOMAIN])
    domains.upload_certificate(victim, chain_pem=own.chain_pem, key_pem=own.key_pem, actor=Actor(user=victim_user, via="api"))
    serial = tls.facts(own.chain_pem).serial
    _wait_served(VICTIM_DOMAIN, serial)
    for app in (victim, mallory):  # uploads are rate-limited per app (test_certificate_uploads_...)
        cache.delete(domains.certificate_upload_key(app))
    panel = Client()
    panel.force_login(mallory_user)
    return World(ca, victim, serial, mallory, Client(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(mallory_user, 'ci')[1]}"),
                 panel)


def _assert_the_victim_serves(world: World, stack) -> None:
    """Over plain HTTP and over HTTPS with its own certificate, verified against its CA."""
    assert stack.get("victim.localhost") == (200, "v1")
    assert test_tls.get(https_port(), VICTIM_DOMAIN, test_tls.trusting(world.ca.pem))[:2] == (200, "v1")
    assert _serial(VICTIM_DOMAIN) == world.victim_serial


def _restart_haproxy() -> None:
    haproxy_process.stop(target.paths())
    changes.sync_all()


def _padded_certificate(ca: test_tls.PrivateCA, index: int) -> str:
    """A certificate of ~3 KiB of PEM (many names): nine of them after a leaf make a chain longer
    than one runtime-API command."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.DNSName(f"padding-{index}-{n:03d}.intermediate.example.test") for n in range(55)]
    certificate = (x509.CertificateBuilder().subject_name(ca.name).issuer_name(ca.name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName(names), critical=False).sign(ca.key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _bad_certificates(ca: test_tls.PrivateCA) -> dict[str, tuple[str, str, str]]:
    """name -> (certificate, key, what the refusal says)."""
    weak = ca.issue([MALLORY_DOMAIN], key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    good = ca.issue([MALLORY_DOMAIN])
    expired = ca.issue([MALLORY_DOMAIN], ago=datetime.timedelta(days=3), days=1)
    elsewhere = ca.issue(["elsewhere.example.test"])
    return {
        "RSA-1024": (weak.chain_pem, weak.key_pem, "RSA of 1024 bits"),
        "stray BEGIN line": (good.chain_pem + "-----BEGIN CERTIFICATE-----\n", good.key_pem, "stray or unfinished"),
        "chain of 80": (good.chain_pem + ca.pem * 79, good.key_pem, "80 certificates, at most 10"),
        "key in the certificate field": (good.chain_pem + good.key_pem, good.key_pem, "only CERTIFICATE blocks"),
        "two keys": (good.chain_pem, good.key_pem + weak.key_pem, "exactly one private key"),
        "expired": (expired.chain_pem, expired.key_pem, "not valid now"),
        "another name": (elsewhere.chain_pem, elsewhere.key_pem, "does not cover mallory.example.test"),
    }


def test_a_tenants_bad_certificates_are_refused_and_every_app_keeps_serving(world, stack):
    for name, (chain_pem, key_pem, reason) in _bad_certificates(world.ca).items():
        response = world.upload(chain_pem, key_pem)
        assert response.status_code == 400, (name, response.status_code, response.content[:300])
        assert reason in response.json()["detail"], (name, response.json())
        page = world.panel.post(f"/apps/{world.mallory.name}/certificate", {"certificate": chain_pem, "key": key_pem})
        assert page.status_code == 400 and reason in page.content.decode(), name  # the form again, with the error
        assert not Certificate.objects.filter(app=world.mallory, source=Certificate.Source.UPLOADED).exists(), name
        _assert_the_victim_serves(world, stack)
    stack.reconcile()
    apps.update_app(App.objects.get(pk=world.victim.pk), AppChanges(settings={"hsts": True}), actor=CLI)  # another tenant's settings change
    _restart_haproxy()
    _assert_the_victim_serves(world, stack)


def test_a_valid_chain_longer_than_one_runtime_command_is_served_and_later_installs_still_work(world, stack):
    leaf = world.ca.issue([MALLORY_DOMAIN])
    chain_pem = leaf.chain_pem + "".join(_padded_certificate(world.ca, index) for index in range(9))
    assert 20 * 1024 < len(chain_pem) < 64 * 1024  # under the upload cap, over what one runtime command takes

    assert world.upload(chain_pem, leaf.key_pem).status_code == 200
    _wait_served(MALLORY_DOMAIN, tls.facts(chain_pem).serial)
    _assert_the_victim_serves(world, stack)

    renewed = world.ca.issue([VICTIM_DOMAIN])  # the next install through the runtime API
    domains.upload_certificate(App.objects.get(pk=world.victim.pk), chain_pem=renewed.chain_pem, key_pem=renewed.key_pem, actor=CLI)
    world.victim_serial = tls.facts(renewed.chain_pem).serial
    _wait_served(VICTIM_DOMAIN, world.victim_serial)
    stack.reconcile()
    _restart_haproxy()
    _assert_the_victim_serves(world, stack)
    assert _serial(MALLORY_DOMAIN) == tls.facts(chain_pem).serial


def test_a_tenants_certificate_is_served_only_for_its_own_apps_domains(world, stack, celery_worker, panel_server):
    panel_port = int(panel_server.rsplit(":", 1)[1])
    panel_issued = world.ca.issue([PANEL_DOMAIN])
    facts = tls.facts(panel_issued.chain_pem)
    Certificate.objects.create(app=None, source=Certificate.Source.UPLOADED, status=Certificate.Status.VALID,
                               domains=[PANEL_DOMAIN], chain_pem=panel_issued.chain_pem,
                               encrypted_key=crypto.encrypt(panel_issued.key_pem), not_before=facts.not_before,
                               not_after=facts.not_after)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(settings.SWITCHYARD, "PANEL_DOMAIN", PANEL_DOMAIN)  # as the worker has it
        patch.setitem(settings.SWITCHYARD, "PANEL_BIND", ("127.0.0.1", panel_port))
        patch.setitem(settings.SWITCHYARD, "CERTIFICATE_UPLOAD_INTERVAL", 0)  # two uploads in a row
        celery_worker.restart(SWITCHYARD_PANEL_DOMAIN=PANEL_DOMAIN, SWITCHYARD_PANEL_BIND=f"127.0.0.1:{panel_port}")
        try:
            changes.sync_all()
            _wait_served(PANEL_DOMAIN, facts.serial)
            greedy = world.ca.issue([MALLORY_DOMAIN, VICTIM_DOMAIN, PANEL_DOMAIN, "unknown.example.test"])
            wildcard = world.ca.issue(["*.example.test"])
            for issued in (greedy, wildcard):
                assert world.upload(issued.chain_pem, issued.key_pem).status_code == 200
                serial = tls.facts(issued.chain_pem).serial
                _wait_served(MALLORY_DOMAIN, serial)
                for restarted in (False, True):
                    if restarted:
                        _restart_haproxy()
                    assert _serial(MALLORY_DOMAIN) == serial
                    assert _serial(VICTIM_DOMAIN) == world.victim_serial, restarted
                    assert _serial(PANEL_DOMAIN) == facts.serial, restarted
                    assert _subject("unknown.example.test") == f"CN={DEFAULT_SUBJECT}", restarted
                    assert _subject(None) == f"CN={DEFAULT_SUBJECT}", restarted  # no SNI at all
                    _assert_the_victim_serves(world, stack)
                    _assert_running_crt_list_is_the_files()
            # A domain added later is served the wildcard too, through the runtime API (a new SNI filter).
            worker_pid = runtime_api.worker_pid(target.paths().admin_socket)
            apps.update_app(App.objects.get(pk=world.mallory.pk), AppChanges(domains=[MALLORY_DOMAIN, "second.example.test"]), actor=CLI)
            stack.eventually(lambda: _serial("second.example.test") == serial, "the new domain gets its certificate")
            assert runtime_api.worker_pid(target.paths().admin_socket) == worker_pid, "HAProxy was reloaded"
            _assert_running_crt_list_is_the_files()
            assert _subject("unknown.example.test") == f"CN={DEFAULT_SUBJECT}"
            # The panel over HTTPS says so for a year: a browser never again sends its login form in clear.
            status, _, headers = test_tls.get(https_port(), PANEL_DOMAIN, test_tls.trusting(world.ca.pem), "/login/")
            assert status == 200 and headers.get("Strict-Transport-Security") == "max-age=31536000"
        finally:
            celery_worker.restart()
            Certificate.objects.filter(app=None).delete()
    changes.sync_all()


def _assert_running_crt_list_is_the_files() -> None:
    """What a restart would read is what HAProxy runs with: each certificate with its SNI filters."""
    paths = target.paths()
    running = tls.crt_list_entries(paths.admin_socket, paths.crt_list)
    files = {line.split()[0]: line for line in paths.crt_list.read_text().splitlines()}
    assert running.keys() == files.keys()
    assert all(tls.same_crt_list_line(running[path], line) for path, line in files.items())  # long ones cut by `show`
    assert all(len(line.split()) > 1 for line in running.values()), running  # never a line without filters


def test_the_panel_sends_hsts_only_over_https(db, client):
    assert client.get("/login/", secure=True).headers.get("Strict-Transport-Security") == "max-age=31536000"
    assert client.get("/login/", HTTP_X_FORWARDED_PROTO="https").headers.get("Strict-Transport-Security")
    assert client.get("/login/").headers.get("Strict-Transport-Security") is None


def _store_directly(app: App, chain_pem: str, key_pem: str) -> None:
    """As a row that was valid when stored (or written around the upload's checks)."""
    facts = tls.facts(chain_pem)
    Certificate.objects.update_or_create(app=app, defaults=dict(
        source=Certificate.Source.UPLOADED, status=Certificate.Status.VALID, domains=list(facts.names),
        chain_pem=chain_pem, encrypted_key=crypto.encrypt(key_pem), not_before=facts.not_before,
        not_after=facts.not_after, error=""))


def test_a_certificate_that_went_bad_is_left_out_with_a_warning_and_the_others_keep_serving(world, stack):
    expired = world.ca.issue([MALLORY_DOMAIN], ago=datetime.timedelta(days=3), days=1)
    _store_directly(world.mallory, expired.chain_pem, expired.key_pem)
    legacy = apps.create_app(AppSpec.of(name="legacy", repo_url=world.victim.repo_url, domains=["legacy.example.test"]), actor=CLI, owner=world.mallory.owner)
    weak = world.ca.issue(["legacy.example.test"], key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    _store_directly(legacy, weak.chain_pem, weak.key_pem)

    stack.reconcile()
    _restart_haproxy()

    _assert_the_victim_serves(world, stack)
    assert _subject(MALLORY_DOMAIN) == f"CN={DEFAULT_SUBJECT}"
    assert _subject("legacy.example.test") == f"CN={DEFAULT_SUBJECT}"
    warning = world.api.get(f"/api/apps/{world.mallory.name}/certificate").json()["warning"]
    assert "not served: it expired on" in warning
    page = world.panel.get(f"/apps/{legacy.name}/").content.decode()
    assert 'id="certificate-warning"' in page and "RSA of 1024 bits" in page
    page = world.panel.get(f"/apps/{world.mallory.name}/").content.decode()
    assert 'id="certificate-warning"' in page and "expired on" in page


def test_certificate_checks_name_what_to_fix():
    ca = test_tls.PrivateCA()
    good = ca.issue(["a.example.test"])
    p521 = ca.issue(["a.example.test"], key=ec.generate_private_key(ec.SECP521R1()))
    assert tls.check_pair(good.chain_pem, good.key_pem).names == ("a.example.test",)
    for chain_pem, key_pem, reason in [
            (p521.chain_pem, p521.key_pem, "curve secp521r1; use P-256 or P-384"),
            (good.chain_pem, ca.issue(["a.example.test"]).key_pem, "does not belong to the certificate"),
            ("hello " + good.chain_pem, good.key_pem, "text outside PEM blocks"),
            (good.chain_pem, "", "the key field holds nothing"),
            (good.chain_pem.replace("MII", "MI=I", 1), good.key_pem, "is not base64")]:
        with pytest.raises(tls.InvalidCertificate, match=reason):
            tls.check_pair(chain_pem, key_pem)
    assert tls.unservable(good.chain_pem, good.key_pem, timezone.now() - datetime.timedelta(seconds=1)).startswith(
        "it expired on")


def test_an_app_named_default_never_takes_over_the_default_certificate(world, stack):
    """Its certificate file is not the bind's default certificate: other names keep the default one."""
    app = apps.create_app(AppSpec.of(name="default", repo_url=world.victim.repo_url, domains=["default.example.test"]), actor=CLI, owner=world.mallory.owner)
    try:
        greedy = world.ca.issue(["default.example.test", "*.example.test", VICTIM_DOMAIN, "unknown.example.test"])
        response = world.api.post(f"/api/apps/{app.name}/certificate", content_type="application/json",
                                  data=json.dumps({"certificate": greedy.chain_pem, "key": greedy.key_pem}))
        assert response.status_code == 200, response.content[:300]
        serial = tls.facts(greedy.chain_pem).serial
        _wait_served("default.example.test", serial)
        for restarted in (False, True):
            if restarted:
                stack.reconcile()
                _restart_haproxy()
            assert _serial("default.example.test") == serial
            assert _subject("unknown.example.test") == f"CN={DEFAULT_SUBJECT}", restarted
            assert _subject(None) == f"CN={DEFAULT_SUBJECT}", restarted
            _assert_the_victim_serves(world, stack)
            assert tls.facts(target.paths().default_certificate.read_text()).names == (DEFAULT_SUBJECT,)
    finally:
        apps.delete_app(app.name, actor=CLI)
        changes.sync_all()


def test_an_adversarial_pem_is_refused_in_linear_time():
    """A lazy PEM pattern backtracked quadratically: 4000 spaces before a mismatched END took 100 s."""
    ca = test_tls.PrivateCA()
    good = ca.issue(["a.example.test"])
    hostile = "-----BEGIN CERTIFICATE-----" + " " * (60 * 1024) + "-----END CERTIFICATF-----"
    started = time.monotonic()
    with pytest.raises(tls.InvalidCertificate, match="stray or unfinished"):
        tls.check_pair(hostile, good.key_pem)
    assert time.monotonic() - started < 0.5


def _rsa_leaf(ca: test_tls.PrivateCA, bits: int, exponent: int = 65537) -> test_tls.Issued:
    return ca.issue(["a.example.test"], key=rsa.generate_private_key(public_exponent=exponent, key_size=bits))


def test_every_certificate_of_the_chain_meets_the_key_policy_and_huge_keys_are_refused_before_loading():
    ca = test_tls.PrivateCA()
    good = ca.issue(["a.example.test"])
    weak_intermediate = _rsa_leaf(ca, 1024).chain_pem  # any RSA-1024 certificate: HAProxy refuses it in a chain
    big = _rsa_leaf(ca, 4096 + 1024)
    odd_exponent = _rsa_leaf(ca, 2048, exponent=3)
    for chain_pem, key_pem, reason in [
            (good.chain_pem + weak_intermediate, good.key_pem, "certificate 2 of the chain has a key of RSA of 1024 bits"),
            (big.chain_pem, big.key_pem, "RSA of 5120 bits; 2048 to 4096"),
            (odd_exponent.chain_pem, odd_exponent.key_pem, "exponent 3; use 65537")]:
        with pytest.raises(tls.InvalidCertificate, match=reason):
            tls.check_pair(chain_pem, key_pem)
    # A stored row (written around the upload) is re-checked whole on render: left out of HAProxy's files.
    later = timezone.now() + datetime.timedelta(days=1)
    assert "certificate 2 of the chain" in tls.unservable(good.chain_pem + weak_intermediate, good.key_pem, later)
    ok = _rsa_leaf(ca, 4096)
    assert tls.check_pair(ok.chain_pem, ok.key_pem).names == ("a.example.test",)


def _malformed_san_certificate(ca: test_tls.PrivateCA) -> tuple[str, str]:
    """A leaf whose subject alternative names are not valid DER (a DNS name of non-ASCII bytes)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    san = x509.UnrecognizedExtension(x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x04\x82\x02\xff\xfe")
    certificate = (x509.CertificateBuilder().subject_name(ca.name).issuer_name(ca.name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1)).add_extension(san, critical=False)
                   .sign(ca.key, hashes.SHA256()))
    return (certificate.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def test_odd_input_through_the_api_is_a_400_naming_the_problem(world):
    good = world.ca.issue([MALLORY_DOMAIN])
    san_chain, san_key = _malformed_san_certificate(world.ca)
    for name, chain_pem, key_pem, reason in [
            ("lone surrogate", good.chain_pem + "\ud800", good.key_pem, "ASCII only"),
            ("lone surrogate in the key", good.chain_pem, good.key_pem.replace("-----END", "\ud800-----END"), "ASCII only"),
            ("malformed SAN", san_chain, san_key, "cannot be read")]:
        response = world.api.post(f"/api/apps/{world.mallory.name}/certificate", content_type="application/json",
                                  data=json.dumps({"certificate": chain_pem, "key": key_pem}))
        assert response.status_code == 400, (name, response.status_code, response.content[:300])
        assert reason in response.json()["detail"], (name, response.json())


def test_a_haproxy_check_that_times_out_is_a_refusal(monkeypatch):
    def slow(*args, **kwargs):
        raise subprocess.TimeoutExpired("haproxy", haproxy_process.CHECK_TIMEOUT)
    monkeypatch.setattr(haproxy_process.subprocess, "run", slow)
    with pytest.raises(haproxy_process.HAProxyConfigInvalid, match="took longer than"):
        haproxy_process.check_certificate(Tls(covered=(), redirect=False, hsts=False, pem="anything"))


LONG_BASE = f"{'b' * 60}.{'c' * 60}.{'d' * 50}.example.test"  # every long host is under it: one wildcard covers them


def _long_host(index: int) -> str:
    return f"{index:03d}{'a' * 57}.{LONG_BASE}"  # 246 characters


def _wildcard(world: World) -> test_tls.Issued:
    """A certificate of ~1 KiB (one runtime command) for mallory's domain and every long host."""
    return world.ca.issue([MALLORY_DOMAIN, f"*.{LONG_BASE}"])


def _held(pem: str, hosts: tuple[str, ...] = ()) -> Tls:
    return Tls(covered=hosts, redirect=False, hsts=False, pem=pem)


def test_domains_per_app_are_capped_and_a_crt_list_line_too_long_for_the_runtime_api_is_installed_by_a_reload(world, stack):
    most = settings.SWITCHYARD["MAX_APP_DOMAINS"]
    too_many = [f"d{n}.mallory.example.test" for n in range(most + 1)]
    response = world.api.patch(f"/api/apps/{world.mallory.name}", content_type="application/json",
                               data=json.dumps({"domains": too_many}))
    assert response.status_code == 400 and "SWITCHYARD_MAX_APP_DOMAINS" in response.content.decode(), response.content
    assert world.mallory.domains.count() == 1
    issued = _wildcard(world)
    assert tls.fits_runtime(target.paths().certificate(world.mallory.name), tls.bundle(issued.chain_pem, issued.key_pem))
    assert world.upload(issued.chain_pem, issued.key_pem).status_code == 200
    serial = tls.facts(issued.chain_pem).serial
    _wait_served(MALLORY_DOMAIN, serial)
    # As many long domains as allowed: only their crt-list line (~24 KiB) is more than one runtime command takes.
    # Sent anyway, its `del` passes, its `add` resets the connection: the app's hosts get the default certificate.
    hosts = [MALLORY_DOMAIN, *(_long_host(n) for n in range(most - 1))]
    assert len(" ".join(hosts)) > tls.RUNTIME_COMMAND_MAX
    worker_pid = runtime_api.worker_pid(target.paths().admin_socket)
    response = world.api.patch(f"/api/apps/{world.mallory.name}", content_type="application/json",
                               data=json.dumps({"domains": hosts}))
    assert response.status_code == 200, response.content[:300]
    kept = []

    def installed() -> bool:
        kept.append(_serial(MALLORY_DOMAIN) == serial)
        return _serial(hosts[-1]) == serial

    stack.eventually(installed, "the last long domain gets its certificate")
    assert all(kept), "the app's line went through the runtime API: its hosts got the default certificate meanwhile"
    assert runtime_api.worker_pid(target.paths().admin_socket) != worker_pid, "HAProxy was not reloaded"
    _assert_the_victim_serves(world, stack)
    _assert_running_crt_list_is_the_files()
    worker_pid = runtime_api.worker_pid(target.paths().admin_socket)
    apps.update_app(App.objects.get(pk=world.victim.pk), AppChanges(settings={"hsts": True}), actor=CLI)  # not reloaded for the long line
    stack.eventually(lambda: target.paths().hsts_map.read_text().count(VICTIM_DOMAIN) == 1, "the victim's HSTS")
    assert runtime_api.worker_pid(target.paths().admin_socket) == worker_pid, "HAProxy was reloaded"
    _restart_haproxy()
    _assert_the_victim_serves(world, stack)
    assert _serial(hosts[-1]) == serial


def _store_domains_directly(app: App, hosts: list[str]) -> None:
    """As rows written around the cap on domains (from before it, or by hand): more and longer
    SNI filters than one crt-list line holds (HAProxy reads at most 65,535 characters)."""
    Domain.objects.bulk_create([Domain(app=app, hostname=host) for host in hosts])
    assert len(" ".join(hosts)) > 65535


def test_a_certificate_haproxy_refuses_only_with_the_apps_sni_filters_is_refused_at_upload(world, stack):
    _store_domains_directly(world.mallory, [_long_host(n) for n in range(270)])
    issued = _wildcard(world)
    pem = tls.bundle(issued.chain_pem, issued.key_pem)
    haproxy_process.check_certificate(_held(pem))  # on a line of its own, without filters, HAProxy loads it

    response = world.upload(issued.chain_pem, issued.key_pem)

    assert response.status_code == 400, response.content[:300]
    assert "SNI filters" in response.json()["detail"] and "line too long" in response.json()["detail"]
    assert not Certificate.objects.filter(app=world.mallory, source=Certificate.Source.UPLOADED).exists()
    _restart_haproxy()
    _assert_the_victim_serves(world, stack)


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


def test_a_certificate_haproxy_refuses_at_start_is_left_out_and_every_other_app_still_serves(world, stack):
    # Rows written around the upload's checks: a certificate HAProxy refuses on its crt-list line, with a verdict
    # that says it loaded it (as an older HAProxy did): a start checks what it is given, whatever was stored.
    _store_domains_directly(world.mallory, [_long_host(n) for n in range(270)])
    issued = _wildcard(world)
    _store_directly(world.mallory, issued.chain_pem, issued.key_pem)
    held = next(route.tls for route in rows.app_routes() if route.name == world.mallory.name)
    Certificate.objects.filter(app=world.mallory).update(haproxy_checked=held.verdict_key, haproxy_refusal="")
    location = target.paths()
    haproxy_process.stop(location)
    location.certificate(world.victim.name).write_text("corrupted on disk\n")  # the render writes it again

    served = _haproxy_command()
    output = ""
    try:
        output += _read_until(served, "HAProxy serves apps")
        _assert_the_victim_serves(world, stack)
        assert _subject(MALLORY_DOMAIN) == f"CN={DEFAULT_SUBJECT}"
        assert stack.get("mallory.localhost")[0] == 503  # routed still: no release yet
        warning = world.api.get(f"/api/apps/{world.mallory.name}/certificate").json()["warning"]
        assert "not served: HAProxy refused it" in warning and "line too long" in warning, warning
        page = world.panel.get(f"/apps/{world.mallory.name}/").content.decode()
        assert 'id="certificate-warning"' in page and "HAProxy refused it" in page
        # Started again (HAProxy died): the stored verdict leaves it out, nothing is checked on its own.
        haproxy_process.stop(location)
        output += _read_until(served, "starting it again")
        stack.eventually(lambda: haproxy_process.is_running(location), "HAProxy is started again")
        _assert_the_victim_serves(world, stack)
    finally:
        served.send_signal(signal.SIGTERM)
        output += served.communicate(timeout=30)[0]
    assert "certificate of mallory left out of HAProxy: HAProxy refuses it on its own" in output, output
    assert output.count("HAProxy refused its config") == 1, output
    assert "certificate of victim left out" not in output
    changes.sync_all()


def test_a_certificate_haproxy_refuses_is_left_out_of_a_running_haproxy_and_other_changes_go_through(world, stack):
    _store_domains_directly(world.mallory, [_long_host(n) for n in range(270)])
    issued = _wildcard(world)
    _store_directly(world.mallory, issued.chain_pem, issued.key_pem)  # HAProxy has neither yet

    renewed = world.ca.issue([VICTIM_DOMAIN])  # the next change installs both: a reload for mallory's long line
    domains.upload_certificate(App.objects.get(pk=world.victim.pk), chain_pem=renewed.chain_pem, key_pem=renewed.key_pem, actor=CLI)

    world.victim_serial = tls.facts(renewed.chain_pem).serial
    _wait_served(VICTIM_DOMAIN, world.victim_serial)
    _assert_the_victim_serves(world, stack)
    assert _subject(MALLORY_DOMAIN) == f"CN={DEFAULT_SUBJECT}"
    warning = world.api.get(f"/api/apps/{world.mallory.name}/certificate").json()["warning"]
    assert "not served: HAProxy refused it" in warning and "line too long" in warning, warning
    _assert_running_crt_list_is_the_files()


def test_certificate_uploads_of_one_app_are_rate_limited(world):
    first, second = world.ca.issue([MALLORY_DOMAIN]), world.ca.issue([MALLORY_DOMAIN])
    assert world.upload(first.chain_pem, first.key_pem).status_code == 200
    response = world.upload(second.chain_pem, second.key_pem)
    assert response.status_code == 429 and "SWITCHYARD_CERTIFICATE_UPLOAD_INTERVAL" in response.json()["detail"]
    assert Certificate.objects.get(app=world.mallory).chain_pem == first.chain_pem
    other = world.ca.issue([VICTIM_DOMAIN])  # another app is not held back
    domains.upload_certificate(App.objects.get(pk=world.victim.pk), chain_pem=other.chain_pem, key_pem=other.key_pem, actor=CLI)


def test_haproxys_own_check_refuses_what_it_cannot_load():
    """The isolated `haproxy -c` (every upload refusal above comes from the Python checks first)."""
    ca = test_tls.PrivateCA()
    good = ca.issue(["a.example.test"])
    haproxy_process.check_certificate(_held(tls.bundle(good.chain_pem, good.key_pem)))
    with pytest.raises(haproxy_process.HAProxyConfigInvalid, match="certificate.pem"):
        haproxy_process.check_certificate(_held(good.chain_pem))  # no key: HAProxy cannot serve it
    other = ca.issue(["a.example.test"])
    with pytest.raises(haproxy_process.HAProxyConfigInvalid):
        haproxy_process.check_certificate(_held(tls.bundle(good.chain_pem, other.key_pem)))  # a key not the leaf's
