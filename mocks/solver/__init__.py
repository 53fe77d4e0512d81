"""CaptchaAI / 2captcha-compatible solver mock (``in.php``, ``res.php``, pingbacks, protected site)."""

from mocks.registry import lazy_exports

__getattr__ = lazy_exports({"DEFAULT_KEY": "mocks.solver.config", "SECOND_KEY": "mocks.solver.config",
                            "SolverConfig": "mocks.solver.config", "SolverMock": "mocks.solver.service"})
__all__ = ["DEFAULT_KEY", "SECOND_KEY", "SolverConfig", "SolverMock"]
