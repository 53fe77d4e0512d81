"""``${a.b}`` templates in scenario strings (env, URLs, request bodies, service config).

A string that is exactly one ``${…}`` becomes the value itself (a dict, a number); otherwise values
are formatted into the string. Unknown names are errors naming the variable.
"""

from __future__ import annotations

import re
from typing import Any

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\-]+)*)\}")


class TemplateError(ValueError):
    pass


def _get(ctx: dict[str, Any], name: str) -> Any:
    cur: Any = ctx
    for part in name.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise TemplateError(f"unknown template variable ${{{name}}}")
    return cur


def render(value: Any, ctx: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = VARIABLE.fullmatch(value)
        if whole:
            return _get(ctx, whole.group(1))
        return VARIABLE.sub(lambda m: str(_get(ctx, m.group(1))), value)
    if isinstance(value, dict):
        return {render(k, ctx) if isinstance(k, str) else k: render(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, ctx) for v in value]
    return value


def has_template(value: Any) -> bool:
    if isinstance(value, str):
        return VARIABLE.search(value) is not None
    if isinstance(value, dict):
        return any(has_template(k) or has_template(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_template(v) for v in value)
    return False
