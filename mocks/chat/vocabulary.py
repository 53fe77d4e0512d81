"""Names the chat mock journals and the chat invariants read: one spelling for both sides."""

SERVICE = "chat"   # the service's name: journal ``service``, rule ``match.service``, links, fixtures

OVERLIMIT_ALARM = "Alert.RequestOverLimit"   # webhook command: a REST command went over its rate limit
ALARM_SERVICE, ALARM_COMMAND, ALARM_LIMIT = "ServiceName", "Command", "Limit"   # fields of its body

# webhook forgeries the mock can apply (rule ``effect.callback``)
FORGERIES = ("wrong_sdkappid", "bad_sign", "missing_sign", "stale_time")


def rest_action(service_name: str, command: str) -> str:
    """The action of a REST request ``/v4/<servicename>/<command>``."""
    return f"{service_name}/{command}"
