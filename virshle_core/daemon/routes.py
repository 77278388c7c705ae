"""The node's HTTP API: the route table and what each route does.

A route resolves its VM, locks it, and runs the work on the node (``node.py``); the
long-lived replies (events, console, logs) are in ``streams.py``. Every error becomes a
reply in the JSON error shape (docs/api.md).
"""

from __future__ import annotations

import asyncio
import re
import json
import time
from typing import Any, Callable

import blinker

from ..wire import api
from ..vm import lifecycle
from .. import progress
from ..errors import UsageError, VirshleError, cut
from ..log import logger
from . import access, nodeinfo
from .http import Handler, HTTPError, Request, Response, StreamResponse, json_response
from .node import Node
from .openapi import Route, openapi_document
from .streams import Streams
from .tracker import Tracker
from .moves import MoveRoutes
from .verb_routes import VerbRoutes

class Router:
    """Routes by method and path; ``{name}`` matches one path segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, str, re.Pattern, Handler, bool]] = []

    def add(self, method: str, path: str, handler: Handler, head: bool = False) -> None:
        """Route ``method path`` to ``handler``; ``head``: a GET answers HEAD too (its head)."""
        pattern = re.compile("^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")
        self._routes.append((method, path, pattern, handler, head and method == "GET"))

    def routes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _, _, _ in self._routes]

    def resolve(self, request: Request) -> Handler:
        allowed = False
        for method, path, pattern, handler, head in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method == request.method or (head and request.method == "HEAD"):
                request.match_info = match.groupdict()
                request.route = path
                return handler
            allowed = True
        if allowed:
            raise HTTPError(405, "method_not_allowed",
                            f"{request.method} is not allowed on {request.path}")
        raise HTTPError(404, "no_route", f"no route {request.method} {request.path}")



API = "/api/v1"
REQUEST_HANDLED = blinker.signal("request-handled")
"""Sent after each request with ``method``, ``route`` (its path template, as
``/api/v1/vms/{ref}``), ``status`` and ``seconds`` (for a stream: until it ended). Not an
event of ``GET /events``: the daemon's own observation, for the metrics plugin."""


class Api:
    def __init__(self, node: Node, tracker: Tracker | None = None, streams: Streams | None = None):
        self.node = node
        self.tracker = tracker or Tracker(node)  # live states, from the VMMs' own events
        self.streams = streams or Streams(node)
        streams = self.streams
        from ..verbs import every

        self.verb_routes = VerbRoutes(self, every())
        self.moves = MoveRoutes(self)
        self.routes = [
            Route("GET", "/node/ping", self.ping, "Is the daemon alive?", response=api.Pong),
            Route("GET", "/node/info", self.info, "Host health, reservations and saturation.",
                  response=api.NodeInfo),
            Route("GET", "/templates", self.templates, "The templates this node offers.",
                  response="list[Template]"),
            Route("GET", "/vms", self.list_vms, "The node's VMs, with live state and IPs.",
                  response="list[Vm]", query={"state": "Only VMs in this state."}),
            Route("POST", "/vms", self.create_vms, "Create VMs from a template (with "
                  "Accept: application/x-ndjson, progress lines and then the result).",
                  body=api.CreateRequest, response="list[Vm]", status=201,
                  stream_line=api.CreateLine, content_type="application/x-ndjson"),
            Route("GET", "/vms/{ref}", self.get_vm, "One VM, by id, name or uuid.",
                  response=api.Vm, query={"refresh": "Ask its hypervisor for its state (1/true).",
                                        "leases": "Ask the DHCP plugins for its addresses "
                                                  "(the default; 0/false leaves ips empty)."}),
            *self.verb_routes.routes(),
            *self.moves.routes(),
            Route("GET", "/vms/{ref}/console", streams.console, "The serial console: a WebSocket "
                  "carrying raw bytes both ways (binary messages).", response="ConsoleStream",
                  stream=True, status=101, content_type="application/octet-stream"),
            Route("GET", "/vms/{ref}/logs", streams.logs, "What the serial console printed.",
                  response="ConsoleLog", stream=True, content_type="text/plain",
                  query={"follow": "Keep the stream open and send new output (1/true)."}),
            Route("GET", "/events", streams.events, "Events as newline-delimited JSON, kept open.",
                  stream=True, stream_line=api.Event),
            Route("GET", "/openapi.json", self.openapi, "This document.", response="OpenApi"),
            *self.plugin_routes(),
        ]
        self.router = self.make_router()

    def plugin_routes(self) -> list[Route]:
        """The plugins' own routes (``virshle_routes``), each under ``/x/<plugin>``."""
        from ..hooks import plugins

        made = []
        for plugin, route in plugins().routes():
            made.append(Route(route.method, f"/x/{plugin}{route.path}", _plugin_handler(
                route.handler, self.node), route.summary or f"Plugin {plugin}'s route.",
                response="PluginReply", content_type=route.content_type))
        return made

    def make_router(self) -> Router:
        router = Router()
        for route in self.routes:
            router.add(route.method, API + route.path, route.handler, head=not route.stream)
        return router

    async def handle(self, request: Request) -> Response:
        """Route one request; every error becomes a reply in the JSON error shape; then
        announce it (``request-handled``: the metrics plugin counts it)."""
        started = time.perf_counter()
        response = await self._handle(request)
        REQUEST_HANDLED.send(self.node.name, method=request.method,
                             route=getattr(request, "route", None) or "(none)",
                             status=response.status, seconds=time.perf_counter() - started)
        return response

    async def _handle(self, request: Request) -> Response:
        state = request.connection_state
        if "caller" not in state:  # the peer of the socket, once per connection
            state["caller"] = access.peer(state.get("socket"), self.node.config.host.admin_group)
        access.CALLER.set(state["caller"])
        try:
            response = await self.router.resolve(request)(request)
        except VirshleError as exc:
            _log_refusal(request, exc.http_status, exc.code, exc.message)
            return json_response(exc.to_json(), status=exc.http_status)
        except HTTPError as exc:
            if exc.status in (404, 405) and not exc.hint:
                exc.hint = f"See {API}/openapi.json for the routes."
            _log_refusal(request, exc.status, exc.code, exc.message)
            return exc.response()
        except (asyncio.CancelledError, ConnectionError):
            logger.debug("{} {}: the client went away", request.method, cut(request.path))
            raise
        except Exception as exc:
            logger.opt(exception=True).error("{} {} failed", request.method, request.path)
            return error_response(500, "internal", f"{type(exc).__name__}: {exc}",
                                  "This is a bug in Virshle or a plugin; the daemon log has the traceback.")
        logger.debug("{} {} -> {}", request.method, request.path_qs, response.status)
        if self.node.id and not isinstance(response, StreamResponse):
            response.headers["X-Virshle-Node-Id"] = self.node.id  # two config entries, one daemon?
        return response

    async def body(self, request: Request, cls: type) -> Any:
        if not request.can_read_body:
            raise UsageError("the request needs a JSON body", code="no_body")
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"the body is not valid JSON: {exc}", code="bad_json") from None
        except RecursionError:
            raise UsageError("the body is not valid JSON: it is nested too deeply",
                             code="bad_json") from None
        if not isinstance(data, dict):
            raise UsageError("the body must be a JSON object", code="bad_body")
        try:
            return cls.from_json(data, strict=True)
        except api.WireError as exc:
            raise UsageError(
                "bad request body: " + "; ".join(exc.problems),
                f"Fields accepted: {', '.join(cls.field_names())}.",
                code="bad_body",
            ) from None

    def _vm_json(self, vms: list, refresh: bool = False, leases: bool = True) -> list[dict]:
        """The VMs as JSON, with their leases unless ``leases`` is False; states come from
        the store (the tracker keeps them), asked from the VMM only when ``refresh`` says so."""
        if refresh:
            for vm in vms:
                if not self.node.busy(vm.uuid):
                    lifecycle.refresh(self.node.context, vm)
        if leases:
            lifecycle.with_ips(self.node.context, vms)
        return api.dump_list(api.Vm, vms)

    async def ping(self, request: Request) -> Response:
        from .. import __version__

        cordoned = self.node.store is not None and bool(self.node.store.setting(nodeinfo.CORDON))
        return json_response(api.Pong(pong=True, node=self.node.name, version=__version__,
                                      id=self.node.id or None, cordoned=cordoned).to_json())

    async def info(self, request: Request) -> Response:
        info = await self.node.run(nodeinfo.collect, self.node.context, self.node.store)
        return json_response(info.to_json())

    async def templates(self, request: Request) -> Response:
        return json_response([t.to_json() for t in self.node.config.templates])

    async def list_vms(self, request: Request) -> Response:
        state = request.query.get("state")
        unknown = set(request.query) - {"state"}
        if unknown:
            raise UsageError(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
        if state is not None and state not in api.STATES:
            raise UsageError(f"unknown state {state!r}", f"States: {', '.join(api.STATES)}.",
                             code="bad_state")
        vms, warnings = await self.node.run(self._with_notices, lambda: self._vm_json(
            [vm for vm in self.node.store.all() if access.may_see(vm.owner_uid)]))
        if state:
            vms = [vm for vm in vms if vm["state"] == state]
        return json_response(vms, headers=_warning_headers(warnings))

    @staticmethod
    def _with_notices(func: Callable) -> tuple[Any, list[str]]:
        from .. import notices

        collected = notices.collect()
        try:
            return func(), list(collected)
        finally:
            notices.stop_collecting()

    async def create_vms(self, request: Request) -> Response:
        create = await self.body(request, api.CreateRequest)
        return await self.reply_with_progress(
            request, lambda flag, reporter: self.node.create(create, flag=flag, reporter=reporter),
            api.CreateLine, lambda vms: api.dump_list(api.Vm, vms))

    async def reply_with_progress(self, request: Request, work: Callable, line: type,
                                  dump: Callable) -> Response:
        """Run ``work(flag, reporter)`` (a create, a clone) and reply 201 with what it made;
        a client that accepts NDJSON gets progress lines while it waits, then a ``line``
        with the ``result`` or the ``error``. A client that goes away cancels the work,
        which undoes itself before this returns."""
        flag = progress.CancelFlag()
        if "application/x-ndjson" not in request.headers.get("Accept", ""):
            return json_response(dump(await work(flag, None)), status=201)
        response = StreamResponse(status=201, headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue = asyncio.Queue()

        def reporter(what: str, done: int, total: int) -> None:
            progress_line = line(progress=api.Progress(what=what, done=done, total=total))
            loop.call_soon_threadsafe(lines.put_nowait, progress_line)

        task = asyncio.ensure_future(work(flag, progress.Throttled(reporter)))
        try:
            while not task.done() or not lines.empty():
                getter = asyncio.ensure_future(lines.get())
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    await response.write(json.dumps(_compact(getter.result().to_json())).encode() + b"\n")
                else:
                    getter.cancel()
        except (asyncio.CancelledError, ConnectionError):
            # the client went away: the work stops and undoes itself before we return
            flag.cancel(self.node.why_cancelled())
            await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # nobody is left to tell: retrieved, so asyncio need not say it
            raise
        try:
            final = line(result=task.result())  # the node's VMs, written as api.Vm
        except VirshleError as exc:
            final = line(error=api.Error.from_json(exc.to_json()), status=exc.http_status)
        except Exception as exc:
            logger.opt(exception=True).error("{} {} failed", request.method, request.path)
            final = line(error=api.Error(error="internal", message=f"{type(exc).__name__}: {exc}",
                                         hint=""), status=500)
        await response.write(json.dumps(_compact(final.to_json())).encode() + b"\n")
        await response.write_eof()
        return response

    async def get_vm(self, request: Request) -> Response:
        vm = await self.node.find(request.match_info["ref"])
        refresh = request.query.get("refresh", "").lower() in ("1", "true", "yes")
        leases = request.query.get("leases", "1").lower() not in ("0", "false", "no")
        documents, warnings = await self.node.run(
            self._with_notices, lambda: self._vm_json([vm], refresh=refresh, leases=leases))
        return json_response(documents[0], headers=_warning_headers(warnings))

    async def openapi(self, request: Request) -> Response:
        from .. import __version__

        return json_response(openapi_document(self.routes, API, __version__))


def _plugin_handler(handler: Callable, node: Node) -> Callable:
    """A plugin route's handler as the router calls it: its answer (a ``Reply``, or a dict or
    list sent as JSON) made a response."""
    async def handle(request: Request) -> Response:
        from ..models import Reply

        answer = await handler(request, node)
        if isinstance(answer, Reply):
            body = answer.body
            if not isinstance(body, (bytes, str)):
                return json_response(body, status=answer.status)
            body = body.encode() if isinstance(body, str) else body
            return Response(body, answer.status, content_type=answer.content_type)
        return json_response(answer)
    return handle


def _log_refusal(request, status: int, code: str, message: str) -> None:
    """One line for a request the node refused: an error of the client's (4xx) is INFO, the
    node's own (5xx) a WARNING; neither is a crash, so neither has a traceback."""
    level = "WARNING" if status >= 500 else "INFO"
    logger.log(level, "{} {} -> {} {}: {}", request.method, cut(request.path), status, code, message)


def _warning_headers(warnings: list[str]) -> dict[str, str]:
    return {"X-Virshle-Warnings": json.dumps(warnings)} if warnings else {}


def error_response(status: int, code: str, message: str, hint: str = "") -> Response:
    return json_response(api.Error(error=code, message=message, hint=hint).to_json(), status=status)


def _compact(line: dict) -> dict:
    """A create's stream line with only the keys it carries."""
    return {key: value for key, value in line.items() if value is not None}
