"""The "protected site": where an integration *uses* a solution (``POST /site/submit`` with a form
or JSON field ``token``, optional ``task``; path, method and field names are the config's ``site_*``). Each use is a ``request`` event (action
``site.submit``, params incl. ``token``) plus a ``solution_use`` event, so invariants can count
uses per token. Like reCAPTCHA's siteverify, a token is good once and for a limited time.

Answers: ``200 {"ok": true, "task": <id>}``; otherwise ``site_reject_status`` (default 403) with
``{"ok": false, "error": "unknown token" | "token already used" | "token expired" |
"task mismatch"}``; ``400`` for a missing token.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mocks.base import Reply
from mocks.solver.events import SOLUTION_USE
from mocks.solver.vocabulary import SENT_FIELDS, TOKEN_PARAM
from mocks.solver.wire import Fields

if TYPE_CHECKING:
    from mocks.solver.service import SolverMock


class Site:
    def __init__(self, mock: "SolverMock"):
        self.mock = mock

    def normalized(self, fields: Fields) -> Fields:
        """The configured token / task field names (``site_token_field``, ``site_task_field``) read
        as ``token`` / ``task``, so the journal and the invariants see one shape for every site; the
        names the client sent are kept in ``sent_fields`` (its own ``token`` may be another field)."""
        cfg = self.mock.cfg
        names = {cfg.site_token_field: TOKEN_PARAM, cfg.site_task_field: "task"}
        if all(k == v for k, v in names.items()):
            return fields
        values = {k: v for k, v in fields.values.items() if k not in (TOKEN_PARAM, "task")}
        for given, canonical in names.items():
            if given in fields.values:
                values[canonical] = fields.values[given]
        values[SENT_FIELDS] = ",".join(sorted(fields.values))  # as the client named them (evidence)
        return Fields(values, fields.files, fields.json_body)

    def submit(self, fields: Fields) -> Reply:
        mock, cfg = self.mock, self.mock.cfg
        token = fields.get(TOKEN_PARAM).strip()
        claimed = fields.get("task").strip()
        task = mock.book.by_answer.get(token) if token else None
        error = None
        if not token:
            error = "missing token"
        elif task is None:
            error = "unknown token"
        else:
            task.used += 1
            ttl = cfg.site_token_ttl_s * cfg.time_scale * mock.ctx.time_scale
            now = asyncio.get_running_loop().time()
            if claimed and claimed != str(task.id):
                error = "task mismatch"
            elif task.used > 1 and not cfg.site_allow_reuse:
                error = "token already used"
            elif cfg.site_token_ttl_s > 0 and task.finished is not None and now - task.finished > ttl:
                error = "token expired"
        mock.ctx.record(SOLUTION_USE.event(service=mock.name, task=task.id if task else None, token=token,
                                           ok=error is None, error=error, use=task.used if task else 0))
        if error is None:
            return Reply.json({"ok": True, "task": task.id})  # type: ignore[union-attr]
        status = 400 if error == "missing token" else cfg.site_reject_status
        return Reply.json({"ok": False, "error": error}, status=status)
