"""Hooks that extend the daemon and the command line: new verbs, routes, services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .marker import hookspec

if TYPE_CHECKING:
    from ..models import ApiRoute, Service


@hookspec
def virshle_verbs() -> list[Any] | None:
    """Declare verbs on a VM (or on the node), with the core's own class.

    A verb is one declaration (``virshle_core.verbs.Verb``): its name, help and
    examples, its request and reply classes (``virshle_core.wire.record.Record``
    subclasses), the states it acts on, and ``run``, the ``module:function`` the
    daemon calls as ``function(node, vm, request, **params)`` in a worker thread,
    the VM locked. From it come its route (``POST /api/v1/vms/{ref}/<name>`` unless
    ``path`` says otherwise) and OpenAPI entry, its ``NodeClient`` method, its
    command on both command lines (with ``--all``/``--state``/several names when
    ``bulk``), and its row in ``docs/api.md``. A name or route the core (or an
    earlier plugin) has is refused with a warning. All implementations are called,
    in every process that loads plugins: keep it cheap (import your work in
    ``run``'s module, not here).

    :returns: the plugin's verbs (``virshle_core.verbs.Verb``), or None.

    Example::

        @hookimpl
        def virshle_verbs():
            return [Verb("ping-guest", "Ask a running guest whether it answers.",
                         examples=("virshle vm ping-guest web-1",), states=("running",),
                         run="virshle_hello.work:ping_guest", bulk=True, doing="pinging",
                         said="VM {vm} answered in {ms} ms.", reply=PingReply)]
    """


@hookspec
def virshle_routes() -> list[ApiRoute] | None:
    """Serve routes of your own on the node's API, under ``/api/v1/x/<plugin>/``.

    Called once by the daemon, never by a command line. Each route's handler is
    an ``async def handler(request, node)`` run on the daemon's event loop: it
    must not block (``node`` is the daemon's node, as ``virshle_services`` gets it:
    ``await node.run(function, ...)`` runs blocking work in a worker thread). ``request`` has ``method``, ``path``, ``query``, ``headers``,
    ``match_info`` (the ``{name}`` parts of the path) and ``await
    request.json()``; return a ``virshle_core.models.Reply`` (a body, a status, a
    content type) or a JSON-able dict or list. Errors raised as ``VirshleError``
    become the API's JSON error replies. The route is listed in the OpenAPI
    document with its ``summary``; the owner checks of VMs apply if you find
    them with ``await node.find(ref)``.

    :returns: the routes (``virshle_core.models.ApiRoute``), paths relative to the
        plugin's prefix, or None.

    Example::

        @hookimpl
        def virshle_routes():
            async def hello(request, node):
                return {"hello": node.name}
            return [ApiRoute("GET", "/hello", hello, "Say hello.")]
    """


@hookspec
def virshle_services(node: Any) -> list[Service] | None:
    """Long-running work of your own in the node daemon (an exporter, a heartbeat).

    Called by ``virshle node serve`` once the node is ready, never by a command
    line. Each service's ``run`` is an ``async def run(node)`` started as a task
    on the daemon's loop; it is cancelled when the daemon stops (clean up in a
    ``finally``). A service that fails is logged and not restarted; the daemon
    goes on.

    :param node: the daemon's node: ``name``, ``config``, ``store``, ``context`` (the
        ``NodeContext`` other hooks get), ``await node.run(function, *args)`` (a worker
        thread) and ``await node.find(ref)``.
    :returns: the services (``virshle_core.models.Service``), or None.

    Example::

        @hookimpl
        def virshle_services(node):
            async def beat(node):
                while True:
                    await asyncio.sleep(10)
                    logger.debug("node {} is alive", node.name)
            return [Service("heartbeat", beat)]
    """
