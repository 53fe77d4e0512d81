"""A planted bug for examples/twocaptcha_client, which itself stays unmodified: with VARIANT
``unsolvable_as_not_ready`` the 2captcha SDK's ``get_result`` reads an ``ERROR_CAPTCHA_UNSOLVABLE``
answer as "not ready yet", so the app polls a task that ended unsolvable on until its own deadline
(SOLVE_TIMEOUT) — the kind of wrapper a real integration writes around the SDK. Python imports this
file at start-up when its folder is on PYTHONPATH (tests/profile_points/twocaptcha-unsolvable-polled.yaml
puts it there)."""

import os

if os.environ.get("VARIANT") == "unsolvable_as_not_ready":
    import twocaptcha.api
    import twocaptcha.solver

    _get_result = twocaptcha.solver.TwoCaptcha.get_result

    def get_result(self, id_):
        try:
            return _get_result(self, id_)
        except (twocaptcha.solver.ApiException, twocaptcha.api.ApiException) as e:  # two unrelated classes
            if "ERROR_CAPTCHA_UNSOLVABLE" in str(e):
                raise twocaptcha.solver.NetworkException("not ready") from e
            raise

    twocaptcha.solver.TwoCaptcha.get_result = get_result
