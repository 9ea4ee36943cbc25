"""HTTPS from the tests' side: a private CA (for pebble's own listener, and for certificates a
person uploads), and requests to HAProxy's TLS port with the SNI and Host of an app."""
import datetime
import http.client
import socket
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Issued:
    chain_pem: str
    key_pem: str


class PrivateCA:
    """A certificate authority of the test's own."""

    def __init__(self, name: str = "Switchyard test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, names: list[str], ips: list[str] = (), days: float = 1, key=None,
              ago: datetime.timedelta = datetime.timedelta(minutes=5)) -> Issued:
        """A leaf for `names`, valid from `ago` before now for `days` (an expired one: ago > days),
        with `key` (a new EC P-256 key if None)."""
        import ipaddress
        key = key or ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        alternative = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        certificate = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - ago).not_valid_after(now - ago + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
            .sign(self.key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return Issued(certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem)


def trusting(ca_pem: str) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca_pem)


class HTTPSConnection(http.client.HTTPSConnection):
    """To 127.0.0.1:port, with the app's host as SNI and for the certificate check."""

    def __init__(self, port: int, host: str, context: ssl.SSLContext, timeout: float = 10) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._port = port

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self._port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def get(port: int, host: str, context: ssl.SSLContext, path: str = "/") -> tuple[int, str, http.client.HTTPMessage]:
    connection = HTTPSConnection(port, host, context)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace").strip(), response.headers
    finally:
        connection.close()


def served_certificate(port: int, host: str) -> x509.Certificate:
    """The certificate HAProxy presents for `host` (SNI), unverified."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as wrapped:
            return x509.load_der_x509_certificate(wrapped.getpeercert(binary_form=True))
