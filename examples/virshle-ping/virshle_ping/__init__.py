"""An example of the daemon-side hooks: a verb, a route and a service, in one plugin.

- ``vm ping-guest NAME...`` (``--all``, ``--state``): a verb declared once. Its route
  (``POST /api/v1/vms/{ref}/ping-guest``), OpenAPI entry, ``NodeClient.ping_guest``,
  command on both command lines and bulk form come from the declaration. It asks the
  VM's console whether it is there (here: whether its console log grew), and says how
  long the node took to look.
- ``GET /api/v1/x/ping/pings``: how many pings this daemon answered.
- the ``counter`` service: counts the daemon's pings, and writes the count to
  ``<root>/ping-count`` every second while the daemon runs.

Nothing here runs in a command line's process but the declaration: the work is in
``work.py``, imported by the daemon when the verb first runs.
"""

from __future__ import annotations

from virshle_core import hookimpl
from virshle_core.models import ApiRoute, Service
from virshle_core.verbs import Option, Record, Verb


class PingReply(Record):
    """What ``ping-guest`` answers: whether the guest's console is there, and how long the
    node took to look."""

    vm: str
    answered: bool
    ms: float


@hookimpl
def virshle_verbs():
    return [Verb("ping-guest", "Ask whether a VM's guest is there (its serial console).",
                 help="A running VM only; --quiet-guest looks without logging it.",
                 examples=("virshle vm ping-guest web-1", "virshle vm ping-guest --all"),
                 states=("running", "paused"), run="virshle_ping.work:ping_guest", reply=PingReply,
                 request=PingRequest, bulk=True, doing="pinging", event="vm-pinged",
                 said="VM {vm} answered: {answered} (in {ms} ms).",
                 options=(Option("--quiet-guest", field="quiet", flag=True,
                                 help="Do not log the ping in the daemon's log."),))]


class PingRequest(Record):
    """The body of ``ping-guest``."""

    quiet: bool = False


@hookimpl
def virshle_routes():
    from .work import pings

    return [ApiRoute("GET", "/pings", pings, "How many pings this daemon answered.")]


@hookimpl
def virshle_services(node):
    from .work import counter

    return [Service("counter", counter)]
