"""The OpenAPI document, built from the same route table the server mounts."""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Callable

import attrs


@attrs.define
class Route:
    method: str
    path: str
    handler: Callable
    summary: str
    response: str = "Any"
    body: type | None = None
    query: dict[str, str] = attrs.Factory(dict)
    status: int = 200
    stream: bool = False
    content_type: str | None = None


_SIZE = {"type": "integer", "minimum": 0}
_USAGE = {
    "type": "object",
    "properties": {
        "total": {"type": "number"}, "used": {"type": "number"},
        "available": {"type": "number"}, "reserved": {"type": "number"},
        "used_pct": {"type": "number"}, "reserved_pct": {"type": "number"},
        "usage_pct": {"type": "number"}, "limit_pct": {"type": "number"},
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message", "hint"],
        "properties": {
            "error": {"type": "string", "description": "A short machine code."},
            "message": {"type": "string", "description": "What failed."},
            "hint": {"type": "string", "description": "What to do about it."},
        },
    },
    "Pong": {
        "type": "object",
        "required": ["pong", "node", "version"],
        "properties": {"pong": {"type": "boolean"}, "node": {"type": "string"},
                       "version": {"type": "string"}},
    },
    "NodeInfo": {
        "type": "object",
        "required": ["name", "cpu", "ram", "disk", "vms", "saturation", "saturated"],
        "properties": {
            "name": {"type": "string"}, "hostname": {"type": "string"},
            "hypervisor": {"type": "string"},
            "cpu": _USAGE, "ram": _USAGE, "disk": _USAGE,
            "vms": {"type": "object", "properties": {
                "total": {"type": "integer"},
                "by_state": {"type": "object", "additionalProperties": {"type": "integer"}}}},
            "saturation": {"type": "number", "description": "Weighted index; >= 1 is full."},
            "saturation_by_resource": {"type": "object",
                                       "additionalProperties": {"type": "number"}},
            "saturated": {"type": "boolean"},
            "templates": {"type": "object", "additionalProperties": {
                "type": "object", "properties": {"fits": {"type": "boolean"},
                                                 "reason": {"type": "string"}}}},
            "plugins": {"type": "object", "description": "Fields from virshle_node_info."},
        },
    },
    "Template": {
        "type": "object",
        "required": ["name", "vcpu", "vram", "disks", "nets"],
        "properties": {
            "name": {"type": "string"}, "vcpu": {"type": "integer", "minimum": 1},
            "vram": _SIZE,
            "disks": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "path": {"type": "string"},
                "readonly": {"type": "boolean"}}}},
            "nets": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "type": {"type": "string"},
                "options": {"type": "object"}}}},
            "kernel": {"type": "string", "nullable": True},
            "initramfs": {"type": "string", "nullable": True},
            "cmdline": {"type": "string", "nullable": True},
            "firmware": {"type": "string", "nullable": True},
        },
    },
    "TemplateList": {"type": "array", "items": {"$ref": "#/components/schemas/Template"}},
    "Vm": {
        "type": "object",
        "required": ["id", "uuid", "name", "node", "template", "state", "vcpu", "vram",
                     "disks", "nets", "ips", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "integer"}, "uuid": {"type": "string", "format": "uuid"},
            "name": {"type": "string"}, "node": {"type": "string"},
            "template": {"type": "string"},
            "state": {"type": "string",
                      "enum": ["created", "running", "paused", "shutdown", "crashed"]},
            "vcpu": {"type": "integer"}, "vram": _SIZE,
            "disks": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "path": {"type": "string"},
                "size": {"type": "integer", "nullable": True}}}},
            "nets": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "type": {"type": "string"},
                "mac": {"type": "string", "nullable": True},
                "ifname": {"type": "string", "nullable": True}}}},
            "ips": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string"}, "updated_at": {"type": "string"},
        },
    },
    "VmList": {"type": "array", "items": {"$ref": "#/components/schemas/Vm"}},
    "EventStream": {
        "type": "string",
        "description": "One JSON object per line: {event, node, vm?, ...}; the first is "
                       '{"event": "hello"}.',
    },
    "OpenApi": {"type": "object"},
    "StopResult": {
        "type": "object",
        "required": ["vm", "was_running"],
        "properties": {"vm": {"$ref": "#/components/schemas/Vm"},
                       "was_running": {"type": "boolean",
                                       "description": "False: it was already stopped (no-op)."}},
    },
    "ConsoleStream": {"type": "string", "description": "WebSocket upgrade; binary messages carry "
                      "the serial console's bytes both ways."},
    "ConsoleLog": {"type": "string", "description": "text/plain: the console output kept in "
                   "console.log (the rotated console.log.1 first)."},
}


def _json_type(annotation: Any) -> dict[str, Any]:
    if isinstance(annotation, str):
        annotation = {"str": str, "int": int, "bool": bool, "float": float,
                      "str | None": str | None, "int | None": int | None}.get(annotation, str)
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        annotation = args[0]
    schema = {str: {"type": "string"}, int: {"type": "integer"}, bool: {"type": "boolean"},
              float: {"type": "number"}}.get(annotation, {"type": "object"})
    return {**schema, "nullable": True} if nullable else dict(schema)


def body_schema(cls: type) -> dict[str, Any]:
    """A JSON schema for an attrs request class; unknown fields are refused."""
    properties, required = {}, []
    for field in attrs.fields(cls):
        properties[field.name] = _json_type(field.type)
        if field.default is attrs.NOTHING:
            required.append(field.name)
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def openapi_document(routes: list[Route], prefix: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    errors = {"$ref": "#/components/responses/Error"}
    for route in routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
            "responses": {
                str(route.status): {
                    "description": route.summary,
                    "content": {
                        (route.content_type or ("application/x-ndjson" if route.stream else "application/json")): {
                            "schema": {"$ref": f"#/components/schemas/{route.response}"}
                        }
                    },
                },
                "400": errors, "404": errors, "409": errors, "500": errors,
            },
        }
        parameters = []
        for name in re.findall(r"{(\w+)}", route.path):
            parameters.append({"name": name, "in": "path", "required": True,
                               "schema": {"type": "string"},
                               "description": "A VM id, name or uuid."})
        for name, description in route.query.items():
            parameters.append({"name": name, "in": "query", "required": False,
                               "schema": {"type": "string"}, "description": description})
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body_schema(route.body)}},
            }
        paths.setdefault(prefix + route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "Virshle node API", "version": version,
                 "description": "HTTP/1.1 + JSON on the node's unix socket."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {"Error": {
                "description": "An error: what failed and what to do.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }},
        },
    }
