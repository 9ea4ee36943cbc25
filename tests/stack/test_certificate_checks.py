"""The checks a certificate passes before HAProxy sees it, on their own: each refusal names what to
fix, the key policy holds for every certificate of the chain, an adversarial PEM is refused in
linear time, HAProxy's own isolated check; and the panel's HSTS only over HTTPS."""
import datetime
import subprocess
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.utils import timezone

from deployments.haproxy import process as haproxy_process, tls
from deployments.traffic.table import Tls
from tests.support import tls as test_tls
from tests.support.certworld import held


def test_the_panel_sends_hsts_only_over_https(db, client):
    assert client.get("/login/", secure=True).headers.get("Strict-Transport-Security") == "max-age=31536000"
    assert client.get("/login/", HTTP_X_FORWARDED_PROTO="https").headers.get("Strict-Transport-Security")
    assert client.get("/login/").headers.get("Strict-Transport-Security") is None


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


def test_a_haproxy_check_that_times_out_is_a_refusal(monkeypatch):
    def slow(*args, **kwargs):
        raise subprocess.TimeoutExpired("haproxy", haproxy_process.CHECK_TIMEOUT)
    monkeypatch.setattr(haproxy_process.subprocess, "run", slow)
    with pytest.raises(haproxy_process.HAProxyConfigInvalid, match="took longer than"):
        haproxy_process.check_certificate(Tls(covered=(), redirect=False, hsts=False, pem="anything"))


def test_haproxys_own_check_refuses_what_it_cannot_load():
    """The isolated `haproxy -c` (every upload refusal above comes from the Python checks first)."""
    ca = test_tls.PrivateCA()
    good = ca.issue(["a.example.test"])
    haproxy_process.check_certificate(held(tls.bundle(good.chain_pem, good.key_pem)))
    with pytest.raises(haproxy_process.HAProxyConfigInvalid, match="certificate.pem"):
        haproxy_process.check_certificate(held(good.chain_pem))  # no key: HAProxy cannot serve it
    other = ca.issue(["a.example.test"])
    with pytest.raises(haproxy_process.HAProxyConfigInvalid):
        haproxy_process.check_certificate(held(tls.bundle(good.chain_pem, other.key_pem)))  # a key not the leaf's
