"""pytest plugin (entry point ``pytest11`` ``chaos_harness``): fixtures for the mocks, links and the
scenario runner, and scenario YAML files as test items. User guide: ``docs/pytest.md``.

Scopes: the mocks run once per pytest worker (``harness_host``, session scope — under xdist every
worker is its own session, so ports, Toxiproxy proxy names, journals and report folders never
collide) and are reset before every test that uses them (``harness``: rules, state, config, links).

This module is imported by every pytest run in the environment: it imports nothing heavy at the top.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import pytest

from mocks.registry import SERVICES


# --- options and collection ------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos-harness", "chaos-harness (mocks, links, scenarios)")
    group.addoption("--scenarios", dest="harness_scenarios", action="append", default=[], metavar="DIR",
                    help="collect the scenario files under DIR as tests (repeatable). Without other paths "
                         "on the command line only the scenarios run (testpaths are not used)")
    group.addoption("--harness-variant", dest="harness_variant", action="append", default=[],
                    metavar="NAME[,NAME]", help="run scenarios against these target variants "
                    "(one test per variant when several; \"\" is the empty variant, not the default)")
    group.addoption("--harness-profile", dest="harness_profile", default=None, metavar="PROFILE.yaml",
                    help="run collected scenario files against this target profile (docs/profiles.md)")
    group.addoption("--harness-time-scale", dest="harness_time_scale", type=float, default=None,
                    metavar="X", help="multiply scenario durations (the target must read HARNESS_TIME_SCALE)")
    group.addoption("--harness-seed", dest="harness_seed", type=int, default=None, metavar="N",
                    help="seed for the fixture mocks and override for every scenario's seed")
    group.addoption("--harness-report-dir", dest="harness_report_dir", default=None, metavar="DIR",
                    help="where scenario run reports go (default: <pytest basetemp>/harness-reports)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: a scenario file collected by the chaos-harness plugin")
    dirs = config.getoption("harness_scenarios", default=None)
    if dirs:
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            config.args = [*config.args, *dirs]
        else:  # no paths given: run the scenarios, not testpaths
            config.args = list(dirs)


def pytest_collect_file(file_path: Any, parent: pytest.Collector) -> Any:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    from harness.testing.collect import collect_file
    return collect_file(file_path, parent)


# --- the mocks -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def harness_seed(pytestconfig: pytest.Config) -> int:
    """Seed of the fixture mocks (``--harness-seed``, default 0)."""
    seed = pytestconfig.getoption("harness_seed")
    return 0 if seed is None else seed


@pytest.fixture(scope="session")
def harness_services() -> dict[str, dict[str, Any]] | None:
    """Which mocks run and their start config; override in your conftest.py, e.g.
    ``return {"captcha": {"apps": {190000001: "my-app-secret"}}}``. None = every mock, defaults."""
    return None


@pytest.fixture(scope="session")
def harness_tls() -> list[str]:
    """Mocks served over https with a local CA; override in your conftest.py, e.g. ``return ["solver"]``
    (``harness.ca_file`` is the CA; ``harness.ca_env`` the variables that make a client trust it)."""
    return []


@pytest.fixture(scope="session")
def harness_host(tmp_path_factory: pytest.TempPathFactory, harness_seed: int,
                 harness_services: dict[str, dict[str, Any]] | None, harness_tls: list[str],
                 pytestconfig: pytest.Config) -> Iterator[Any]:
    """The mocks and the control API of this worker (a ``WorkerHost``: ``.urls``, ``.host`` = the
    ``MockHost``, ``.thread`` = its ``HostThread``, ``.reset()``). Started once per worker."""
    from harness.testing.host import WorkerHost
    run_dir = str(tmp_path_factory.mktemp("harness-host"))
    time_scale = pytestconfig.getoption("harness_time_scale") or 1.0
    with WorkerHost(run_dir, seed=harness_seed, services=harness_services, time_scale=time_scale,
                    tls=list(harness_tls or [])) as wh:
        yield wh


@pytest.fixture()
def harness(harness_host: Any) -> Any:
    """This test's view of the worker's mocks, reset before the test: ``.journal`` (this test's
    events), ``.add_rule`` / ``.fault``, ``.events(kind, service, …)``, ``.wait_for``, ``.mock(name)``."""
    from harness.testing.mocks import HarnessFixture
    return HarnessFixture(harness_host, harness_host.reset())


def _mock(harness: Any, name: str) -> Any:
    if name not in harness.wh.services:
        pytest.fail(f"the {name} mock is not running on this worker (harness_services: "
                    f"{', '.join(harness.wh.services)})", pytrace=False)
    return harness.mock(name)


def _mock_fixture(name: str, doc: str) -> Any:
    def fixture(harness: Any) -> Any:
        return _mock(harness, name)
    fixture.__name__ = f"{name}_mock"
    fixture.__doc__ = doc or f"The {name} mock: ``.url``, ``.add_rule`` / ``.fault``, ``.journal`` …"
    return pytest.fixture(name=fixture.__name__)(fixture)


# one ``<service>_mock`` fixture per registered service (``captcha_mock``, ``solver_mock`` …)
for _name, _spec in SERVICES.items():
    globals()[f"{_name}_mock"] = _mock_fixture(_name, _spec.fixture_doc)


# --- links -----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """This worker's Toxiproxy server (``ToxiproxyServer``; ``TOXIPROXY_URL`` uses a running one)."""
    from harness.proxy.toxiproxy_client import ToxiproxyError
    from harness.proxy.toxiproxy_server import ToxiproxyNotFound, ToxiproxyServer
    log = str(tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log")
    server = ToxiproxyServer(log_path=log)
    try:
        server.start()
    except (ToxiproxyNotFound, ToxiproxyError) as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def harness_links(harness_host: Any, toxiproxy: Any) -> Iterator[Any]:
    """This worker's links (``WorkerLinks``): ``.get(name, upstream=None, mitm=False)`` — use it from
    session-scoped fixtures (e.g. to start your integration against a link URL once)."""
    from harness.testing.worker_links import WorkerLinks
    links = WorkerLinks(harness_host, toxiproxy)
    try:
        yield links
    finally:
        links.stop()


@pytest.fixture()
def link(harness: Any, harness_links: Any) -> Callable[..., Any]:
    """``link("integration->captcha")`` → a Toxiproxy link in front of the mock (``.url``, ``.add_toxic``,
    ``.toxic(...)``, ``.down()`` / ``.up()`` / ``.cut()``); ``upstream=`` for any host:port,
    ``mitm=True`` to add mitmproxy (HTTP faults). Toxics and cuts end with the test."""
    return harness_links.get


# --- scenarios -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def harness_report_dir(pytestconfig: pytest.Config) -> str:
    """Where scenario reports of this worker go."""
    from harness.testing.collect import report_dir
    path = report_dir(pytestconfig)
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture()
def run_scenario(request: pytest.FixtureRequest, harness_report_dir: str) -> Callable[..., Any]:
    """``run_scenario(path_or_dict, target=None, variant=None, seed=None, time_scale=None)`` → a
    ``ScenarioOutcome`` (``.ok``, ``.verdict``, ``.failed``, ``.report``, ``.journal``, ``.explain()``).
    Relative paths and a dict's ``extends`` resolve against the test file's folder (or the working
    directory); target commands run in the rootdir unless the scenario sets ``target.cwd``."""
    from harness.testing.scenarios import ScenarioRunner
    config = request.config
    runner = ScenarioRunner(harness_report_dir, seed=config.getoption("harness_seed"),
                            time_scale=config.getoption("harness_time_scale") or 1.0,
                            cwd=str(config.rootpath), base_dir=str(request.path.parent))
    return runner.run


def pytest_unconfigure(config: pytest.Config) -> None:
    # an xdist worker leaves through os._exit (no atexit): remove its empty session cgroup now. Not
    # stop_all: pytester's in-process sessions end here too, inside the outer session.
    from harness.supervisor import release_session_cgroup
    release_session_cgroup()
