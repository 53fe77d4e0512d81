"""The proxies' reading of a raw solver request (when the host runs no solver mock): ``in.php`` /
``res.php`` / ``site.submit`` (else ``not_found``); params = query + form fields (urlencoded,
multipart, or a JSON object; the body wins); file parts as ``{"filename", "size"}``."""

from __future__ import annotations

from typing import Any, Mapping

from harness.proxy.raw_request import body_fields, header
from mocks.solver.vocabulary import PATHS


def parse(method: str, path: str, params: dict[str, Any], headers: Mapping[str, str],
          body: bytes) -> tuple[str, dict[str, Any]]:
    return PATHS.get(path, "not_found"), {**params, **body_fields(body, header(headers, "content-type"))}
