from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import threading
from pathlib import Path

import pytest
import requests
from cryptography import x509

from dynasync.emulator.tls import (
    client_ssl_context,
    ensure_ca,
    requests_session_trusting,
    ssl_context_for_server,
)


def test_creates_ca_and_server_cert_with_loopback_names(tmp_path: Path) -> None:
    material = ensure_ca(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(material.ca_cert_path.read_bytes())
    server = x509.load_pem_x509_certificate(material.server_cert_path.read_bytes())

    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert lifetime >= dt.timedelta(days=3650)
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert material.server_key_path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tls" / "ca-key.pem").stat().st_mode & 0o777 == 0o600


def test_reuses_ca_and_server_cert_on_later_runs(tmp_path: Path) -> None:
    first = ensure_ca(tmp_path)
    ca_bytes = first.ca_cert_path.read_bytes()
    server_bytes = first.server_cert_path.read_bytes()

    second = ensure_ca(tmp_path)

    assert second == first
    assert second.ca_cert_path.read_bytes() == ca_bytes
    assert second.server_cert_path.read_bytes() == server_bytes


def test_reissues_server_cert_for_new_hosts_but_keeps_ca(tmp_path: Path) -> None:
    first = ensure_ca(tmp_path)
    ca_bytes = first.ca_cert_path.read_bytes()

    again = ensure_ca(tmp_path, hosts=("localhost", "127.0.0.1", "::1", "emulator.test"))

    assert again.ca_cert_path.read_bytes() == ca_bytes
    server = x509.load_pem_x509_certificate(again.server_cert_path.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "emulator.test" in san.get_values_for_type(x509.DNSName)


def test_replaces_a_corrupt_ca(tmp_path: Path) -> None:
    first = ensure_ca(tmp_path)
    first.ca_cert_path.write_text("garbage")

    second = ensure_ca(tmp_path)

    ca = x509.load_pem_x509_certificate(second.ca_cert_path.read_bytes())
    server = x509.load_pem_x509_certificate(second.server_cert_path.read_bytes())
    server.verify_directly_issued_by(ca)


def test_renews_a_server_cert_about_to_expire(tmp_path: Path) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=390)
    first = ensure_ca(tmp_path, now=old)
    stale = first.server_cert_path.read_bytes()

    ensure_ca(tmp_path)

    assert first.server_cert_path.read_bytes() != stale


def _https_echo(material_ctx: ssl.SSLContext) -> tuple[int, threading.Thread, socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with material_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(4096)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except OSError:  # the client rejected our certificate: expected in the negative case
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, listener


def test_server_context_is_trusted_by_client_context(tmp_path: Path) -> None:
    material = ensure_ca(tmp_path)
    port, thread, listener = _https_echo(ssl_context_for_server(material))
    try:
        context = client_ssl_context(material.ca_cert_path)
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert tls.recv(4096).endswith(b"ok")
    finally:
        thread.join(5)
        listener.close()


def test_requests_session_trusts_ca_even_with_requests_ca_bundle_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine (like many) exports REQUESTS_CA_BUNDLE; it overrides session.verify unless trust_env is off.
    system_bundle = "/etc/ssl/certs/ca-certificates.crt"
    if os.environ.get("REQUESTS_CA_BUNDLE") is None:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", system_bundle)
    material = ensure_ca(tmp_path)

    port, thread, listener = _https_echo(ssl_context_for_server(material))
    plain = requests.Session()
    plain.verify = str(material.ca_cert_path)
    try:
        with pytest.raises(requests.exceptions.SSLError):
            plain.get(f"https://127.0.0.1:{port}/", timeout=5)
    finally:
        thread.join(5)
        listener.close()
        plain.close()

    port, thread, listener = _https_echo(ssl_context_for_server(material))
    session = requests_session_trusting(material.ca_cert_path)
    try:
        response = session.get(f"https://127.0.0.1:{port}/", timeout=5)
        assert response.text == "ok"
    finally:
        thread.join(5)
        listener.close()
        session.close()
