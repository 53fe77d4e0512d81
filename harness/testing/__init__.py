"""Helpers behind the pytest plugin (``harness/pytest_plugin.py``), usable without pytest too.

``WorkerHost`` (the mocks of one pytest worker, reset between tests), ``HarnessFixture`` and the
per-service ``MockHandle`` classes (what the ``harness`` / ``captcha_mock`` / ``solver_mock`` /
``chat_mock`` fixtures return), ``WorkerLinks`` / ``LinkHandle`` (Toxiproxy links, optionally through
mitmproxy), ``ScenarioRunner`` / ``ScenarioOutcome`` (``run_scenario``) and the scenario collector.
Import from the submodules; this package imports nothing heavy. See ``docs/pytest.md``.
"""
