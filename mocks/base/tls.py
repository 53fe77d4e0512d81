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


def public_and_local_bundle(ca_path: str, out_path: str) -> str:
    """A CA file trusting the public roots (certifi) and the local CA: for variables such as
    ``REQUESTS_CA_BUNDLE`` that replace the default roots, so real https services still verify."""
    import certifi
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    with open(out_path, "wb") as out:
        for path in (certifi.where(), ca_path):
            with open(path, "rb") as f:
                out.write(f.read().rstrip(b"\n") + b"\n")
    return out_path


def client_env(ca_path: str) -> dict[str, str]:
    """What a target process needs to trust the local CA, whatever its language: Python (requests,
    ssl, httpx), curl and OpenSSL through a bundle with the public roots; Node.js adds the CA."""
    bundle = public_and_local_bundle(ca_path, os.path.join(os.path.dirname(ca_path), "bundle.pem"))
    return {"SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle, "CURL_CA_BUNDLE": bundle,
            "NODE_EXTRA_CA_CERTS": ca_path}
