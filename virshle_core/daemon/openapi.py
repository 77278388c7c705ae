"""The OpenAPI document, built from the route table the server mounts and from the wire
classes of ``virshle_core.wire.api``: neither the routes nor the shapes are written twice."""

from __future__ import annotations

import re
from typing import Any, Callable

import attrs

from ..wire import api

REF = "#/components/schemas/"


@attrs.define
class Route:
    """One route: what it does, its body's class, and its reply's class (or a
    ``list[...]`` of one, or a named text/stream schema of ``TEXT_SCHEMAS``)."""

    method: str
    path: str
    handler: Callable
    summary: str
    response: Any = None
    body: type[api.Record] | None = None
    query: dict[str, str] = attrs.Factory(dict)
    status: int = 200
    stream: bool = False
    content_type: str | None = None
    stream_line: type[api.Record] | None = None
    """The class of each line, for an NDJSON stream (its schema says what one line is)."""


TEXT_SCHEMAS: dict[str, Any] = {
    "ConsoleStream": {"type": "string", "description": "WebSocket upgrade; binary messages "
                      "carry the serial console's bytes both ways."},
    "ConsoleLog": {"type": "string", "description": "text/plain: the console output kept in "
                   "console.log (the rotated console.log.1 first)."},
    "Tunnel": {"type": "string", "description": "Upgrade: virshle-tunnel; raw bytes both ways "
               "(one stream of a move, carried to the other node)."},
    "OpenApi": {"type": "object"},
    "PluginReply": {"description": "What the plugin's route answers (JSON, unless it says "
                    "otherwise)."},
}

_SCALAR_SCHEMAS = {"str": {"type": "string"}, "int": {"type": "integer"},
                   "float": {"type": "number"}, "bool": {"type": "boolean"}, "Any": {}}


def field_schema(kind: str, schemas: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of one field type, as ``api.Record`` reads it; records and enums
    named on the way are added to ``schemas``."""
    if kind.endswith(" | None"):
        inner = field_schema(kind[:-7], schemas)
        if "$ref" in inner:  # OpenAPI 3.0: a $ref takes no siblings
            return {"allOf": [inner], "nullable": True}
        return {**inner, "nullable": True}
    if kind in _SCALAR_SCHEMAS:
        return dict(_SCALAR_SCHEMAS[kind])
    if kind.startswith("list["):
        return {"type": "array", "items": field_schema(kind[5:-1], schemas)}
    if kind.startswith("dict[str, "):
        return {"type": "object", "additionalProperties": field_schema(kind[10:-1], schemas)}
    target = api.wire.TYPES.get(kind) or getattr(api, kind)
    if kind not in schemas:
        schemas[kind] = {}  # taken before recursing: records may name each other
        schemas[kind] = (record_schema(target, schemas) if issubclass(target, api.Record)
                         else _enum_schema(target))
    return {"$ref": REF + kind}


def _enum_schema(enum: Any) -> dict[str, Any]:
    return {"type": "string", "enum": list(api.wire.choices(enum)),
            "description": _doc(enum)}


def _doc(cls: type) -> str:
    return " ".join((cls.__doc__ or "").split())


def record_schema(cls: type[api.Record], schemas: dict[str, Any], strict: bool = False
                  ) -> dict[str, Any]:
    """A record's schema; ``strict`` (a request body) refuses fields it does not name."""
    schema: dict[str, Any] = {"type": "object", "properties": {
        field.name: field_schema(field.type, schemas) for field in cls.__fields__}}
    required = [field.name for field in cls.__fields__ if field.required]
    if required:
        schema["required"] = required
    if cls.__doc__ and cls.__doc__ is not api.Record.__doc__:
        schema["description"] = _doc(cls)
    if strict:
        schema["additionalProperties"] = False
    return schema


def event_schema(schemas: dict[str, Any]) -> dict[str, Any]:
    """A line of ``GET /events``: one of the event classes, told apart by ``event``."""
    choices = {}
    for name, cls in api.EVENTS.items():
        schema = record_schema(cls, schemas)
        schema["properties"]["event"] = {"type": "string", "enum": [name]}
        schemas[cls.__name__] = schema
        choices[name] = REF + cls.__name__
    return {"oneOf": [{"$ref": ref} for ref in choices.values()],
            "discriminator": {"propertyName": "event", "mapping": choices},
            "description": _doc(api.Event)}


def response_schema(response: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    if isinstance(response, str):
        if response not in TEXT_SCHEMAS:
            return field_schema(response, schemas)  # "list[Vm]"
        schemas[response] = TEXT_SCHEMAS[response]
        return {"$ref": REF + response}
    return field_schema(response.__name__, schemas)


def openapi_document(routes: list[Route], prefix: str, version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    schemas["Event"] = event_schema(schemas)
    field_schema("Error", schemas)
    paths: dict[str, Any] = {}
    errors = {"$ref": "#/components/responses/Error"}
    for route in routes:
        media = route.content_type or ("application/x-ndjson" if route.stream else "application/json")
        if route.stream_line:
            content = {media: {"schema": field_schema(route.stream_line.__name__, schemas)}}
            if route.response is not None:  # it also answers in one piece
                content["application/json"] = {"schema": response_schema(route.response, schemas)}
        else:
            content = {media: {"schema": response_schema(route.response, schemas)}}
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": f"{route.method.lower()}_"
                           + re.sub(r"[^a-z0-9]+", "_", route.path.lower()).strip("_"),
            "responses": {
                str(route.status): {"description": route.summary, "content": content},
                "400": errors, "404": errors, "409": errors, "500": errors, "503": errors,
            },
        }
        parameters = []
        for name in re.findall(r"{(\w+)}", route.path):
            parameters.append({"name": name, "in": "path", "required": True,
                               "schema": {"type": "string"},
                               "description": "A VM id, name or uuid (or id:N, name:N, uuid:U)."})
        for name, description in route.query.items():
            parameters.append({"name": name, "in": "query", "required": False,
                               "schema": {"type": "string"}, "description": description})
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": route.body.__fields__[0].required if route.body.__fields__ else False,
                "content": {"application/json": {
                    "schema": record_schema(route.body, schemas, strict=True)}},
            }
        paths.setdefault(prefix + route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "Virshle node API", "version": version,
                 "description": "HTTP/1.1 + JSON on the node's unix socket. Every error is an "
                                "Error document; its codes are the ErrorCode enum."},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": {"Error": {
                "description": "An error: what failed and what to do.",
                "content": {"application/json": {"schema": {"$ref": REF + "Error"}}},
            }},
        },
    }
