"""The proxies' reading of a raw captcha request (when the host runs no captcha mock): ``/`` → the
``X-TC-Action`` header (``(none)`` if missing), params = query (GET) or the JSON body object (POST);
``/ticket`` → ``ticket``; ``/TCaptcha.js`` → ``TCaptcha.js``."""

from __future__ import annotations

from typing import Any, Mapping

from harness.proxy.raw_request import form_fields, header, json_object
from mocks.captcha.vocabulary import NO_ACTION, SCRIPT_ACTION, TICKET_ACTION


def parse(method: str, path: str, params: dict[str, Any], headers: Mapping[str, str],
          body: bytes) -> tuple[str, dict[str, Any]]:
    if path.lower() == "/" + SCRIPT_ACTION.lower():
        return SCRIPT_ACTION, params
    if path == "/" + TICKET_ACTION:
        return TICKET_ACTION, {**params, **(form_fields(body, header(headers, "content-type")) or json_object(body))}
    action = header(headers, "x-tc-action").strip() or NO_ACTION
    return action, (params if method.upper() == "GET" else json_object(body))
