"""Control API routes. JSON in, JSON out; bad input gets ``400 {"error": "<field>: <why>"}``."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from harness.control.decide_route import add_addon_routes
from harness.control.http import error, json_response, read_json
from harness.control.openapi import openapi_document
from harness.faults.rules import RuleError, parse_rules

if TYPE_CHECKING:
    from harness.host import MockHost

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_control_app(host: "MockHost") -> web.Application:
    middlewares = []
    if host.control_token:
        middlewares.append(_token_middleware(host.control_token))
    middlewares.append(_unreadable_body_middleware)
    app = web.Application(middlewares=middlewares, client_max_size=16 * 1024 * 1024)
    engine, journal = host.engine, host.journal

    async def health(_: web.Request) -> web.Response:
        return json_response({"status": "ok", "seed": host.seed, "services": host.urls,
                              "journal": journal.path, "seq": journal.seq,
                              "tls_ca": host.ctx.tls_ca})

    async def list_rules(_: web.Request) -> web.Response:
        return json_response({"rules": engine.list()})

    async def add_rules(request: web.Request) -> web.Response:
        try:
            rules = parse_rules(await read_json(request))
        except RuleError as e:
            return error(400, str(e))
        return json_response({"ids": engine.add(rules)}, 201)

    async def delete_rule(request: web.Request) -> web.Response:
        rid = request.match_info["id"]
        if not engine.remove(rid):
            return error(404, f"rule {rid!r} not found")
        return json_response({"deleted": rid})

    async def clear_rules(_: web.Request) -> web.Response:
        engine.clear()
        return json_response({"deleted": "all"})

    async def reset(_: web.Request) -> web.Response:
        host.reset()
        return json_response({"reset": True, "seq": journal.seq})

    async def get_journal(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
            limit = int(request.query["limit"]) if "limit" in request.query else None
        except ValueError:
            return error(400, "since/limit: expected integers")
        if since < 0 or (limit is not None and limit < 0):
            return error(400, "since/limit: expected non-negative integers")
        return web.Response(body=journal.read_since(since, limit), content_type="application/x-ndjson")

    async def post_journal(request: web.Request) -> web.Response:
        data = await read_json(request)
        events = data if isinstance(data, list) else [data]
        for i, ev in enumerate(events):
            if not isinstance(ev, dict) or not isinstance(ev.get("kind"), str) or not ev["kind"]:
                return error(400, f"events[{i}].kind: expected a non-empty string")
            if (problem := journal.problem(ev)) is not None:  # strict mode: declared kinds and fields only
                return error(400, f"events[{i}]: {problem}")
        # marked: invariants count such events only as what other harness processes report
        # (driver requests from locust, proxy flows from mitmproxy), never as mock observations
        seqs = [journal.write({**{k: v for k, v in ev.items() if k not in ("seq", "ts", "t")}, "source": "api"})
                for ev in events]
        return json_response({"seqs": seqs}, 201)

    async def openapi(_: web.Request) -> web.Response:
        return json_response(openapi_document(host))

    async def service_state(request: web.Request) -> web.Response:
        name, op = request.match_info["name"], request.match_info["op"]
        if name not in host.services:
            return error(404, f"unknown service {name!r}")
        await (host.stop_service(name) if op == "stop" else host.start_service(name))
        return json_response({"service": name, "running": op == "start"})

    app.router.add_get("/health", health)
    app.router.add_get("/rules", list_rules)
    app.router.add_post("/rules", add_rules)
    app.router.add_delete("/rules", clear_rules)
    app.router.add_delete("/rules/{id}", delete_rule)
    app.router.add_post("/reset", reset)
    app.router.add_get("/journal", get_journal)
    app.router.add_post("/journal", post_journal)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_post(r"/services/{name}/{op:(stop|start)}", service_state)
    add_addon_routes(app, host)  # /decide…: the mitmproxy addon's rule mirror, journal and fault replies
    for name, mock in host.services.items():
        _add_config_routes(app, name, mock)
        app.router.add_routes(mock.control_routes())
    return app


def _add_config_routes(app: web.Application, name: str, mock: Any) -> None:
    async def get_config(_: web.Request) -> web.Response:
        return json_response(mock.config_dict())

    async def set_config(request: web.Request) -> web.Response:
        patch = await read_json(request)
        if not isinstance(patch, dict):
            return error(400, f"{name}.config: expected a JSON object")
        try:
            return json_response(mock.update_config(patch))
        except ValueError as e:
            return error(400, str(e))

    app.router.add_get(f"/{name}/config", get_config)
    app.router.add_route("PUT", f"/{name}/config", set_config)
    app.router.add_route("PATCH", f"/{name}/config", set_config)
    app.router.add_post(f"/{name}/config", set_config)


@web.middleware
async def _unreadable_body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body aiohttp cannot decode (garbage with ``Content-Encoding: gzip``/``br``, broken chunks)
    is the client's fault: 400, then close (draining it again would only log a traceback)."""
    try:
        resp = await handler(request)
    except web.RequestPayloadError:
        resp = error(400, "body: cannot be read (bad Content-Encoding or chunked framing)")
    except web.HTTPException as e:  # 404/405 from the router: the body was never read
        if request.content.exception() is not None:
            e.force_close()
            request.content.feed_eof()
        raise
    if request.content.exception() is not None:  # also when the handler never read the body
        resp.force_close()
        request.content.feed_eof()
    return resp


def _token_middleware(token: str) -> Any:
    expected = token.encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("X-Harness-Token", "")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:]
        # surrogatepass: a header byte that is not UTF-8 reaches us as a lone surrogate, which plain
        # encode() refuses (a 500); encoded this way it can never equal a real token
        if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected):
            return error(401, "control token missing or wrong (send Authorization: Bearer <token>)")
        return await handler(request)
    return check
