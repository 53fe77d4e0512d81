"""The proxies' reading of a raw chat request (when the host runs no chat mock):
``/v4/<servicename>/<command>`` → ``<servicename>/<command>`` (else ``not_found``); params = the JSON
body's top-level fields + query (the query wins)."""

from __future__ import annotations

from typing import Any, Mapping

from harness.proxy.raw_request import json_object
from mocks.chat.vocabulary import rest_action


def parse(method: str, path: str, params: dict[str, Any], headers: Mapping[str, str],
          body: bytes) -> tuple[str, dict[str, Any]]:
    parts = [p for p in path.split("/") if p]
    action = rest_action(parts[1], parts[2]) if len(parts) == 3 and parts[0] == "v4" else "not_found"
    return action, {**json_object(body), **params}
