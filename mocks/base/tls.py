"""Local TLS material: a throw-away CA (trustme) and a server certificate for 127.0.0.1/localhost.

Clients that insist on https (``2captcha-python``) trust the mock through
``REQUESTS_CA_BUNDLE=<ca path>``; the host exposes the path as ``tls_ca`` in the ready line and
in ``GET {control}/health``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
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


TRUSTSTORE_PASSWORD = "changeit"


def java_truststore(ca_path: str, out_path: str) -> str | None:
    """A PKCS#12 trust store for Java: the JDK's own roots plus the local CA (``keytool``, next to
    the ``java`` on PATH). The JDK's roots are copied once per JDK into the user's cache; adding the
    CA is one ``keytool`` call. None where there is no JDK."""
    keytool = shutil.which("keytool")
    if keytool is None:
        return None
    home = os.path.dirname(os.path.dirname(os.path.realpath(keytool)))
    cacerts = os.path.join(home, "lib", "security", "cacerts")
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "chaos-harness")
    roots = os.path.join(cache, f"jdk-roots-{hashlib.sha256(os.path.realpath(cacerts).encode()).hexdigest()[:12]}.p12")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "timeout": 60}
    if not os.path.exists(roots) and os.path.exists(cacerts):
        os.makedirs(cache, exist_ok=True)
        partial = f"{roots}.{os.getpid()}"
        subprocess.run([keytool, "-importkeystore", "-noprompt", "-srckeystore", cacerts, "-srcstorepass",
                        TRUSTSTORE_PASSWORD, "-destkeystore", partial, "-deststoretype", "PKCS12",
                        "-deststorepass", TRUSTSTORE_PASSWORD], check=True, **quiet)
        os.replace(partial, roots)  # whole or not at all: another process may be making it too
    if os.path.exists(roots):
        shutil.copyfile(roots, out_path)
    subprocess.run([keytool, "-importcert", "-noprompt", "-alias", "chaos-harness-local-ca", "-file", ca_path,
                    "-keystore", out_path, "-storetype", "PKCS12", "-storepass", TRUSTSTORE_PASSWORD],
                   check=True, **quiet)
    return out_path


def client_env(ca_path: str) -> dict[str, str]:
    """What a target process needs to trust the local CA, whatever its language: Python (requests,
    ssl, httpx), curl and OpenSSL through a bundle with the public roots; Node.js adds the CA; Java
    (``JAVA_TOOL_OPTIONS``, read by every JVM) a trust store of the JDK's roots plus the CA."""
    directory = os.path.dirname(ca_path)
    bundle = public_and_local_bundle(ca_path, os.path.join(directory, "bundle.pem"))
    env = {"SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle, "CURL_CA_BUNDLE": bundle,
           "NODE_EXTRA_CA_CERTS": ca_path}
    store = os.path.join(directory, "truststore.p12")
    if os.path.exists(store) or java_truststore(ca_path, store):
        options = (f"-Djavax.net.ssl.trustStore={store} -Djavax.net.ssl.trustStoreType=PKCS12 "
                   f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}")
        env["JAVA_TOOL_OPTIONS"] = " ".join(filter(None, [os.environ.get("JAVA_TOOL_OPTIONS"), options]))
    return env
