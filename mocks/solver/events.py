"""The solver mock's own journal kinds (the core's are in `harness/journal/kinds.py`)."""

from harness.journal.kinds import declare

SOLUTION = declare("solution", ("service", "task", "n", "token", "key", "method", "outcome", "pingback", "solve_s"), (),
                   "the solver mock finished a task: outcome solved / unsolvable, the token it produced")
SOLUTION_USE = declare("solution_use", ("service", "task", "token", "ok", "error", "use"), (),
                       "the solver's stand-in site checked a token: ok, or why not; `use` counts the task's uses")
SOLUTION_SEEN = declare("solution_seen", ("service", "task", "token", "link", "ref", "method", "path", "where"),
                        ("rule",),
                        "a request the integration sent through a mitm link carried a solution (config "
                        "`use_on_mitm_links`): a use seen outside the stand-in site; `where`: query, form, json, "
                        "header or body; `ref`: the flow id (its `proxy.flow` `fid`); `rule`: a link rule faulted it")
TASK_ACCEPTED = declare("task_accepted", ("service", "task", "n", "planned", "solve_s", "profile", "pingback"),
                        ("rid",),
                        "the solver mock accepted a task and planned it: solved / unsolvable / stalled (never "
                        "finishes; solve_s null), the time profile that chose it; `rid`: the in.php request")
