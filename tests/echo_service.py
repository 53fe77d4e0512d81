"""A minimal service mock used to test the shared pipeline before (and besides) the real mocks."""

from __future__ import annotations

from pydantic import BaseModel

from harness.faults import Effect
from mocks.base import BadRequest, Call, Outbound, Reply, ServiceMock
from mocks.base.http import Request


class EchoConfig(BaseModel):
    greeting: str = "hello"


class EchoMock(ServiceMock):
    name = "echo"
    Config = EchoConfig

    async def parse(self, request: Request) -> Call:
        params = dict(request.query)
        if request.can_read_body:
            params.update(request.form())
        action = request.path.strip("/") or "root"
        if action == "bad":
            raise BadRequest(Reply.json({"error": "bad"}, status=400), action="bad")
        return Call(action, params, request)

    async def handle(self, call: Call) -> Reply:
        if call.action == "notify":
            out = Outbound("ping", call.params["url"], params={"id": call.params.get("id", "1")}, timeout_s=2)
            attempts = await self.callbacks.send(out)
            return Reply.json({"attempts": [a.outcome for a in attempts]})
        return Reply.json({"greeting": self.config.greeting, "echo": call.params})

    def fault_reply(self, effect: Effect, call: Call) -> Reply | None:
        return Reply.json({"error": effect.error, "message": effect.message or "injected"})

    def forge_callback(self, out: Outbound, kind: str, effect: Effect) -> Outbound:
        if kind == "wrong_id":
            out.params = {**out.params, "id": "forged"}
            return out
        return super().forge_callback(out, kind, effect)
