"""The panel's signing key. Every task the panel sends to a host is signed with it (Celery's `auth`
serializer), and an agent runs only what carries that signature: a host whose credential leaks
can put messages in its own queue, but its agent refuses them, and it can reach no other queue.

The key is made on first use and kept in the data directory (mode 600); its self-signed
certificate is what agents trust. The command that starts an agent carries the certificate's
SHA-256 fingerprint, so an agent takes the certificate from the broker only if it is that one."""
import datetime
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

KEY_BITS = 3072
VALID_DAYS = 3650  # a key the panel owns and can replace; agents pin it by fingerprint, not by date


@dataclass(frozen=True)
class SigningKey:
    key_pem: str
    certificate_pem: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate_pem)


def fingerprint(certificate_pem: str) -> str:
    """SHA-256 of the certificate (DER), hex."""
    der = x509.load_pem_x509_certificate(certificate_pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


@lru_cache(maxsize=1)
def panel_key() -> SigningKey:
    """The panel's key and certificate, made the first time they are asked for."""
    directory = Path(settings.DATA_DIR) / "fleet"
    key_path, certificate_path = directory / "signing-key.pem", directory / "signing-certificate.pem"
    if not key_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        key_pem, certificate_pem = _new_key()
        certificate_path.write_text(certificate_pem)
        _write_private(key_path, key_pem)  # last: its presence means both are complete
    return SigningKey(key_path.read_text(), certificate_path.read_text())


def _new_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Switchyard panel {settings.SWITCHYARD['INSTANCE']}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=VALID_DAYS)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


def _write_private(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    temporary.replace(path)
