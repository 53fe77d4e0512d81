"""The CaptchaAI (2captcha-compatible) solver mock: ``/in.php``, ``/res.php``, pingbacks, and a
"protected site" (``POST /site/submit``) where an integration uses a solution.

Protocol facts: ``/work/shared/protocols.md`` section 2; user documentation: ``docs/solver.md``.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from aiohttp import web

from harness.faults import Effect
from mocks.base import BadRequest, Call, Outbound, Reply, ServiceMock
from mocks.base.http import BodyTooLarge, Request
from mocks.solver import pingback, sightings, vocabulary, wire
from mocks.solver.config import SolverConfig
from mocks.solver.events import SOLUTION, SOLUTION_SEEN, TASK_ACCEPTED
from mocks.solver.methods import METHODS, check_image, check_params, image_bytes
from mocks.solver.site import Site
from mocks.solver.tasks import Task, TaskBook

IN, RES, SITE = vocabulary.SUBMIT, vocabulary.POLL, vocabulary.USE


class SolverMock(ServiceMock):
    name = vocabulary.SERVICE
    Config = SolverConfig

    def __init__(self, ctx: Any, config: dict[str, Any] | None = None):
        super().__init__(ctx, config)
        self.book = TaskBook(ctx.seed, lambda: self.config, lambda: self.ctx.time_scale, self._finished,
                             self._accepted)
        self.registry = pingback.Registry()
        self.site = Site(self)
        self._bad_keys: collections.Counter[str] = collections.Counter()
        self._banned: dict[str, float] = {}
        self._submit_rid: str | None = None  # the in.php request being handled (tasks are created synchronously)

    @property
    def cfg(self) -> SolverConfig:
        return self.config  # type: ignore[return-value]

    # --- parse ---------------------------------------------------------------------------------
    async def parse(self, request: Request) -> Call:
        path = request.path
        if path in ("/in.php", "/res.php"):
            action = path[1:]
        elif path == self.cfg.site_path:
            action = SITE
            if request.method != self.cfg.site_method:
                raise BadRequest(Reply.json({"ok": False, "error": f"use {self.cfg.site_method}"}, status=405,
                                            headers={"Allow": self.cfg.site_method}), action=SITE)
        else:
            raise BadRequest(Reply.text("<html><body><h1>404 Not Found</h1></body></html>", status=404,
                                        content_type="text/html"), action="not_found")
        as_json = request.query.get("json", "") in ("1", "true")
        try:
            fields = await wire.read_fields(request)
        except wire.MalformedBody:
            if action == SITE:
                raise BadRequest(Reply.json({"ok": False, "error": "malformed body"}, status=400), SITE) from None
            raise BadRequest(wire.error(as_json, "ERROR_UPLOAD" if action == IN else "ERROR_BAD_PARAMETERS"),
                             action) from None
        except BodyTooLarge:
            if action == SITE:
                raise BadRequest(Reply.json({"ok": False, "error": "body too large"}, status=413), SITE) from None
            raise BadRequest(wire.error(as_json, "ERROR_TOO_BIG_CAPTCHA_FILESIZE"), action) from None
        if action == SITE:
            fields = self.site.normalized(fields)
        return Call(action, fields.journal_params(), request, extra={"fields": fields})

    def wants_proxied(self) -> bool:
        return bool(self.cfg.use_on_mitm_links)

    def observe_proxied(self, link: str | None, service: str | None, ref: Any, raw: dict[str, Any],
                        rule: str | None) -> None:
        """A request the integration sent through a mitm link (``POST /decide``): with
        ``use_on_mitm_links``, each solution it carries is a use (``solution_seen``)."""
        if not self.cfg.use_on_mitm_links or not self.book.by_answer:
            return
        method, target, found = sightings.in_raw_request(self.book.by_answer, raw)
        path = target.partition("?")[0]
        if service == self.name and path == self.cfg.site_path:
            return  # the stand-in site journals this use itself
        for token, where in found.items():
            more = {"rule": rule} if rule else {}
            self.ctx.record(SOLUTION_SEEN.event(service=self.name, task=self.book.by_answer[token].id, token=token,
                                                link=link, ref=ref, method=method, path=path, where=where, **more))

    # --- handle --------------------------------------------------------------------------------
    async def handle(self, call: Call) -> Reply:
        fields: wire.Fields = call.extra["fields"]
        if call.action == SITE:
            return self.site.submit(fields)
        as_json = wire.wants_json(fields)
        denied = self._auth(fields, call.request.remote or "", as_json)
        if denied is not None:
            reply = denied
        elif call.action == IN:
            self._submit_rid = call.rid
            reply = self._submit(fields, as_json)
            self._submit_rid = None
        else:
            reply = self._res(fields, as_json)
        if fields.get("header_acao") == "1":
            reply.headers["Access-Control-Allow-Origin"] = "*"
        return reply

    def _err(self, as_json: bool, code: str) -> Reply:
        return wire.error(as_json, code, with_text=self.cfg.error_text)

    def _auth(self, fields: wire.Fields, peer: str, as_json: bool) -> Reply | None:
        cfg = self.cfg
        now = asyncio.get_running_loop().time()
        until = self._banned.get(peer)
        if until is not None:
            if now < until:
                return self._err(as_json, cfg.ban_code)
            del self._banned[peer]
            self._bad_keys.pop(peer, None)
        key = fields.get("key").strip()
        code = None
        if len(key) != 32:
            code = "ERROR_WRONG_USER_KEY"
        elif key not in cfg.keys:
            code = "ERROR_KEY_DOES_NOT_EXIST"
        if code is None:
            return None
        if cfg.ban_after_bad_keys:
            self._bad_keys[peer] += 1
            if self._bad_keys[peer] >= cfg.ban_after_bad_keys:
                self._banned[peer] = now + cfg.ban_s * cfg.time_scale * self.ctx.time_scale
        return self._err(as_json, code)

    def _submit(self, fields: wire.Fields, as_json: bool) -> Reply:
        cfg = self.cfg
        key = fields.get("key").strip()
        method = METHODS.get(fields.get("method").strip())
        if method is None:
            return self._err(as_json, "ERROR_BAD_PARAMETERS")
        if method.name == "hcaptcha" and cfg.hcaptcha == "error":
            return self._err(as_json, cfg.hcaptcha_error)
        code = check_params(method, fields)
        if code is None and method.image:
            data, code = image_bytes(method, fields)
            if data is not None:
                code = check_image(data, cfg.min_image_bytes, cfg.max_image_bytes, cfg.check_image_type)
        if code is not None:
            return self._err(as_json, code)
        url = fields.get("pingback").strip() or None
        if url is not None and cfg.pingback_registration != "off" and not self.registry.allows(key, url):
            if cfg.pingback_registration == "reject":
                return self._err(as_json, cfg.pingback_reject_error)
            url = None  # "ignore": accepted, but no pingback will be sent
        account = cfg.keys[key]
        if account.balance <= 0:
            return self._err(as_json, "ERROR_ZERO_BALANCE")
        busy = self.book.working(key) >= account.threads or self.book.queued(key) > 0
        if busy and cfg.thread_cap_reply != "queue":
            return self._err(as_json, cfg.thread_cap_reply)
        sitekey = (fields.get(method.sitekey).strip() or None) if method.sitekey else None
        task = self.book.create(key, method, sitekey, url, enterprise=fields.get("enterprise").strip() == "1",
                                cells=method.name == "base64" and bool(fields.get("grid_size")), queue=busy)
        if fields.get("pingback").strip() and url is None:
            task.notes.append("pingback ignored: address not registered")
        return wire.ok(as_json, task.id if method.name in cfg.int_request_methods and as_json else str(task.id))

    def _res(self, fields: wire.Fields, as_json: bool) -> Reply:
        cfg = self.cfg
        key = fields.get("key").strip()
        action = fields.get("action").strip()
        if not action:
            return self._err(as_json, "ERROR_EMPTY_ACTION")
        if action == "get":
            if fields.get(vocabulary.TASK_IDS_PARAM).strip():
                return wire.value(as_json, "|".join(self._bulk_one(key, i.strip())
                                                    for i in fields.get(vocabulary.TASK_IDS_PARAM).split(",")))
            return self._get(key, fields.get(vocabulary.TASK_ID_PARAM).strip(), as_json)
        if action == "getbalance":
            return wire.value(as_json, _money(cfg.keys[key].balance))
        if action == "threadsinfo":  # JSON whatever json says (the SDK always asks json=1) — UNCONFIRMED
            return Reply.json({"status": 1, "threads": self.book.cap(key), "working_threads": self.book.working(key)})
        if action in ("reportgood", "reportbad"):
            task = self._task(key, fields.get(vocabulary.TASK_ID_PARAM).strip())
            if task is None:
                return self._err(as_json, "ERROR_WRONG_CAPTCHA_ID")
            if not task.done:
                return self._err(as_json, "ERROR_REPORT_NOT_RECORDED")
            task.reports.append(action)
            return wire.value(as_json, "OK_REPORT_RECORDED")
        if action in ("add_pingback", "del_pingback"):
            addr = fields.get("addr").strip()
            if not addr:
                return self._err(as_json, "ERROR_BAD_PARAMETERS")
            if action == "add_pingback":
                if not pingback.valid_url(addr if "://" in addr else f"http://{addr}"):
                    return self._err(as_json, "ERROR_BAD_PARAMETERS")
                self.registry.add(key, addr)
            else:
                self.registry.remove(key, addr)
            return wire.value(as_json, "OK_PINGBACK")
        if action == "get_pingback":
            addrs = self.registry.list(key)
            return wire.value(as_json, addrs if as_json else ",".join(addrs))
        return self._err(as_json, "ERROR_BAD_PARAMETERS")

    def _task(self, key: str, raw_id: str) -> Task | None:
        if not raw_id.isdigit():
            return None
        task = self.book.get(int(raw_id), asyncio.get_running_loop().time())
        return task if task is not None and task.key == key else None

    def _get(self, key: str, raw_id: str, as_json: bool) -> Reply:
        if not raw_id.isdigit():
            return self._err(as_json, "ERROR_WRONG_ID_FORMAT")
        task = self._task(key, raw_id)
        if task is None:
            return self._err(as_json, "ERROR_WRONG_CAPTCHA_ID")
        if not task.done:
            return wire.not_ready(as_json)
        if task.state == "unsolvable":
            return self._err(as_json, "ERROR_CAPTCHA_UNSOLVABLE")
        if task.user_agent is None:
            return wire.ok(as_json, task.answer)
        if not as_json:
            return wire.ok(False, task.answer)
        body: dict[str, Any] = {"status": 1}
        in_result = task.enterprise or task.method.name == "cloudflare_challenge"
        if not in_result or self.cfg.answer_field in ("request", "both"):
            body["request"] = task.answer
        if in_result and self.cfg.answer_field in ("result", "both"):
            body["result"] = task.answer
        body["user_agent"] = task.user_agent
        return Reply.json(body)

    def _bulk_one(self, key: str, raw_id: str) -> str:
        task = self._task(key, raw_id)
        if task is None:
            return "ERROR_WRONG_CAPTCHA_ID"
        if not task.done:
            return wire.NOT_READY
        return task.answer if task.state == "solved" else "ERROR_CAPTCHA_UNSOLVABLE"  # type: ignore[return-value]

    # --- solutions and pingbacks ---------------------------------------------------------------
    def _accepted(self, task: Task) -> None:
        """What the solver will do with a task it accepted, so a task that never finishes (stalled)
        can be told from one that was solved and then lost."""
        planned = "stalled" if task.stalled else "unsolvable" if task.unsolvable else "solved"
        self.ctx.record(TASK_ACCEPTED.event(service=self.name, task=task.id, n=task.n, planned=planned,
                                            solve_s=None if task.stalled else round(task.solve_s, 4),
                                            profile=task.profile, pingback=task.pingback,
                                            **({"rid": self._submit_rid} if self._submit_rid else {})))

    def _finished(self, task: Task) -> None:
        cfg = self.cfg
        self.ctx.record(SOLUTION.event(service=self.name, task=task.id, n=task.n, token=task.answer, key=task.key,
                                       method=task.method.name, outcome=task.state, pingback=task.pingback,
                                       solve_s=round(task.solve_s, 4)))
        if task.pingback and (task.state == "solved" or cfg.pingback_on_unsolvable):
            code = task.answer if task.state == "solved" else "ERROR_CAPTCHA_UNSOLVABLE"
            self.callbacks.spawn(pingback.outbound(task, code or "", cfg), retries=cfg.pingback_retries,
                                 retry_on=tuple(cfg.pingback_retry_on))

    def forge_callback(self, out: Outbound, kind: str, effect: Effect) -> Outbound:
        if kind == "wrong_id":
            return pingback.with_id(out, self.book.unknown_id())
        return super().forge_callback(out, kind, effect)

    # --- faults by rule ------------------------------------------------------------------------
    def fault_reply(self, effect: Effect, call: Call) -> Reply | None:
        if effect.error is None:
            return None
        if call.action == SITE:
            return Reply.json({"ok": False, "error": effect.message or effect.error},
                              status=self.cfg.site_reject_status)
        fields: wire.Fields = call.extra["fields"]
        plain_forced = effect.content_type is not None and effect.content_type.startswith("text/")
        as_json = wire.wants_json(fields) and not plain_forced
        return wire.error(as_json, effect.error, text=effect.message, with_text=self.cfg.error_text)

    # --- control API ---------------------------------------------------------------------------
    def control_routes(self) -> list[web.RouteDef]:
        from mocks.solver.control import routes
        return routes(self)

    def openapi_paths(self) -> dict[str, Any]:
        from mocks.solver.control import openapi_paths
        return openapi_paths()

    def reset_state(self) -> None:
        self.book.clear()
        self.registry.clear()
        self._bad_keys.clear()
        self._banned.clear()

    async def stop(self) -> None:
        self.book.clear()
        await super().stop()


def _money(amount: float) -> str:
    text = f"{amount:.5f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"
