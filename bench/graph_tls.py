"""The fake Graph server (tests/fake_graph.py) over HTTPS, for the benchmarks' jobs worker.

Every benchmark gunicorn runs with production settings (`APP_ENV=production`), where the app
sends the access token to https hosts only (`config.media_hosts` refuses an `http://` entry).
So the media benchmarks serve the tests' fake Graph over TLS: a throw-away CA and a certificate
for 127.0.0.1, made with `cryptography`, trusted by the gunicorn and the jobs worker it starts
through `REQUESTS_CA_BUNDLE` (requests reads it for every call of the app's Graph client).
The server's answers are the fake's own, with its download URLs on https.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fake_graph import ACCESS_TOKEN, API_VERSION, MEDIA_DOWNLOAD, FakeGraph


@dataclass(frozen=True)
class Certificates:
    ca: Path  # what clients trust (REQUESTS_CA_BUNDLE)
    cert: Path  # the server's chain
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """A CA valid for a day and a server certificate for 127.0.0.1 signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench fake Graph CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    found = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    found.ca.write_bytes(ca.public_bytes(pem))
    found.cert.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    found.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return found


class _TlsServer(ThreadingHTTPServer):
    """Accepts in the serving thread, shakes hands in the request's own thread."""

    daemon_threads = True
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


@dataclass
class TlsFakeGraph(FakeGraph):
    """tests/fake_graph.FakeGraph on https://127.0.0.1:<port>, its download URLs on https too."""

    certificates: Certificates | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()  # the plain server: stopped, and its handler reused over TLS
        assert self.certificates is not None
        plain = self.server
        plain.shutdown()
        plain.server_close()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificates.cert, self.certificates.key)
        server = _TlsServer(("127.0.0.1", 0), plain.RequestHandlerClass)
        server.context = context
        self.server = server
        self.port = server.server_address[1]
        self.base_url = f"https://127.0.0.1:{self.port}/{API_VERSION}"
        threading.Thread(target=server.serve_forever, name="fake-graph-tls", daemon=True).start()

    @staticmethod
    def _reply(handler: Any, status: int, body: Any) -> None:
        if isinstance(body, dict) and isinstance(body.get("url"), str):
            body = {**body, "url": body["url"].replace("http://", "https://", 1)}
        FakeGraph._reply(handler, status, body)

    def downloads(self) -> int:
        """Media downloads served so far (the second step of Graph's two-step download)."""
        with self._lock:
            recorded = list(self.requests)
        return sum(1 for r in recorded if self._kind(r.method, r.path, r.body) == MEDIA_DOWNLOAD)

    def forget_requests(self) -> None:
        with self._lock:
            self.requests.clear()


def graph_env(graph: TlsFakeGraph, storage_path: Path, phone_number_id: str) -> dict[str, str]:
    """The environment of a gunicorn whose jobs worker fetches media from `graph` into `storage_path`."""
    assert graph.certificates is not None
    return {
        "WHATSAPP_GRAPH_URL": graph.base_url,
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": phone_number_id,
        "WHATSAPP_MEDIA_HOSTS": f"127.0.0.1:{graph.port}",  # https only, as in production
        "REQUESTS_CA_BUNDLE": str(graph.certificates.ca),
        "MEDIA_STORAGE_PATH": str(storage_path),
        "JOBS_IN_WEB": "true",  # the product's default (gunicorn.conf.py starts the worker)
    }
