"""The dashboard's HTTP server (aiohttp): who may come in, the pages, the forms."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from virshle_core.errors import UsageError, VirshleError

from . import fleet, live

HERE = Path(__file__).parent
COOKIE = "virshle_web"


def check_listen(listen: str, public: bool, cert: str | None, key: str | None) -> tuple[str, int]:
    """``HOST:PORT``, refused (exit 2) when it is not loopback without --listen-public and
    TLS: every VM of every node can be driven from this page."""
    import ipaddress

    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen must be HOST:PORT, not {listen!r}", "As 127.0.0.1:8080.",
                         code="bad_listen")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together", code="bad_listen")
    if not loopback and not (public and cert):
        raise UsageError(
            f"{host} is not a loopback address: the dashboard drives every VM of every node",
            "Serve it on 127.0.0.1 and reach it through an SSH tunnel (ssh -L 8080:127.0.0.1:8080),"
            " or give --listen-public with --tls-cert and --tls-key.", code="bad_listen")
    return host, int(port)


class Dashboard:
    def __init__(self, settings):
        import jinja2

        self.settings = settings
        self.token = secrets.token_urlsafe(24)
        self.sessions: dict[str, str] = {}  # cookie -> its CSRF token
        self.pages = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                        autoescape=True, trim_blocks=True, lstrip_blocks=True)
        self.events: live.Events | None = None

    # --- who may come in --------------------------------------------------------------

    @web.middleware
    async def guard(self, request: web.Request, handler) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given, self.token):
            session = secrets.token_urlsafe(24)
            self.sessions[session] = secrets.token_urlsafe(24)
            query = {k: v for k, v in request.query.items() if k != "token"}
            response = web.Response(status=303, headers={
                "Location": str(request.rel_url.with_query(query))})
            response.set_cookie(COOKIE, session, httponly=True, samesite="Strict",
                                secure=request.secure)
            return response
        session = request.cookies.get(COOKIE)
        if session not in self.sessions:
            return self.page("denied.html", status=401)
        request["csrf"] = self.sessions[session]
        if request.method == "POST":
            form = await request.post()
            if not hmac.compare_digest(str(form.get("csrf", "")), request["csrf"]):
                return self.page("denied.html", status=403, csrf=True)
            request["form"] = {k: str(v) for k, v in form.items()}
        return await handler(request)

    def page(self, name: str, status: int = 200, request: web.Request | None = None,
             **values: Any) -> web.Response:
        values.setdefault("csrf_token", request["csrf"] if request is not None else "")
        html = self.pages.get_template(name).render(**values)
        return web.Response(text=html, status=status, content_type="text/html")

    async def run(self, work, *args) -> Any:
        return await asyncio.to_thread(work, self.settings, *args)

    def failed(self, request: web.Request, exc: VirshleError, back: str) -> web.Response:
        """An error as the command line says it: the message, its hint, its code."""
        return self.page("error.html", status=exc.http_status, request=request,
                         message=exc.message, hint=exc.hint, code=exc.code, back=back)

    # --- pages ------------------------------------------------------------------------

    async def fleet_page(self, request: web.Request) -> web.Response:
        return self.page("fleet.html", request=request, nodes=await self.run(fleet.nodes))

    async def vms_page(self, request: web.Request) -> web.Response:
        q = request.query
        sort, descending = q.get("sort", "name"), q.get("order") == "desc"
        rows, failures = await self.run(fleet.vms, q.get("q", ""), q.get("state", ""), sort,
                                        descending)
        return self.page("vms.html", request=request, rows=rows, failures=failures,
                         text=q.get("q", ""), state=q.get("state", ""), states=fleet.STATES,
                         sort=sort, descending=descending, columns=fleet.COLUMNS)

    async def vm_page(self, request: web.Request) -> web.Response:
        node, uuid = request.match_info["node"], request.match_info["uuid"]
        try:
            shown = await self.run(fleet.vm_page, node, uuid)
        except VirshleError as exc:
            return self.failed(request, exc, "/vms")
        return self.page("vm.html", request=request, said=request.query.get("said", ""),
                         **shown)

    async def confirm_page(self, request: web.Request) -> web.Response:
        node, uuid, action = (request.match_info[k] for k in ("node", "uuid", "action"))
        return self.page("confirm.html", request=request, node=node, uuid=uuid, action=action,
                         what=fleet.DESTRUCTIVE.get(action, action),
                         snapshot=request.query.get("snapshot", ""))

    async def act(self, request: web.Request) -> web.Response:
        node, uuid, action = (request.match_info[k] for k in ("node", "uuid", "action"))
        form = request["form"]
        if action in fleet.DESTRUCTIVE and form.get("confirmed") != "yes":
            raise web.HTTPSeeOther(f"/vms/{node}/{uuid}/confirm/{action}")
        try:
            said = await self.run(fleet.act, node, uuid, action, form)
        except VirshleError as exc:
            return self.failed(request, exc, f"/vms/{node}/{uuid}")
        if action == "rm":
            raise web.HTTPSeeOther("/vms")
        if action == "migrate":
            node = form.get("to", node)
        raise web.HTTPSeeOther(request.app.router["vm"].url_for(node=node, uuid=uuid)
                               .with_query(said=said))

    async def create_page(self, request: web.Request) -> web.Response:
        return self.page("create.html", request=request, templates=await self.run(fleet.templates),
                         nodes=[c.name for c in self.settings.clients()], form={})

    async def create(self, request: web.Request) -> web.Response:
        form = request["form"]
        try:
            made = await self.run(fleet.create, form)
        except VirshleError as exc:
            return self.failed(request, exc, "/create")
        if len(made) == 1:
            raise web.HTTPSeeOther(f"/vms/{made[0].node}/{made[0].uuid}?said=Created.")
        raise web.HTTPSeeOther("/vms")

    async def console_page(self, request: web.Request) -> web.Response:
        return self.page("console.html", request=request, node=request.match_info["node"],
                         uuid=request.match_info["uuid"])

    async def console_socket(self, request: web.Request) -> web.StreamResponse:
        browser = web.WebSocketResponse()
        await browser.prepare(request)
        try:
            client = fleet.client_of(self.settings, request.match_info["node"])
            await live.console(browser, client, request.match_info["uuid"])
        except VirshleError as exc:
            await browser.send_str(f"\r\nError: {exc.message}\r\n")
        finally:
            await browser.close()
        return browser

    async def event_stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        queue = self.events.listen()
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 15)
                    await response.write(live.sse(event))
                except asyncio.TimeoutError:
                    await response.write(live.keepalive())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.events.listeners.discard(queue)
        return response

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard])
        app.router.add_get("/", self.fleet_page)
        app.router.add_get("/vms", self.vms_page)
        app.router.add_get("/vms/{node}/{uuid}", self.vm_page, name="vm")
        app.router.add_get("/vms/{node}/{uuid}/confirm/{action}", self.confirm_page)
        app.router.add_post("/vms/{node}/{uuid}/do/{action}", self.act)
        app.router.add_get("/vms/{node}/{uuid}/console", self.console_page)
        app.router.add_get("/vms/{node}/{uuid}/console/socket", self.console_socket)
        app.router.add_get("/create", self.create_page)
        app.router.add_post("/create", self.create)
        app.router.add_get("/events", self.event_stream)
        app.router.add_static("/static", HERE / "static")
        app.on_startup.append(self._start_events)
        app.on_shutdown.append(self._stop_events)
        return app

    async def _start_events(self, app: web.Application) -> None:
        self.events = live.Events(self.settings, asyncio.get_running_loop())
        self.events.start()

    async def _stop_events(self, app: web.Application) -> None:
        if self.events is not None:
            self.events.stop()


def serve(settings, host: str, port: int, cert: str | None, key: str | None) -> None:
    dashboard = Dashboard(settings)
    context = None
    if cert:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    scheme = "https" if context else "http"
    shown = f"[{host}]" if ":" in host else host
    print(f"Virshle web on {scheme}://{shown}:{port}/ ; open it with its token:\n"
          f"  {scheme}://{shown}:{port}/?token={dashboard.token}", flush=True)
    # the event streams stay open: a stop waits for them at most a moment
    web.run_app(dashboard.app(), host=host, port=port, ssl_context=context, print=None,
                access_log=None, handle_signals=True, shutdown_timeout=2)
    sys.stdout.flush()
