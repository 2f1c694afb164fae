"""The emulator's TLS material: a persistent local CA and a loopback server certificate signed by it.

MSAL and azure-identity refuse ``http://`` authorities, so the emulator always serves HTTPS. The CA is created
once per directory and reused, so a user trusts it once.

Trusting the CA from ``requests`` (which MSAL uses) needs care: when ``REQUESTS_CA_BUNDLE`` (or
``CURL_CA_BUNDLE``) is set, ``requests`` replaces a session's ``verify=`` with that bundle, because environment
settings override session settings. The reliable recipe is a session that ignores the environment::

    session = requests.Session()
    session.trust_env = False      # ignore REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE / proxies from the environment
    session.verify = str(material.ca_cert_path)
    msal.ConfidentialClientApplication(..., http_client=session)

:func:`requests_session_trusting` builds exactly that session. Use it only for an emulator org; real Microsoft
hosts keep the system trust store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEFAULT_HOSTS",
    "TlsMaterial",
    "client_ssl_context",
    "ensure_ca",
    "requests_session_trusting",
    "ssl_context_for_server",
]

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
_CA_NAME = "dynasync local emulator CA"
_CA_DAYS = 3650
_SERVER_DAYS = 397  # browsers reject longer-lived server certificates
_RENEW_BEFORE = dt.timedelta(days=30)

_CA_CERT = "ca.pem"
_CA_KEY = "ca-key.pem"
_SERVER_CERT = "server.pem"
_SERVER_KEY = "server-key.pem"


@dataclass(frozen=True)
class TlsMaterial:
    """Paths of the PEM files the emulator serves with and clients trust.

    Attributes:
        ca_cert_path: The CA certificate; give it to clients as their trust anchor.
        server_cert_path: The server certificate (signed by the CA) for the loopback names.
        server_key_path: The server's private key (file mode 0600).
    """

    ca_cert_path: Path
    server_cert_path: Path
    server_key_path: Path


def ensure_ca(
    directory: Path | str,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    now: dt.datetime | None = None,
) -> TlsMaterial:
    """Create (or reuse) the CA in ``directory`` and make sure a valid server certificate for ``hosts`` exists.

    The CA (10 years) is reused across runs; it is only replaced when missing, unreadable or about to expire.
    The server certificate is re-issued when missing, not signed by the current CA, not covering ``hosts`` or
    about to expire.

    Args:
        directory: Where the PEM files live; created with mode 0700 when missing.
        hosts: DNS names and IP addresses the server certificate must cover.
        now: The time to issue certificates at (defaults to the wall clock; TLS peers check real time).

    Returns:
        The paths of the CA certificate, server certificate and server key.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    moment = now or dt.datetime.now(dt.UTC)
    with _directory_lock(root):
        ca_cert, ca_key = _load_or_create_ca(root, moment)
        _ensure_server_cert(root, ca_cert, ca_key, tuple(hosts), moment)
    return TlsMaterial(root / _CA_CERT, root / _SERVER_CERT, root / _SERVER_KEY)


def ssl_context_for_server(material: TlsMaterial) -> ssl.SSLContext:
    """Return a server-side SSL context presenting the emulator's certificate (TLS 1.2+)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(material.server_cert_path), str(material.server_key_path))
    return context


def client_ssl_context(ca_path: Path | str) -> ssl.SSLContext:
    """Return a client SSL context that trusts only ``ca_path`` (for httpx: ``httpx.Client(verify=ctx)``)."""
    return ssl.create_default_context(cafile=str(ca_path))


def requests_session_trusting(ca_path: Path | str) -> requests.Session:
    """Return a ``requests.Session`` that trusts ``ca_path`` even when ``REQUESTS_CA_BUNDLE`` is set.

    ``trust_env`` is turned off because ``requests`` otherwise lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``
    override ``session.verify`` (and would also apply proxy variables to loopback calls). Pass the session to
    MSAL as ``http_client=``.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_path)
    return session


@contextlib.contextmanager
def _directory_lock(root: Path) -> Iterator[None]:
    """Serialise concurrent ``ensure_ca`` calls (two emulators starting at once) on one directory."""
    lock_path = root / ".lock"
    with open(lock_path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; concurrent first runs are unlikely there
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _load_or_create_ca(
    root: Path, moment: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    loaded = _try_load_pair(root / _CA_CERT, root / _CA_KEY)
    if loaded is not None:
        cert, key = loaded
        if cert.not_valid_after_utc - _RENEW_BEFORE > moment and _is_ca(cert):
            return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _CA_NAME)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - dt.timedelta(days=1))
        .not_valid_after(moment + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(root / _CA_KEY, _key_pem(key))
    _write_public(root / _CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
    # A new CA invalidates any server certificate signed by the old one.
    (root / _SERVER_CERT).unlink(missing_ok=True)
    return cert, key


def _ensure_server_cert(
    root: Path,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: tuple[str, ...],
    moment: dt.datetime,
) -> None:
    loaded = _try_load_pair(root / _SERVER_CERT, root / _SERVER_KEY)
    if loaded is not None and _server_cert_ok(loaded[0], ca_cert, hosts, moment):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - dt.timedelta(days=1))
        .not_valid_after(min(moment + dt.timedelta(days=_SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(root / _SERVER_KEY, _key_pem(key))
    _write_public(root / _SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM))


def _server_cert_ok(
    cert: x509.Certificate, ca_cert: x509.Certificate, hosts: tuple[str, ...], moment: dt.datetime
) -> bool:
    if cert.issuer != ca_cert.subject or cert.not_valid_after_utc - _RENEW_BEFORE <= moment:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    covered = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    covered.update(san.get_values_for_type(x509.DNSName))
    wanted = set()
    for host in hosts:
        try:
            wanted.add(str(ipaddress.ip_address(host)))
        except ValueError:
            wanted.add(host)
    return wanted <= covered


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _try_load_pair(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """Load a certificate and its EC key, or None when either is missing, unreadable or they do not match."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        return None
    return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    _atomic_write(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    _atomic_write(path, data, 0o644)


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file and rename, so a reader never sees half a PEM file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
