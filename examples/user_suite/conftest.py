"""The fixtures a user writes once: start *their* integration (here the reference captcha backend,
examples/captcha_backend/app.py) against the harness's mocks. The harness fixtures (``captcha_mock``,
``link``, ``run_scenario`` …) come from the chaos-harness pytest plugin, installed with the package.

Run: ``pytest examples/user_suite`` (add ``-n 2`` for xdist). ``VARIANT=fail_closed pytest
examples/user_suite`` runs the same suite against a buggy variant of the backend: the fault tests fail.
"""

from __future__ import annotations

import os

import pytest

from harness.testing.apps import start_app

APP = os.path.join(os.path.dirname(__file__), "..", "captcha_backend", "app.py")


def backend_env(harness_host, endpoint: str) -> dict[str, str]:
    """The backend's settings, pointing it at ``endpoint`` (host:port) with the mock's credentials."""
    cfg = harness_host.config("captcha")
    secret_id, secret_key = next(iter(cfg["secret_keys"].items()))
    app_id, app_key = next(iter(cfg["apps"].items()))
    return {"CAPTCHA_ENDPOINT": endpoint, "TENCENT_SECRET_ID": secret_id, "TENCENT_SECRET_KEY": secret_key,
            "CAPTCHA_APP_ID": app_id, "CAPTCHA_APP_SECRET_KEY": app_key, "VERIFY_TIMEOUT": "1",
            "VARIANT": os.environ.get("VARIANT", "correct")}


@pytest.fixture(scope="session")
def backend(harness_host):
    """The backend talking to the captcha mock directly (one per xdist worker)."""
    endpoint = harness_host.urls["captcha"].split("://", 1)[1]
    with start_app(["python", APP], env=backend_env(harness_host, endpoint), name="backend") as app:
        yield app.url


@pytest.fixture(scope="session")
def backend_behind_link(harness_host, harness_links):
    """The backend talking to the captcha mock through a Toxiproxy link (network faults)."""
    link = harness_links.get("integration->captcha")
    with start_app(["python", APP], env=backend_env(harness_host, link.listen), name="backend-link") as app:
        yield app.url
