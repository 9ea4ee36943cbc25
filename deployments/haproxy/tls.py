"""Certificates as HAProxy holds them: PEM files on disk (what a start or reload reads) and
the same certificates in the running process, changed through the runtime API without a
reload (`new ssl cert`, `set ssl cert`, `commit ssl cert`, `add ssl crt-list`).

Also the keys and certificates Switchyard makes itself (the default certificate, keys for
ACME orders) and reading a certificate's facts, with `cryptography`. apply.py calls the
runtime functions after it wrote the files (traffic/changes.py holds the lock).
"""
import base64
import contextlib
import binascii
import datetime
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from deployments.haproxy import runtime_api

DEFAULT_CERTIFICATE_DAYS = 3650
MAX_CHAIN = 10  # the certificate and its intermediates; a real chain has two or three
MAX_PEM_BYTES = 64 * 1024
MIN_RSA_BITS = 2048  # what Debian's OpenSSL (security level 2) loads; HAProxy refuses less
MAX_RSA_BITS = 4096  # larger keys make every handshake (and loading the key) slow
ALLOWED_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
PRIVATE_KEY_LABELS = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"}
# One PEM block (RFC 7468): BEGIN and END with the same label, base64 between. Linear: one
# greedy class that cannot hold "-" (a lazy body between optional spaces backtracked
# quadratically: 100 s for 4000 spaces before a mismatched END line).
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\s]*)-----END \1-----")


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
    """Facts of an uploaded certificate, once it is known to be servable on its own (see
    _check_structure) and valid now. Raises InvalidCertificate saying what to fix: also for what
    the parsers raise on odd input (a lone surrogate, a malformed extension, an unknown algorithm)."""
    with _refusing_odd_input():
        return _check_pair(chain_pem, key_pem)


@contextlib.contextmanager
def _refusing_odd_input():
    """What the parsers raise on input they cannot read, as InvalidCertificate."""
    try:
        yield
    except InvalidCertificate:
        raise
    except UnicodeError:
        raise InvalidCertificate("certificate and key are PEM text: ASCII only") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise InvalidCertificate(f"the certificate cannot be read ({type(error).__name__}: {error})") from None


def _check_pair(chain_pem: str, key_pem: str) -> CertificateFacts:
    _check_structure(chain_pem, key_pem)
    found = facts(chain_pem)
    now = datetime.datetime.now(datetime.timezone.utc)
    if not found.not_before <= now < found.not_after:
        raise InvalidCertificate(f"the certificate is not valid now (valid {found.not_before:%Y-%m-%d} "
                                 f"to {found.not_after:%Y-%m-%d})")
    if not found.names:
        raise InvalidCertificate("the certificate names no host")
    return found


def unservable(chain_pem: str, key_pem: str, not_after: datetime.datetime | None) -> str:
    """Why a stored certificate must be left out of HAProxy's files ("" if it can be served): it
    ran out since, or it was written around check_pair. One such certificate in the crt-list
    keeps HAProxy from starting for every app."""
    if not chain_pem or not key_pem or not_after is None:
        return "no certificate is stored"
    if not_after <= datetime.datetime.now(datetime.timezone.utc):
        return f"it expired on {not_after:%Y-%m-%d %H:%M} UTC"
    return _structure_problem(chain_pem, key_pem)


_PROBLEMS: dict[bytes, str] = {}  # SHA-256 of chain and key -> _check_structure's verdict
_PROBLEMS_KEPT = 4096


def _structure_problem(chain_pem: str, key_pem: str) -> str:
    """Remembered by digest (not by the PEM, up to 64 KiB each): every routing change renders every
    app's certificate, and a parse takes about a millisecond."""
    digest = hashlib.sha256(f"{chain_pem}\0{key_pem}".encode(errors="surrogatepass")).digest()
    if digest not in _PROBLEMS:
        if len(_PROBLEMS) >= _PROBLEMS_KEPT:
            _PROBLEMS.clear()
        try:
            with _refusing_odd_input():
                _check_structure(chain_pem, key_pem)
            _PROBLEMS[digest] = ""
        except InvalidCertificate as error:
            _PROBLEMS[digest] = str(error)
    return _PROBLEMS[digest]


def _check_structure(chain_pem: str, key_pem: str) -> None:
    """What HAProxy needs to load the pair, checked here so that it never reads one it refuses:
    the certificate field holds only CERTIFICATE blocks (1 to MAX_CHAIN), the key field exactly one
    unencrypted private key and nothing else, the key is the leaf's, RSA of MIN_RSA_BITS to MAX_RSA_BITS (e = 65537)
    or EC on P-256/P-384, at most MAX_PEM_BYTES in all."""
    if len(chain_pem.encode()) + len(key_pem.encode()) > MAX_PEM_BYTES:
        raise InvalidCertificate(f"certificate and key are at most {MAX_PEM_BYTES // 1024} KiB of PEM together")
    labels = _pem_labels(chain_pem, "certificate")
    if set(labels) != {"CERTIFICATE"}:
        wrong = sorted(set(labels) - {"CERTIFICATE"})
        raise InvalidCertificate(f"the certificate field holds only CERTIFICATE blocks (found {', '.join(wrong)}); "
                                 "the key goes in the key field")
    if len(labels) > MAX_CHAIN:
        raise InvalidCertificate(f"the chain has {len(labels)} certificates, at most {MAX_CHAIN}: the certificate and "
                                 "its intermediates only, without the root")
    key_labels = _pem_labels(key_pem, "key")
    if len(key_labels) != 1 or key_labels[0] not in PRIVATE_KEY_LABELS:
        raise InvalidCertificate(f"the key field holds exactly one private key (found {', '.join(key_labels)}); "
                                 "convert it with `openssl pkey -in KEY` if it has more")
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode())
    except (ValueError, UnsupportedAlgorithm) as error:
        raise InvalidCertificate(f"the certificate is not PEM ({error})") from None
    for position, certificate in enumerate(chain):  # before the key is loaded: a huge RSA key takes minutes
        _check_public_key(certificate.public_key(), "the certificate" if position == 0 else f"certificate {position + 1} of the chain")
        _check_signature_hash(certificate, position)
    try:  # the key's own consistency checks are skipped: it must match the leaf's public key, checked below
        key = serialization.load_pem_private_key(key_pem.encode(), password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise InvalidCertificate(f"the key is not an unencrypted PEM private key ({error})") from None
    public = chain[0].public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != public:
        raise InvalidCertificate("the key does not belong to the certificate")


def _check_public_key(key, whose: str) -> None:
    """RSA of MIN_RSA_BITS to MAX_RSA_BITS with the exponent 65537, or EC on P-256/P-384: what
    HAProxy's OpenSSL loads, and no key that takes seconds to use."""
    if isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise InvalidCertificate(f"{whose} has a key of RSA of {key.key_size} bits; {MIN_RSA_BITS} to "
                                     f"{MAX_RSA_BITS} bits are needed")
        if key.public_numbers().e != 65537:
            raise InvalidCertificate(f"{whose} has an RSA key with the exponent {key.public_numbers().e}; use 65537")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in EC_CURVES:
            raise InvalidCertificate(f"{whose} has a key on the curve {key.curve.name}; use P-256 or P-384")
    else:
        raise InvalidCertificate(f"{whose} has a key neither RSA nor EC: use RSA (2048 to {MAX_RSA_BITS} bits) "
                                 "or EC P-256/P-384")


def _check_signature_hash(certificate: x509.Certificate, position: int) -> None:
    """SHA-1 and MD5 signatures are refused by OpenSSL at security level 2."""
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if algorithm is not None and not isinstance(algorithm, ALLOWED_HASHES):
        whose = "the certificate" if position == 0 else f"certificate {position + 1} of the chain"
        raise InvalidCertificate(f"{whose} is signed with {algorithm.name}; SHA-256 or stronger is needed")


def _pem_labels(text: str, field_name: str) -> list[str]:
    """The labels of the PEM blocks in `text`, once it is known to hold nothing else: a stray
    BEGIN line or text between blocks is refused (cryptography skips it; HAProxy may not)."""
    blocks = list(PEM_BLOCK.finditer(text))
    rest = PEM_BLOCK.sub("", text)
    if rest.strip() or not blocks:
        what = "a stray or unfinished -----BEGIN/-----END line" if "-----" in rest else "text outside PEM blocks"
        raise InvalidCertificate(f"the {field_name} field holds {what if blocks or rest.strip() else 'nothing'}: "
                                 "paste only complete PEM blocks")
    for block in blocks:
        try:
            base64.b64decode("".join(block.group(2).split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidCertificate(f"a {block.group(1)} block of the {field_name} field is not base64") from None
    return [block.group(1) for block in blocks]


def bundle(chain_pem: str, key_pem: str) -> str:
    """Certificate chain and key in one file, as HAProxy reads it; no blank lines, which would
    end a runtime API payload early."""
    lines = [line for line in (chain_pem.strip() + "\n" + key_pem.strip()).splitlines() if line.strip()]
    return "\n".join(lines) + "\n"


DEFAULT_COMMON_NAME = "switchyard default certificate"


def is_default_bundle(pem: str) -> bool:
    """Whether `pem` is a default certificate Switchyard made (self-signed, its common name only):
    older versions let an app called "default" overwrite that file with its own."""
    try:
        certificate = _first_certificate(pem)
    except InvalidCertificate:
        return False
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEFAULT_COMMON_NAME)])
    return certificate.subject == name and certificate.issuer == name


def self_signed_bundle(common_name: str = DEFAULT_COMMON_NAME) -> str:
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


# HAProxy reads a runtime command, payload and all, into one buffer (tune.bufsize, 16 KiB by
# default); a longer one resets the connection and leaves an empty certificate store behind.
RUNTIME_COMMAND_MAX = 15 * 1024


def fits_runtime(certificate_file: Path, pem: str) -> bool:
    """Whether `pem` can be set through the runtime API in one command (else: a reload reads it)."""
    return len(_set_command(certificate_file, pem).encode()) <= RUNTIME_COMMAND_MAX


def same_crt_list_line(running: str | None, line: str) -> bool:
    """Whether HAProxy runs with `line`: `show ssl crt-list` cuts a line at its buffer (~16 KiB),
    so a longer one (installed by a reload: too long for the runtime API too) is compared by its
    beginning; else every change would reload again."""
    if running is None:
        return False
    return running == line or (len(running.encode()) >= RUNTIME_COMMAND_MAX and line.startswith(running))


def crt_list_line_fits_runtime(crt_list: Path, line: str) -> bool:
    """Whether a crt-list line (a file and its SNI filters) can be added in one runtime command."""
    return len(_add_crt_list_command(crt_list, line).encode()) <= RUNTIME_COMMAND_MAX


def store(socket_path: Path, certificate_file: Path, pem: str) -> None:
    """Serve `pem` from `certificate_file` in the running HAProxy: a transaction, so clients see
    the old certificate or the new one; aborted if HAProxy refuses it."""
    if str(certificate_file) not in loaded(socket_path):
        _expect(socket_path, f"new ssl cert {certificate_file}", "New empty certificate store")
    try:
        _expect(socket_path, _set_command(certificate_file, pem), "Transaction created")
        _expect(socket_path, f"commit ssl cert {certificate_file}", "Success!")
    except runtime_api.HAProxyCommandError:
        runtime_api.send(socket_path, f"abort ssl cert {certificate_file}")
        raise


def crt_list_entries(socket_path: Path, crt_list: Path) -> dict[str, str]:
    """Certificate file -> its crt-list line (file and SNI filters) in the running HAProxy."""
    answer = runtime_api.send(socket_path, f"show ssl crt-list {crt_list}")
    return {line.split()[0]: " ".join(line.split()) for line in answer.splitlines()
            if line.strip() and not line.startswith("#")}


def put_crt_list_entry(socket_path: Path, crt_list: Path, certificate_file: Path, line: str, present: bool) -> None:
    """The crt-list's line for a stored certificate: `line` (file and SNI filters) in place of
    the one it had, if `present`. Between the two commands its hosts get the default certificate."""
    if present:
        _expect(socket_path, f"del ssl crt-list {crt_list} {certificate_file}", "deleted in crtlist")
    _expect(socket_path, _add_crt_list_command(crt_list, line), "Success!")


def uninstall(socket_path: Path, crt_list: Path, certificate_file: Path) -> None:
    if str(certificate_file) not in loaded(socket_path):
        return
    if str(certificate_file) in crt_list_entries(socket_path, crt_list):
        _expect(socket_path, f"del ssl crt-list {crt_list} {certificate_file}", "deleted in crtlist")
    _expect(socket_path, f"del ssl cert {certificate_file}", "deleted")


def _add_crt_list_command(crt_list: Path, line: str) -> str:
    return f"add ssl crt-list {crt_list} <<\n{line}\n"


def _set_command(certificate_file: Path, pem: str) -> str:
    return f"set ssl cert {certificate_file} <<\n{pem.strip()}\n"


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
