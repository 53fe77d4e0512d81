"""What the journal shows where a use of a solution was expected and none was found: the site's
answers (by status and reason), requests to paths the solver mock does not serve, and the flows on
mitm links that carried no solution — so "6 lost" comes with "the site answered 400 missing token to
6 submits (fields sent: solution, task_id)"."""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.verdict.base import Facts
from mocks.solver.vocabulary import NOT_FOUND, SENT_FIELDS, SERVICE, TOKEN_PARAM, USE

SHOWN = 3  # groups named per sentence


def _answer(response: Any) -> str:
    if response is None:
        return "no answer"
    if response.get("status") is None:
        return f"no answer ({response.get('outcome')})"
    body = response.get("body")
    reason = body.get("error") if isinstance(body, dict) else None
    return f"{response.get('status')} {reason}" if reason else str(response.get("status"))


def _listed(counter: Counter[str], unit: str) -> str:
    items = [f"{what} to {n} {unit}{'s' if n != 1 else ''}" for what, n in counter.most_common(SHOWN)]
    more = len(counter) - SHOWN
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def _sent(params: dict[str, Any]) -> list[str]:
    """The field names a site.submit carried, as the client named them."""
    if SENT_FIELDS in params:
        return [k for k in str(params[SENT_FIELDS]).split(",") if k]
    return list(params)


def site_answers(facts: Facts) -> str | None:
    """``the site answered 400 missing token to 6 submits (fields sent: solution, task_id)``."""
    uses = facts.of("request", SERVICE, USE)
    if not uses:
        return None
    answers = Counter(_answer(facts.response_to(e)) for e in uses)
    line = f"the site answered {_listed(answers, 'submit')}"
    tokenless = [e for e in uses if not (e.get("params") or {}).get(TOKEN_PARAM)]
    fields = sorted({k for e in tokenless for k in _sent(e.get("params") or {})})
    if tokenless:
        line += f" (fields sent: {', '.join(fields) or 'none'})"
    return line


def unserved(facts: Facts) -> str | None:
    """``3 requests to paths the solver does not serve (POST /checkout/verify ×3)``."""
    misses = Counter(f"{e.get('method')} {e.get('path')}" for e in facts.of("request", SERVICE, NOT_FOUND))
    if not misses:
        return None
    shown = ", ".join(f"{what} ×{n}" for what, n in misses.most_common(SHOWN))
    return f"{sum(misses.values())} requests to paths the solver mock does not serve ({shown})"


def unmatched_flows(facts: Facts) -> str | None:
    """Flows on mitm links that were no use: none carried a solution, or ``use_on_mitm_links`` is off."""
    seen = {e.get("ref") for e in facts.of("solution_seen", SERVICE)}
    flows = [e for e in facts.of("proxy.flow") if e.get("fid") not in seen and e.get("outcome") != "duplicate"
             and not (e.get("service") == SERVICE and e.get("action") not in (None, NOT_FOUND))]
    if not flows:
        return None
    groups = Counter(f"{e.get('method')} {str(e.get('path') or '').partition('?')[0]} on {e.get('link')}"
                     for e in flows)
    shown = ", ".join(f"{what} ×{n}" for what, n in groups.most_common(SHOWN))
    return (f"{len(flows)} requests on mitm links counted as no use ({shown}; a solution sent there counts "
            f"with config use_on_mitm_links)")


def instead(facts: Facts) -> str:
    """One sentence: what was seen where uses were expected."""
    parts = [p for p in (site_answers(facts), unserved(facts), unmatched_flows(facts)) if p]
    seen = len(facts.of("solution_seen", SERVICE))
    if seen:
        parts.append(f"{seen} solutions seen on mitm links")
    return "; ".join(parts) or "no request reached the site (site.submit) nor carried a solution on a mitm link"
