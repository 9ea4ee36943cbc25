"""A tenant's certificate uploads (issue 22, High 1), against the suite's real HAProxy and worker: bad
ones refused with the reason while every app keeps serving, a valid chain longer than one runtime
command served, odd input a 400, and uploads of one app rate-limited."""
import datetime
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from deployments.application import apps, domains
from deployments.application.apps import AppChanges
from deployments.haproxy import tls
from deployments.models import App, Certificate
from tests.support import tls as test_tls
from tests.support.certworld import (CLI, MALLORY_DOMAIN, VICTIM_DOMAIN, assert_the_victim_serves, restart_haproxy,
                                     served_serial, wait_served)


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


def test_a_tenants_bad_certificates_are_refused_and_every_app_keeps_serving(cert_world, stack):
    for name, (chain_pem, key_pem, reason) in _bad_certificates(cert_world.ca).items():
        response = cert_world.upload(chain_pem, key_pem)
        assert response.status_code == 400, (name, response.status_code, response.content[:300])
        assert reason in response.json()["detail"], (name, response.json())
        page = cert_world.panel.post(f"/apps/{cert_world.mallory.name}/certificate", {"certificate": chain_pem, "key": key_pem})
        assert page.status_code == 400 and reason in page.content.decode(), name  # the form again, with the error
        assert not Certificate.objects.filter(app=cert_world.mallory, source=Certificate.Source.UPLOADED).exists(), name
        assert_the_victim_serves(cert_world, stack)
    stack.reconcile()
    apps.update_app(App.objects.get(pk=cert_world.victim.pk), AppChanges(settings={"hsts": True}), actor=CLI)  # another tenant's settings change
    restart_haproxy()
    assert_the_victim_serves(cert_world, stack)


def test_a_valid_chain_longer_than_one_runtime_command_is_served_and_later_installs_still_work(cert_world, stack):
    leaf = cert_world.ca.issue([MALLORY_DOMAIN])
    chain_pem = leaf.chain_pem + "".join(_padded_certificate(cert_world.ca, index) for index in range(9))
    assert 20 * 1024 < len(chain_pem) < 64 * 1024  # under the upload cap, over what one runtime command takes

    assert cert_world.upload(chain_pem, leaf.key_pem).status_code == 200
    wait_served(MALLORY_DOMAIN, tls.facts(chain_pem).serial)
    assert_the_victim_serves(cert_world, stack)

    renewed = cert_world.ca.issue([VICTIM_DOMAIN])  # the next install through the runtime API
    domains.upload_certificate(App.objects.get(pk=cert_world.victim.pk), chain_pem=renewed.chain_pem, key_pem=renewed.key_pem, actor=CLI)
    cert_world.victim_serial = tls.facts(renewed.chain_pem).serial
    wait_served(VICTIM_DOMAIN, cert_world.victim_serial)
    stack.reconcile()
    restart_haproxy()
    assert_the_victim_serves(cert_world, stack)
    assert served_serial(MALLORY_DOMAIN) == tls.facts(chain_pem).serial


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


def test_odd_input_through_the_api_is_a_400_naming_the_problem(cert_world):
    good = cert_world.ca.issue([MALLORY_DOMAIN])
    san_chain, san_key = _malformed_san_certificate(cert_world.ca)
    for name, chain_pem, key_pem, reason in [
            ("lone surrogate", good.chain_pem + "\ud800", good.key_pem, "ASCII only"),
            ("lone surrogate in the key", good.chain_pem, good.key_pem.replace("-----END", "\ud800-----END"), "ASCII only"),
            ("malformed SAN", san_chain, san_key, "cannot be read")]:
        response = cert_world.api.post(f"/api/apps/{cert_world.mallory.name}/certificate", content_type="application/json",
                                  data=json.dumps({"certificate": chain_pem, "key": key_pem}))
        assert response.status_code == 400, (name, response.status_code, response.content[:300])
        assert reason in response.json()["detail"], (name, response.json())


def test_certificate_uploads_of_one_app_are_rate_limited(cert_world):
    first, second = cert_world.ca.issue([MALLORY_DOMAIN]), cert_world.ca.issue([MALLORY_DOMAIN])
    assert cert_world.upload(first.chain_pem, first.key_pem).status_code == 200
    response = cert_world.upload(second.chain_pem, second.key_pem)
    assert response.status_code == 429 and "SWITCHYARD_CERTIFICATE_UPLOAD_INTERVAL" in response.json()["detail"]
    assert Certificate.objects.get(app=cert_world.mallory).chain_pem == first.chain_pem
    other = cert_world.ca.issue([VICTIM_DOMAIN])  # another app is not held back
    domains.upload_certificate(App.objects.get(pk=cert_world.victim.pk), chain_pem=other.chain_pem, key_pem=other.key_pem, actor=CLI)
