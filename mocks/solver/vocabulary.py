"""Names the solver mock journals and the solver invariants read: one spelling for both sides."""

SERVICE = "solver"   # the service's name: journal ``service``, rule ``match.service``, links, fixtures

SUBMIT = "in.php"        # the integration submits a task
POLL = "res.php"         # the integration polls for its answer
USE = "site.submit"      # the integration uses a solution at the protected site
PINGBACK = "pingback"    # callback action: the solver delivers an answer to the pingback URL
NOT_FOUND = "not_found"  # a request to a path the service does not serve
# every action its requests and callbacks are journaled with (rule ``match.action`` is checked against these)
ACTIONS = (SUBMIT, POLL, USE, PINGBACK, NOT_FOUND)
PATHS = {"/in.php": SUBMIT, "/res.php": POLL, "/site/submit": USE}  # request path → action

TASK_ID_PARAM = "id"     # res.php: one task id
TASK_IDS_PARAM = "ids"   # res.php: comma-separated task ids
TOKEN_PARAM = "token"    # site.submit: the solution being used
SENT_FIELDS = "sent_fields"  # site.submit with renamed fields: the names the client sent, comma-separated
