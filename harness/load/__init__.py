"""``harness load``: a scenario's traffic through locust while its timeline injects faults.

Two processes, two event loops that never share one:

- the *stage* (``harness.load.stage``, asyncio): the scenario runner without its traffic driver —
  mocks, journal, control API, proxies, redis, the target — plays the timeline from the moment
  locust starts the test and judges the journal when locust stops;
- locust (gevent, ``harness.load.locustfile``): user classes generated from the scenario's flows;
  every request is journaled as a ``driver`` event through the control API.
"""
