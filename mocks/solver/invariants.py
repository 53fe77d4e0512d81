"""Solver invariants. Every solution the solver mock produced is classified the way Jepsen's
queue checker classifies items:

- ``ok``          used exactly once, and its pingback had been delivered;
- ``recovered``   used exactly once although its pingback never arrived (dropped, refused, 5xx,
                  timeout): the integration got it by fallback polling;
- ``lost``        never used within the deadline;
- ``duplicated``  used more than once;
- ``unexpected``  a token used that the solver never produced.

Facts come from the journal: ``solution`` events (solver mock), ``callback`` events for action
``pingback``, ``request`` events for ``res.php`` polls and for ``site.submit`` (the use), and
``solution_seen`` events (a use seen on a mitm link, config ``use_on_mitm_links``). A solution whose
``in.php`` answer never reached the integration (its ``response`` outcome not ``delivered``: the
client timed out, the answer was cut, mitmproxy kept it) is ``unclaimed``, not lost: the client never
had its task id. So is one whose answer left while the solver's link carried a fault (a Toxiproxy
latency past the client's timeout is invisible to the mock: TCP carries no tag), if the integration
never asked ``res.php`` about that id either.
A solution the solver *withheld* — none of the at least ``WITHHELD_ASKS`` polls the integration made
for it after it was produced got an answer with the token (a fault answered instead, or the answer
never reached the client), and no pingback of it was delivered — is ``withheld``, not lost: the integration asked
again and again and was never given it; giving such a task up at its own deadline is no bug. A
client that gives up after fewer refusals, or stops polling, still loses it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import Field

from harness.durations import Duration
from harness.verdict.base import Facts, Params, Result, brief, delivered, invariant, not_exercised, peak_rate
from harness.verdict.link_faults import link_fault_during
from harness.verdict.text_body import register_text_reader
from mocks.solver.events import TASK_ACCEPTED
from mocks.solver.observed import instead
from mocks.solver.plain_text import text_as_json
from mocks.solver.vocabulary import PINGBACK, POLL, SERVICE, SUBMIT, TASK_ID_PARAM, TASK_IDS_PARAM, TOKEN_PARAM, USE

register_text_reader(SERVICE, text_as_json)  # ``body.request`` matches plain-text replies too

MAYBE_RECEIVED = ("timeout", "error", "http_error")
LINK = f"integration->{SERVICE}"
WITHHELD_ASKS = 3   # polls of a task the faults kept unanswered that excuse its solution's loss
# a flow on a mitm link that never reached its upstream: the solution it carried was not used
NOT_FORWARDED = ("replaced", "hang", "reset", "upstream_error", "client_error")


@dataclass
class Task:
    task: str
    token: str | None
    produced_at: float
    outcome: str = "solved"          # solved | unsolvable
    claimed: bool = True             # its in.php answer (the task id) reached the integration
    unsure: bool = False             # delivered while its link carried a fault (a latency past the client's timeout?)
    uses: list[Any] = field(default_factory=list)
    unanswered: set[int] = field(default_factory=set)  # seq of uses whose answer never reached the client
    pingbacks: list[Any] = field(default_factory=list)
    polls: list[Any] = field(default_factory=list)

    @property
    def used_twice(self) -> bool:
        """Used again after a use whose answer the integration got (a retry after a lost answer is not)."""
        return any(u.seq not in self.unanswered for u in self.uses[:-1])

    @property
    def pingback_delivered(self) -> bool:
        return any(p.get("outcome") == "delivered" for p in self.pingbacks)

    @property
    def pingback_maybe_received(self) -> bool:
        """A pingback that timed out or failed on the way back may still have been received."""
        return any(p.get("outcome") in MAYBE_RECEIVED for p in self.pingbacks)

    def withheld(self, facts: Facts) -> bool:
        """Never given to the integration although it kept asking: it polled after the solution
        existed, none of those polls brought it the token, at least ``WITHHELD_ASKS`` of its polls
        of the task (before the solution too: a slow solver) were answered by a fault or never
        answered, and no pingback may have reached it. A client whose patience ran out under those
        faults did not lose the solution; one that stopped asking (a hung poll it never left, "not
        ready" read as a failure) did."""
        if self.pingback_delivered or self.pingback_maybe_received:
            return False
        after = [p for p in self.polls if p.t >= self.produced_at]
        if not after or any(self._given(facts.response_to(p)) for p in after):
            return False
        return sum(_refused(facts.response_to(p)) for p in self.polls) >= WITHHELD_ASKS

    def _given(self, response: Any) -> bool:
        """A res.php answer that reached the client with this solution's token in it."""
        return delivered(response) and bool(self.token) and self.token in str(response.get("body"))


def _refused(response: Any) -> bool:
    """A poll the client got no real answer to: a fault answered it, or no answer reached it."""
    return response is None or not delivered(response) or bool(response.get("rule"))


def _task_id(e: Any) -> str | None:
    for src in (e.data, e.get("params") or {}, e.get("match") or {}):
        for key in ("task", "id", "task_id"):
            if isinstance(src, dict) and src.get(key) not in (None, ""):
                return str(src[key])
    return None


def polled_ids(e: Any) -> list[str]:
    """The task ids one res.php request asked about (``id``, or ``ids`` for a bulk get)."""
    params = e.get("params") or {}
    return [str(t) for t in [params.get(TASK_ID_PARAM)] + str(params.get(TASK_IDS_PARAM) or "").split(",") if t]


class SolutionBook:
    """Per-task history from the journal."""

    def __init__(self, facts: Facts):
        self.facts = facts
        self.tasks: dict[str, Task] = {}
        for e in facts.of("solution", SERVICE):
            tid = _task_id(e)
            if tid is None:
                continue
            self.tasks[tid] = Task(tid, e.get("token"), e.t, e.get("outcome", "solved"))
        self.by_token = {t.token: t for t in self.tasks.values() if t.token}
        for tid, response in in_php_answers(facts).items():
            if tid in self.tasks:
                task = self.tasks[tid]
                task.claimed = delivered(response)
                task.unsure = task.claimed and link_fault_during(facts, response.t, response.t, LINK)
        for e in facts.of("callback", SERVICE, PINGBACK):
            tid = _task_id(e)
            if tid in self.tasks:
                self.tasks[tid].pingbacks.append(e)
        for e in facts.of("request", SERVICE, POLL):
            for tid in polled_ids(e):
                if tid in self.tasks:
                    self.tasks[tid].polls.append(e)
        self.unexpected: list[Any] = []
        for e in facts.of("request", SERVICE, USE):
            response = facts.response_to(e)
            if response is not None and response.get("rule"):
                continue  # answered by a fault rule: the site never took it, a retry is no second use
            token = (e.get("params") or {}).get(TOKEN_PARAM)
            if not token:
                continue  # no token, no use (the site answered 400; e.g. a body cut off at shutdown)
            task = self.by_token.get(token)
            if task is None:
                self.unexpected.append(e)
            else:
                task.uses.append(e)
                if response is not None and not delivered(response):
                    task.unanswered.add(e.seq)  # the integration never saw the answer: it may try again
        self._add_sightings(facts)

    def _add_sightings(self, facts: Facts) -> None:
        """Uses seen on mitm links: a flow that reached its upstream; unanswered if the client got nothing."""
        flows = {e.get("fid"): e for e in facts.of("proxy.flow")}
        for e in facts.of("solution_seen", SERVICE):
            task = self.by_token.get(e.get("token"))
            flow = flows.get(e.get("ref"))
            if task is None or (flow is not None and flow.get("outcome") in NOT_FORWARDED):
                continue
            task.uses.append(e)
            if flow is not None and flow.get("status") is None:
                task.unanswered.add(e.seq)
        for task in self.tasks.values():
            task.uses.sort(key=lambda u: u.seq)

    @cached_property
    def solved(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.outcome == "solved" and t.token]

    def classify(self, task: Task, deadline: float) -> str:
        uses = [u for u in task.uses if u.t - task.produced_at <= deadline]
        if not uses:
            if not task.claimed or (task.unsure and not task.polls):
                return "unclaimed"
            return "withheld" if task.withheld(self.facts) else "lost"
        if task.used_twice:
            return "duplicated"
        return "ok" if task.pingback_delivered else "recovered"

    def counts(self, deadline: float) -> dict[str, int]:
        c = Counter(self.classify(t, deadline) for t in self.solved)
        return {k: c.get(k, 0) for k in ("ok", "recovered", "lost", "duplicated")} | {
            "unexpected": len(self.unexpected), "produced": len(self.solved)} | (
            {k: c[k] for k in ("unclaimed", "withheld") if c[k]})

    def history(self, task: Task) -> list[dict[str, Any]]:
        rows = [{"t": round(task.produced_at, 3), "kind": "solution", "token": task.token}]
        rows += [brief(p, "outcome", "status", "copy", "rule", "url") for p in task.pingbacks]
        rows += [brief(p, "rid") for p in task.polls[:5]]
        rows += [brief(u, "rid", "peer", "link", "path", "where") for u in task.uses]
        return sorted(rows, key=lambda r: r["t"])


def _book(facts: Facts) -> SolutionBook:
    return facts.view("solver.solutions", SolutionBook)


class DeadlineParams(Params):
    deadline: Duration = Field(default=30.0, description="time from solution to its use")


def submit_answers(facts: Facts) -> dict[str, Any]:
    """Task id → the last ``response`` event of the in.php request that created it (``OK|id`` or
    ``{"status":1,"request":id}``; a later event for the same request says the answer never arrived)."""
    out = {}
    for e in facts.of("response", SERVICE, SUBMIT):
        body = e.get("body")
        tid = None
        if isinstance(body, dict) and body.get("status") == 1:
            tid = body.get("request")
        elif isinstance(body, str) and body.startswith("OK|"):
            tid = body[3:]
        if tid not in (None, ""):
            out[str(tid)] = facts.responses.get((e.service, e.get("rid")), e)
    return out


def in_php_answers(facts: Facts) -> dict[str, Any]:
    """Task id → the last ``response`` event of the in.php request that created it, also where that
    answer carried no id (cut off, never sent): ``task_accepted`` names the request (``rid``)."""
    out = submit_answers(facts)
    for e in facts.of("task_accepted", SERVICE):
        response = facts.responses.get((SERVICE, e.get("rid")))
        if response is not None and e.get("task") is not None:
            out[str(e["task"])] = response
    return out


def submitted_tasks(facts: Facts) -> dict[str, float]:
    """Task id → time of its in.php answer."""
    return {tid: e.t for tid, e in submit_answers(facts).items()}


def stalled_tasks(facts: Facts) -> dict[str, float]:
    """Task id → when the solver accepted it, for the tasks it will never finish (planned ``stalled``)."""
    return {str(e.get("task")): e.t for e in facts.of(TASK_ACCEPTED, SERVICE) if e.get("planned") == "stalled"}


def _all_used_or_late(facts: Facts, p: DeadlineParams) -> bool:
    """Settled when every submitted task has its outcome (however long solving takes: the deadline
    counts from the solution; a task the solver will never finish has none to wait for) and every
    solution was used — or its deadline has passed."""
    book = SolutionBook(facts)
    stalled = stalled_tasks(facts)
    if any(tid not in book.tasks and tid not in stalled for tid in submitted_tasks(facts)):
        return False
    return all(t.uses or not t.claimed or facts.now - t.produced_at > p.deadline for t in book.solved)


@invariant("no_lost_solutions", DeadlineParams, settled=_all_used_or_late)
def no_lost_solutions(facts: Facts, p: DeadlineParams) -> Result:
    """Every solution the solver produced was used by the integration within the deadline."""
    book = _book(facts)
    counts = book.counts(p.deadline)
    if not book.solved:
        return not_exercised("no_lost_solutions", "the solver produced no solution")
    if counts["produced"] == counts.get("unclaimed", 0) + counts.get("withheld", 0):
        return not_exercised("no_lost_solutions", f"none of the {counts['produced']} solutions could be judged "
                             "(their task id never reached the integration, or the solver withheld them)")
    lost = [t for t in book.solved if book.classify(t, p.deadline) == "lost"]
    evidence = [{"task": t.task, "history": book.history(t)} for t in lost]
    summary = (f"{counts['produced']} produced: {counts['ok']} ok, {counts['recovered']} recovered, "
               f"{counts['lost']} lost, {counts['duplicated']} duplicated, {counts['unexpected']} unexpected")
    if counts.get("unclaimed"):
        summary += (f"; {counts['unclaimed']} not judged (their in.php answer never reached the integration, "
                    "or crossed a faulty link and its id was never polled)")
    if counts.get("withheld"):
        summary += (f"; {counts['withheld']} not judged (withheld: faults answered {WITHHELD_ASKS} or more polls "
                    f"for each, and every poll after it was solved)")
    if lost:
        summary += f" — {instead(facts)}"
    return Result("no_lost_solutions", not lost, summary, evidence, counts)


@invariant("solutions_used_exactly_once", DeadlineParams, settled=_all_used_or_late)
def solutions_used_exactly_once(facts: Facts, p: DeadlineParams) -> Result:
    """No solution used twice and no unknown solution used."""
    book = _book(facts)
    counts = book.counts(p.deadline)
    dup = [t for t in book.solved if t.used_twice]
    evidence = [{"task": t.task, "uses": len(t.uses), "history": book.history(t)} for t in dup]
    evidence += [{"unexpected": True, **brief(e, "params", "rid")} for e in book.unexpected]
    if not book.solved and not book.unexpected:
        return not_exercised("solutions_used_exactly_once", "no solution was produced or used")
    summary = f"{len(dup)} used more than once, {len(book.unexpected)} unknown used, of {counts['produced']}"
    return Result("solutions_used_exactly_once", not evidence, summary, evidence, counts)


@invariant("fallback_polling_used", DeadlineParams, settled=_all_used_or_late)
def fallback_polling_used(facts: Facts, p: DeadlineParams) -> Result:
    """Every solution whose pingback never arrived was fetched by polling res.php and used."""
    book = _book(facts)
    undelivered = [t for t in book.solved if not t.pingback_delivered]
    if not undelivered:
        return not_exercised("fallback_polling_used", "every pingback was delivered")
    bad = []
    for t in undelivered:
        lost = book.classify(t, p.deadline) == "lost"
        if lost or (not t.polls and not t.pingback_maybe_received):
            bad.append({"task": t.task, "polled": len(t.polls), "history": book.history(t)})
    summary = f"{len(undelivered) - len(bad)} of {len(undelivered)} undelivered pingbacks recovered by polling"
    return Result("fallback_polling_used", not bad, summary, bad, {"undelivered": len(undelivered),
                                                                   "recovered": len(undelivered) - len(bad)})


class PollParams(Params):
    max_per_task: int | None = Field(default=None, ge=1, description="res.php polls for one task id")
    max_rate: float | None = Field(default=None, gt=0, description="res.php requests per second, any 1 s window")
    watch: Duration = Field(default=5.0, ge=0, description="how long the run keeps watching a task that ended "
                            "ERROR_CAPTCHA_UNSOLVABLE for polls (from its end or its last poll), so a client "
                            "that polls it for ever shows itself")


def _unsolvable_watched(facts: Facts, p: PollParams) -> bool:
    """Settled when every task that ended unsolvable, and every task the solver will never finish
    (stalled), has gone unpolled for ``watch`` — or was already polled more than ``max_per_task``
    times (the verdict is known)."""
    if p.max_per_task is None:
        return True
    # task id → when it ended (unsolvable) or was accepted (stalled): watched from then on
    watched = {t.task: t.produced_at for t in SolutionBook(facts).tasks.values() if t.outcome == "unsolvable"}
    watched.update(stalled_tasks(facts))
    polled: dict[str, list[float]] = {tid: [] for tid in watched}
    for e in facts.of("request", SERVICE, POLL):
        for tid in polled_ids(e):
            if tid in polled:
                polled[tid].append(e.t)
    return all(len(times) > p.max_per_task or facts.now - max([watched[tid], *times]) >= p.watch
               for tid, times in polled.items())


@invariant("poll_rate_bounded", PollParams, settled=_unsolvable_watched)
def poll_rate_bounded(facts: Facts, p: PollParams) -> Result:
    """The integration did not hammer res.php: per-task poll count and overall rate stay bounded."""
    polls = facts.of("request", SERVICE, POLL)
    # every task id asked about counts, finished or not: a task that never finishes (a stalled
    # solver) is where a poller without a deadline keeps asking
    per_task = Counter(tid for e in polls for tid in polled_ids(e))
    ended = {t.task: t.produced_at for t in _book(facts).tasks.values() if t.outcome == "unsolvable"}
    evidence = []
    if p.max_per_task is not None:
        for tid, n in per_task.items():
            if n > p.max_per_task:
                item: dict[str, Any] = {"task": tid, "polls": n, "max": p.max_per_task}
                if tid in ended:  # polled on after it ended ERROR_CAPTCHA_UNSOLVABLE
                    item["after_unsolvable"] = sum(1 for e in polls if tid in polled_ids(e) and e.t > ended[tid])
                evidence.append(item)
    peak = peak_rate([e.t for e in polls])
    if p.max_rate is not None and peak > p.max_rate:
        evidence.append({"peak_rate_per_s": peak, "max": p.max_rate})
    worst = max(per_task.values(), default=0)
    summary = f"{len(polls)} polls, peak {peak}/s, at most {worst} for one task"
    return Result("poll_rate_bounded", not evidence, summary, evidence,
                  {"polls": len(polls), "peak_rate": peak, "max_per_task_seen": worst})
