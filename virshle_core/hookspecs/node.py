"""Node hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .marker import hookspec

if TYPE_CHECKING:
    from ..config import Config, DiscoveredNode
    from ..models import NodeCandidate, NodeContext


@hookspec
def virshle_node_init(node: NodeContext, parts: frozenset[str]) -> None:
    """Prepare the host for this plugin; must be idempotent.

    Called by ``virshle node init`` (``--net``, ``--all``...) in the process that
    runs it; all implementations are called. Create what is missing (a bridge, a
    directory), repair what drifted, and reap orphans that are provably yours
    (never touch what another program made).

    :param node: the local node.
    :param parts: the parts asked for, a subset of ``{"dir", "db", "net"}``;
        network plugins act only when ``"net"`` is in it.
    :returns: nothing. Raise ``VirshleError`` to report a failure.

    Example::

        @hookimpl
        def virshle_node_init(node, parts):
            if "net" in parts:
                ensure_bridge(node.section("ovs").bridge)
    """


@hookspec
def virshle_discover_nodes(config: Config, probe: bool) -> list[DiscoveredNode] | None:
    """List the nodes a catalogue knows, beside the configuration's ``[[node]]`` entries.

    Called by the command line (and ``virshle web``) when it needs the managed nodes,
    once per command; the answers of every plugin are put together: a node two
    catalogues list (the same id) counts once, and a ``[[node]]`` entry of the same name
    or URL wins over a discovered one. With discovered nodes and no ``[[node]]`` entry,
    there is no implicit local node.

    Never hang: give up on your catalogue after a few seconds, say so in one line
    (``virshle_core.cli.render.warn``) and answer from a cache, saying it is cached.
    Refuse entries you cannot trust (a ``unix://`` URL from a remote catalogue).

    :param config: the command line's configuration (``config.section(...)``: your table,
        conventionally ``[discovery.<name>]``).
    :param probe: only say whether you are configured, without any I/O: return ``[]``
        if so (the command line then never answers from the fast path), None if not.
    :returns: the nodes (``virshle_core.config.DiscoveredNode``: name, url, weight,
        labels, and ``source``, ``id``, ``seen``, ``cached``), or None when your
        catalogue is not configured.

    Example::

        @hookimpl
        def virshle_discover_nodes(config, probe):
            if not config.section("discovery.file"):
                return None
            return [] if probe else [DiscoveredNode(name=n, url=u, source="file")
                                     for n, u in read_my_file()]
    """


@hookspec
def virshle_service_after(config: Config) -> list[str] | None:
    """Name the systemd units the node daemon's service must start after.

    Called by ``virshle node init --systemd`` when it writes ``virshle.service``; the
    answers of every plugin are merged into its ``After=`` line, beside
    ``network-online.target``. Name a unit only when this node's configuration uses the
    service it runs (ordering does not start it).

    :param config: the node's configuration (``config.section("dhcp.kea")``: a
        plugin's table, None when absent).
    :returns: unit names (``"kea-ctrl-agent.service"``), or None.

    Example::

        @hookimpl
        def virshle_service_after(config):
            return ["kea-ctrl-agent.service"] if config.section("dhcp.kea") else None
    """


@hookspec
def virshle_node_gc(node: NodeContext, dry_run: bool) -> list[str] | None:
    """Remove the strays that look like yours but that no node owns (``virshle node gc``).

    ``node init`` and reconcile reap only what carries this node's mark; what
    looks like Virshle's without any node's mark (made by a Virshle older than
    the marks, or by hand) is only reported. The operator removes it, on
    purpose, with ``node gc``; ``--dry-run`` asks what would go. Never remove
    what another node marked: it may be alive on the same host. All
    implementations are called.

    :param node: the local node (``node.id`` is its mark).
    :param dry_run: say what you would remove, and remove nothing.
    :returns: one line per object removed (or that would be), such as
        ``"tap vm3n0 (no node's mark)"``; None or ``[]`` when there is none.

    Example::

        @hookimpl
        def virshle_node_gc(node, dry_run):
            strays = find_strays(node)
            if not dry_run:
                for name in strays:
                    remove(name)
            return [f"tap {name}" for name in strays]
    """


@hookspec
def virshle_node_info(node: NodeContext) -> dict[str, Any] | None:
    """Extra health fields for ``node info`` and ``node ls --all --json``.

    Every implementation is called and the dictionaries are merged into the
    node info document under ``"plugins"``: the first writer of a key wins
    (pluggy calls the plugin registered last first). Keep it fast: it runs for
    every ``node info``.

    :param node: the local node.
    :returns: a JSON-serialisable dictionary, or None.

    Example::

        @hookimpl
        def virshle_node_info(node):
            return {"ovs": {"bridge": "br0", "ports": 12}}
    """


@hookspec(firstresult=True, warn_on_impl_args={"template": DeprecationWarning(
    "virshle_choose_node's parameter `template` is called `template_name` since 0.2; "
    "`template` goes in the next release")})
def virshle_choose_node(
    candidates: list[NodeCandidate], template_name: str | None, template: str | None
) -> str | None:
    """Choose the node a new VM goes to when ``vm create`` has no ``--node``.

    Runs in the command line's process, once per VM: ``vm create -n 10`` asks ten
    times, and each time the candidates show what the command placed already (each
    node's ``in_flight``, and its ``info["templates"][name]["room"]`` lowered by as
    many; a node with no room left says ``fits: False``). A count the nodes together
    have no room for is refused before the hook is asked. The ``lb`` plugin answers
    with a weighted random choice among the online, unsaturated candidates that fit;
    mark an implementation ``tryfirst=True`` to override it.

    Stops at first non-None result.

    :param candidates: every managed node, online or not (``status``: ``online``;
        ``cordoned`` for one set aside with ``node cordon``, which gets no new VM), with its
        ``node info`` document as a dict (``info["templates"]`` says which
        templates it offers and whether each fits). Set ``candidate.refused``
        to say why you would not choose a node: the user reads it when no
        node was chosen. ``info["templates"]`` gives, for each template,
        ``fits``, ``reason`` and ``room`` (how many more the node admits; None when
        no limit binds).
    :param template: the same name, under the parameter's first name: kept for plugins
        written against it, which load and run, with a ``DeprecationWarning`` (docs/
        plugins.md, "Compatibility of hook signatures").
    :param template_name: the name of the VM's template, a name only.
        Templates belong to the nodes (each its own ``config.toml``): the
        command line that places a VM does not hold them, only what each
        node says of them.
    :returns: the chosen node's name, or None to let another plugin choose.

    Example::

        @hookimpl(tryfirst=True)
        def virshle_choose_node(candidates):
            online = [c for c in candidates if c.status == "online" and not c.saturated]
            return min(online, key=lambda c: c.info["saturation"]).name if online else None
    """
