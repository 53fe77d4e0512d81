"""Local TLS material: a throw-away CA (trustme) and a server certificate for 127.0.0.1/localhost.

Clients that insist on https (``2captcha-python``) trust the mock through
``REQUESTS_CA_BUNDLE=<ca path>``; the host exposes the path as ``tls_ca`` in the ready line and
in ``GET {control}/health``.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

import trustme


@dataclass
class TlsMaterial:
    ca_path: str
    cert_path: str

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_path)


def make_tls(directory: str) -> TlsMaterial:
    os.makedirs(directory, exist_ok=True)
    ca = trustme.CA(organization_name="chaos-harness local CA")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca_path = os.path.join(directory, "ca.pem")
    cert_path = os.path.join(directory, "server.pem")
    ca.cert_pem.write_to_path(ca_path)
    cert.private_key_and_cert_chain_pem.write_to_path(cert_path)
    return TlsMaterial(ca_path, cert_path)
