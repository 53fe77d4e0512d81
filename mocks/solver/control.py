"""Solver routes on the control API: inspect tasks and keys (read-only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from mocks.solver.service import SolverMock

STATES = ("queued", "solving", "solved", "unsolvable")


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json")


def routes(mock: "SolverMock") -> list[web.RouteDef]:
    async def tasks(request: web.Request) -> web.Response:
        state = request.query.get("state")
        if state is not None and state not in STATES:
            return _json({"error": f"state: expected one of {', '.join(STATES)}"}, 400)
        try:
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            return _json({"error": "limit: expected an integer"}, 400)
        rows = [t.public() for t in mock.book.tasks.values() if state is None or t.state == state]
        return _json({"summary": mock.book.summary(), "tasks": rows[-limit:] if limit > 0 else []})

    async def task(request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        t = mock.book.tasks.get(int(raw)) if raw.isdigit() else None
        if t is None:
            return _json({"error": f"task {raw!r} not found"}, 404)
        return _json(t.public())

    async def keys(_: web.Request) -> web.Response:
        return _json({key: {"threads": k.threads, "balance": k.balance, "working": mock.book.working(key),
                            "queued": mock.book.queued(key), "pingback_addrs": mock.registry.list(key)}
                      for key, k in mock.cfg.keys.items()})

    return [web.get("/solver/tasks", tasks), web.get("/solver/tasks/{id}", task), web.get("/solver/keys", keys)]


def openapi_paths() -> dict[str, Any]:
    ok = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}
    err = {"description": "bad input / not found",
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "/solver/tasks": {"get": {"summary": "Solver tasks (newest last) and a count per state", "parameters": [
            {"name": "state", "in": "query", "schema": {"enum": list(STATES)}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 1000}}],
            "responses": {"200": ok, "400": err}}},
        "/solver/tasks/{id}": {"get": {"summary": "One solver task", "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": ok, "404": err}}},
        "/solver/keys": {"get": {"summary": "API keys: thread cap, working/queued tasks, balance, "
                                            "registered pingback addresses", "responses": {"200": ok}}},
    }
