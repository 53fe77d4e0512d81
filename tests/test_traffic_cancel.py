"""A traffic flow cut short (SIGINT reaches the run as a cancellation) takes its requests in flight
with it: none is left to fail later against a closed session or stopped mocks and be journaled as a
failure the target never made (the INTERRUPTED verdict-so-far would then read FAIL)."""

import asyncio

from aiohttp import web

from harness.run.traffic import Driver
from harness.scenario.model import Flow


async def _serve(delay: float) -> tuple[web.AppRunner, str, list[str]]:
    seen: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        seen.append(request.path)
        await asyncio.sleep(delay)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}", seen


async def _cut_while_in_flight(flow: Flow) -> tuple[list[dict], list[str], set[asyncio.Task]]:
    runner, url, seen = await _serve(delay=1.0)
    events: list[dict] = []
    try:
        driver = Driver([flow], {"target": {"url": url}}, events.append, seed=1)
        run = asyncio.create_task(driver.run())
        while len(seen) < 2:            # two requests in flight, the flow asleep until its next one
            await asyncio.sleep(0.01)
        run.cancel("SIGINT")
        try:
            await run
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(1.5)        # past the moment the cut requests would have been answered
        left = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    finally:
        await runner.cleanup()
    return events, seen, left


def test_requests_in_flight_end_with_their_flow_unrecorded():
    flow = Flow(name="login", request={"method": "GET", "path": "/slow"}, rate=20, duration=60, concurrency=5)
    events, seen, left = asyncio.run(_cut_while_in_flight(flow))
    assert len(seen) >= 2
    assert events == []      # nothing completed before the cut, so nothing, and no failure, is journaled
    assert left == set()     # no request task outlives the driver


def test_a_flow_waiting_on_its_last_requests_cancels_them_too():
    flow = Flow(name="login", request={"method": "GET", "path": "/slow"}, count=2, concurrency=2)
    events, seen, left = asyncio.run(_cut_while_in_flight(flow))
    assert len(seen) == 2 and events == [] and left == set()
