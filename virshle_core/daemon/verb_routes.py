"""The routes of the declared verbs (``virshle_core.verbs``): one per verb, made from its
declaration, and the route's common work: read the body, find the VM (its owner may act)
and hold its lock, refuse a state the verb does not act on, run the verb's function in a
worker thread, and send its reply. A node verb is for the node's admins.

A few verbs need a route of their own (``handler``): start (its VMM is then followed),
stop (a signal and a wait on the loop), rm, clone (progress lines), init and reload.
"""

from __future__ import annotations

import functools
from typing import Any

from .. import events
from ..errors import Conflict, UsageError, VirshleError
from ..log import logger
from ..verbs import Verb, _load
from ..wire import api
from . import access
from .http import Request, Response, json_response
from .openapi import Route

TRUE = ("1", "true", "yes")


class VerbRoutes:
    def __init__(self, owner: Any, verbs: list[Verb]):
        """``owner`` is the node's ``routes.Api``: its node, tracker, request bodies, and
        replies with progress."""
        self.owner = owner
        self.node = owner.node
        self.tracker = owner.tracker
        self.verbs = verbs

    def routes(self) -> list[Route]:
        return [Route(verb.method, verb.path, self._handler(verb), verb.summary,
                      response=verb.reply, body=verb.request, status=verb.status,
                      query=verb.query,
                      **({"stream_line": api.CloneLine, "content_type": "application/x-ndjson"}
                         if verb.handler == "clone" else {}))
                for verb in self.verbs]

    def _handler(self, verb: Verb):
        if verb.handler is not None:
            special = getattr(self, f"_{verb.handler}", None)
            own = special if special is not None else _load(verb.handler)

            async def handle(request: Request) -> Response:
                return await own(request, verb) if special is not None else await own(request, self.node)
            return handle

        async def common(request: Request) -> Response:
            return await self._common(request, verb)
        return common

    async def _request(self, request: Request, verb: Verb) -> Any:
        if verb.request is None:
            return None
        if not request.can_read_body:
            try:
                return verb.request()
            except TypeError:
                raise UsageError("the request needs a JSON body", code="no_body") from None
        return await self.owner.body(request, verb.request)

    async def _common(self, request: Request, verb: Verb) -> Response:
        body = await self._request(request, verb)
        params = {k: v for k, v in request.match_info.items() if k != "ref"}
        work = functools.partial(_load(verb.run), **params)
        if not verb.on_vm:
            access.check_admin(f"node {verb.name}", self.node.config.host.admin_group)
            result = await self.node.run_to_end(work, self.node.context, body)
            return self._reply(verb, result)
        arguments = (body,) if verb.request is not None else ()
        if verb.lock:
            async with self.node.locked(request.match_info["ref"]) as vm:
                if verb.plugin != "core":  # the core's functions check the live state themselves
                    _check_state(verb, vm)
                result = await self.node.run_to_end(work, self.node.context, vm, *arguments)
        else:
            vm = await self.node.find(request.match_info["ref"])
            result = await self.node.run_to_end(work, self.node.context, vm, *arguments)
        if verb.event and verb.plugin != "core":  # the core's functions announce their own
            events.emit(verb.event, self.node.name, vm=vm.to_json())
        return self._reply(verb, result)

    @staticmethod
    def _reply(verb: Verb, result: Any) -> Response:
        if isinstance(verb.reply, str) and verb.reply.startswith("list["):
            kind = api.wire.TYPES[verb.reply[5:-1]]
            return json_response(api.dump_list(kind, result), status=verb.status)
        cls = api.wire.TYPES[verb.reply] if isinstance(verb.reply, str) else verb.reply
        return json_response(api.dump(cls, result), status=verb.status)

    # --- the verbs with routes of their own ----------------------------------------------

    async def _start(self, request: Request, verb: Verb) -> Response:
        async with self.node.locked(request.match_info["ref"]) as vm:
            vm = await self.node.start(vm)
            await self.tracker.follow(vm)
        return json_response(api.dump(api.Vm, vm))

    async def _stop(self, request: Request, verb: Verb) -> Response:
        body = await self._request(request, verb)
        async with self.node.locked(request.match_info["ref"]) as vm:
            if vm.state in ("running", "paused") and self.tracker.following(vm.uuid):
                timeout = float(self.node.config.host.stop_timeout)
                vm, was_running = await self.stop_followed(vm, body.force, timeout, "stopping"), True
            else:
                vm, was_running = await self.node.stop(vm, body.force)
        return json_response(api.dump(api.StopResult, api.StopResult(vm=vm, was_running=was_running)))

    async def stop_followed(self, vm, force: bool, timeout: float, pending: str):
        """A signal (or the power button) and a wait on the exit its watch sees, on the loop:
        no thread waits; then what a stop leaves (NICs, state) is recorded."""
        state = vm.state
        try:
            await self.node.run(self.node.store.mark, vm, pending)
        except VirshleError as exc:
            if not force or exc.code != "no_space":
                raise
            logger.warning("VM {}: stopping it without its journal entry: {}", vm.name, exc.message)
        try:
            await self.tracker.stop(vm, force, timeout)
        except BaseException:
            await self.node.run(self.node.store.mark, vm, None)
            raise
        return await self.node.finish_stop(vm, state, force)

    async def _delete(self, request: Request, verb: Verb) -> Response:
        force = request.query.get("force", "").lower() in TRUE
        async with self.node.locked(request.match_info["ref"]) as vm:
            if force and vm.state in ("running", "paused") and self.tracker.following(vm.uuid):
                vm = await self.stop_followed(vm, True, 0, "deleting")
            await self.node.delete(vm, force)
        return json_response(api.dump(api.Vm, vm))

    async def _clone(self, request: Request, verb: Verb) -> Response:
        body = await self.owner.body(request, api.CloneRequest)
        async with self.node.locked(request.match_info["ref"]) as vm:
            return await self.owner.reply_with_progress(
                request, lambda flag, reporter: self.node.clone(vm, body, flag, reporter),
                api.CloneLine, lambda made: api.dump(api.Vm, made))

    async def _migrate(self, request: Request, verb: Verb) -> Response:
        from ..vm.migration import begin

        body = await self._request(request, verb)
        async with self.node.locked(request.match_info["ref"]) as vm:
            offer = await self.node.run_to_end(begin, self.node.context, vm, body)
        return json_response(offer.to_json())

    async def _init(self, request: Request, verb: Verb) -> Response:
        from .init import init_node

        access.check_admin("node init", self.node.config.host.admin_group)
        body = await self._request(request, verb)
        if body.force_new:
            raise Conflict("this daemon has the database open: it cannot be set aside now",
                           "Stop `virshle node serve`, then run `virshle node init --db --force-new`.",
                           code="daemon_running")
        done, warnings = await self.node.run_to_end(self.owner._with_notices, lambda: init_node(
            self.node.config, set(body.parts), self.node.name, False, self.node.store))
        root = str(self.node.config.host.root_path)
        response = json_response(api.NodeInitResult(root=root, done=done).to_json())
        if warnings:
            import json

            response.headers["X-Virshle-Warnings"] = json.dumps(warnings)
        return response

    async def _reload(self, request: Request, verb: Verb) -> Response:
        access.check_admin("node reload", self.node.config.host.admin_group)
        config = await self.node.run(self.node.reload)
        logger.info("configuration reloaded from {}", config.path or "the defaults")
        for message in config.warnings:
            logger.warning("{}", message)
        return json_response(api.ReloadResult(
            path=config.path, templates=[t.name for t in config.templates],
            warnings=list(config.warnings)).to_json())


def _check_state(verb: Verb, vm) -> None:
    """A VM in a state the verb does not act on is refused, naming the states it takes."""
    if verb.states is None or vm.state in verb.states or vm.state in verb.done:
        return
    wanted = " or ".join(verb.states)
    raise Conflict(f"VM {vm.name!r} is {vm.state}: `{verb.name}` acts on a {wanted} VM",
                   code="vm_not_running" if "running" in verb.states else "vm_running")
