"""Certificates as HAProxy holds them: PEM files on disk (what a start or reload reads) and
the same certificates in the running process, changed through the runtime API without a
reload (`new ssl cert`, `set ssl cert`, `commit ssl cert`, `add ssl crt-list`).

Also the keys and certificates Switchyard makes itself (the default certificate, keys for
ACME orders) and reading a certificate's facts, with `cryptography`. The router calls the
runtime functions under its lock, after it wrote the files.
"""
import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from deployments.haproxy import runtime_api

DEFAULT_CERTIFICATE_DAYS = 3650


class InvalidCertificate(ValueError):
    """A PEM certificate or key that cannot be served: the message says what to fix."""


@dataclass(frozen=True)
class CertificateFacts:
    names: tuple[str, ...]  # DNS names of the subject alternative names (the common name if none)
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    serial: int


def new_private_key_pem() -> str:
    """A key for a certificate order: ECDSA P-256 (fast, and every client speaks it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def new_account_key_pem() -> str:
    """An ACME account key: RSA 2048, which every ACME server accepts."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def facts(chain_pem: str) -> CertificateFacts:
    """What the first certificate of a chain says of itself."""
    certificate = _first_certificate(chain_pem)
    try:
        names = tuple(certificate.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = tuple(a.value for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return CertificateFacts(names=tuple(n.lower() for n in names), issuer=certificate.issuer.rfc4514_string(),
                            not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
                            serial=certificate.serial_number)


def check_pair(chain_pem: str, key_pem: str) -> CertificateFacts:
    """Facts of an uploaded certificate, once it is known to be servable: PEM, its key's match,
    valid now. Raises InvalidCertificate saying what is wrong."""
    found = facts(chain_pem)
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise InvalidCertificate(f"the key is not an unencrypted PEM private key ({error})") from None
    public = _first_certificate(chain_pem).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != public:
        raise InvalidCertificate("the key does not belong to the certificate")
    now = datetime.datetime.now(datetime.timezone.utc)
    if not found.not_before <= now < found.not_after:
        raise InvalidCertificate(f"the certificate is not valid now (valid {found.not_before:%Y-%m-%d} "
                                 f"to {found.not_after:%Y-%m-%d})")
    if not found.names:
        raise InvalidCertificate("the certificate names no host")
    return found


def bundle(chain_pem: str, key_pem: str) -> str:
    """Certificate chain and key in one file, as HAProxy reads it; no blank lines, which would
    end a runtime API payload early."""
    lines = [line for line in (chain_pem.strip() + "\n" + key_pem.strip()).splitlines() if line.strip()]
    return "\n".join(lines) + "\n"


def self_signed_bundle(common_name: str = "switchyard default certificate") -> str:
    key_pem = new_private_key_pem()
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=DEFAULT_CERTIFICATE_DAYS))
                   .sign(key, hashes.SHA256()))
    return bundle(certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem)


# The running HAProxy ------------------------------------------------------------------------

def loaded(socket_path: Path) -> set[str]:
    """Certificate files the running HAProxy holds ("*" marks one in an open transaction)."""
    answer = runtime_api.send(socket_path, "show ssl cert")
    return {line.strip() for line in answer.splitlines() if line.strip() and line[0] not in "#*"}


def served_fingerprint(socket_path: Path, certificate_file: Path) -> str | None:
    """SHA-1 fingerprint of the certificate HAProxy serves from that file, None if it has none."""
    if str(certificate_file) not in loaded(socket_path):
        return None
    for line in runtime_api.send(socket_path, f"show ssl cert {certificate_file}").splitlines():
        if line.startswith("SHA1 FingerPrint:"):
            return line.split(":", 1)[1].strip().upper()
    return None


def fingerprint(pem: str) -> str:
    """SHA-1 of the first certificate's DER, as `show ssl cert` prints it."""
    return _first_certificate(pem).fingerprint(hashes.SHA1()).hex().upper()


def install(socket_path: Path, crt_list: Path, certificate_file: Path, pem: str) -> None:
    """Serve `pem` from `certificate_file`: replace it where HAProxy has it, else add it to
    the crt-list. A transaction: clients see the old certificate or the new one."""
    known = str(certificate_file) in loaded(socket_path)
    if not known:
        _expect(socket_path, f"new ssl cert {certificate_file}", "New empty certificate store")
    _expect(socket_path, f"set ssl cert {certificate_file} <<\n{pem.strip()}\n", "Transaction created")
    _expect(socket_path, f"commit ssl cert {certificate_file}", "Success!")
    if not known:
        _expect(socket_path, f"add ssl crt-list {crt_list} {certificate_file}", "Success!")


def uninstall(socket_path: Path, crt_list: Path, certificate_file: Path) -> None:
    if str(certificate_file) not in loaded(socket_path):
        return
    _expect(socket_path, f"del ssl crt-list {crt_list} {certificate_file}", "deleted in crtlist")
    _expect(socket_path, f"del ssl cert {certificate_file}", "deleted")


def _expect(socket_path: Path, command: str, success: str) -> None:
    """Run a command whose answer names a file: matching error words in it would misread an
    app called "error"; these answers say plainly when they succeeded."""
    answer = runtime_api.send(socket_path, command)
    if success not in answer:
        raise runtime_api.HAProxyCommandError(f"HAProxy refused {command.splitlines()[0]!r}: {answer.strip()}")


def _first_certificate(chain_pem: str) -> x509.Certificate:
    try:
        certificates = x509.load_pem_x509_certificates(chain_pem.encode())
    except (ValueError, UnsupportedAlgorithm) as error:
        raise InvalidCertificate(f"the certificate is not PEM ({error})") from None
    return certificates[0]
