"""The OpenAPI 3.1 document of the control API (base routes + each service's own)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.control.decide_route import DECIDE_OPENAPI
from harness.faults.rules import Rule

if TYPE_CHECKING:
    from harness.host import MockHost

_JSON = "application/json"


def _ok(description: str, schema: dict[str, Any] | None = None, media: str = _JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema or {"type": "object"}}}}


_ERR = {"description": "bad input", "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_document(host: "MockHost") -> dict[str, Any]:
    rule_schema = Rule.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = rule_schema.pop("$defs", {})
    rules_body = {"oneOf": [{"$ref": "#/components/schemas/Rule"},
                            {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}},
                            {"type": "object", "required": ["rules"],
                             "properties": {"rules": {"type": "array",
                                                      "items": {"$ref": "#/components/schemas/Rule"}}}}]}
    paths: dict[str, Any] = {
        "/health": {"get": {"summary": "Liveness and service URLs", "responses": {"200": _ok("ok")}}},
        "/rules": {
            "get": {"summary": "List rules with match/fire counts", "responses": {"200": _ok("rules")}},
            "post": {"summary": "Add one or many rules (an existing id is replaced in place)",
                     "requestBody": {"required": True, "content": {
                _JSON: {"schema": rules_body}}},
                "responses": {"201": _ok("ids of the added rules", {
                    "type": "object", "properties": {"ids": {"type": "array", "items": {"type": "string"}}}}),
                    "400": _ERR}},
            "delete": {"summary": "Remove every rule", "responses": {"200": _ok("deleted")}},
        },
        "/rules/{id}": {"delete": {"summary": "Remove one rule", "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _ok("deleted"), "404": _ERR}}},
        "/reset": {"post": {"summary": "Clear rules and service state; config back to start values",
                            "responses": {"200": _ok("reset")}}},
        "/journal": {
            "get": {"summary": "Journal events with seq > since, as JSON Lines", "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                "responses": {"200": _ok("events", {"type": "string"}, "application/x-ndjson"), "400": _ERR}},
            "post": {"summary": "Append events (e.g. from a proxy addon or a driver); they are marked "
                                "source=api and invariants count only driver and proxy.flow ones", "requestBody": {
                "required": True, "content": {_JSON: {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/EventIn"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/EventIn"}}]}}}},
                "responses": {"201": _ok("sequence numbers"), "400": _ERR}},
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ok("OpenAPI")}}},
        "/services/{name}/{op}": {"post": {"summary": "Stop (kill) or start a mock's listener", "parameters": [
            {"name": "name", "in": "path", "required": True,
             "schema": {"enum": sorted(host.services)} if host.services else {"type": "string"}},
            {"name": "op", "in": "path", "required": True, "schema": {"enum": ["stop", "start"]}}],
            "responses": {"200": _ok("state"), "404": _ERR}}},
    }
    paths.update(DECIDE_OPENAPI)
    for name, mock in host.services.items():
        paths[f"/{name}/config"] = {
            "get": {"summary": f"{name} mock configuration", "responses": {"200": _ok("config")}},
            "put": {"summary": f"Change {name} mock configuration (merged)", "requestBody": {
                "required": True, "content": {_JSON: {"schema": {"type": "object"}}}},
                "responses": {"200": _ok("config"), "400": _ERR}},
        }
        paths.update(mock.openapi_paths())
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "chaos-harness control API", "version": __version__},
        "paths": paths,
        "components": {"schemas": {
            "Rule": rule_schema, **defs,
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "EventIn": {"type": "object", "required": ["kind"],
                        "properties": {"kind": {"type": "string", "minLength": 1}}},
        }},
    }
    if host.control_token:
        doc["components"]["securitySchemes"] = {"token": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"token": []}]
    return doc
