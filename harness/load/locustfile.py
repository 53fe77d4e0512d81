"""The locustfile ``harness load`` runs: user classes from the scenario named in
``HARNESS_LOAD_OPTIONS`` and the hooks that tie locust's test to the stage process."""

from locust import events

from harness.load.session import LoadSession

SESSION = LoadSession.from_env()
SESSION.install(events)
globals().update(SESSION.user_classes)  # locust picks up the User classes of this module
