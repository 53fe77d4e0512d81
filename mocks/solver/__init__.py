"""CaptchaAI / 2captcha-compatible solver mock (``in.php``, ``res.php``, pingbacks, protected site)."""

from mocks.solver.config import DEFAULT_KEY, SECOND_KEY, SolverConfig
from mocks.solver.service import SolverMock

__all__ = ["DEFAULT_KEY", "SECOND_KEY", "SolverConfig", "SolverMock"]
