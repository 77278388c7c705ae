"""Migration hooks: what a node must know to take a VM from another (its net types), and
how a hypervisor moves a running guest (``vm migrate --live``).

A cold migration needs no hypervisor: the core copies the stopped VM's files. A live one
follows libvirt's shape: the target starts the VMM waiting for the guest
(``virshle_migration_receive``), the source streams its writable disks and memory
(``virshle_migration_send``), and each side ends its part
(``virshle_migration_end``). The streams go through unix sockets on each node; the core
carries them between the nodes (through the command line's connections, or directly).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .marker import hookspec

if TYPE_CHECKING:
    from ..models import NetAttachment, NodeContext, Vm


@hookspec
def virshle_net_types(node: NodeContext) -> list[str] | None:
    """The net types (``[template.vm.net.type.*]``) this plugin attaches.

    Every implementation is called and the lists are merged. A node refuses to take a
    migrating VM whose net type none of its plugins names, before any byte moves; when
    a plugin that attaches nets does not implement this hook, the node cannot tell and
    does not refuse.

    :param node: the local node.
    :returns: the net types, e.g. ``["tap"]``.

    Example::

        @hookimpl
        def virshle_net_types(node):
            return ["tap"]
    """


@hookspec(firstresult=True)
def virshle_migration_support(vm: Vm, node: NodeContext) -> str | None:
    """Whether this plugin can move ``vm`` while it runs.

    Asked on the source before a live migration begins, and on the target before it
    takes the VM. Return None when ``vm.hypervisor`` is not yours, ``""`` when you can
    move it live, or the reason you cannot (the user reads it: say what to do instead).

    Stops at first non-None result.

    :param vm: the VM to move.
    :param node: the local node (the source or the target).
    :returns: None, ``""`` or a reason.

    Example::

        @hookimpl
        def virshle_migration_support(vm, node):
            if vm.hypervisor != "mine":
                return None
            return "mine cannot copy local disks while a guest runs: migrate it stopped"
    """


@hookspec(firstresult=True)
def virshle_migration_receive(vm: Vm, attachments: list[NetAttachment],
                              node: NodeContext) -> dict[str, str] | None:
    """Start the VMM of ``vm`` on the target, waiting for a running guest.

    Called on the target with the VM's directory in place: its writable disks exist
    (a qcow2 overlay on the same base image, or an empty file of the same size), its
    other files were copied, its NICs are attached (``attachments``, with their MACs).
    The guest must not run here until ``virshle_migration_end(side="target",
    outcome="done")``.

    Stops at first non-None result.

    :param vm: the incoming VM, as the target will own it.
    :param attachments: its NICs on this node.
    :param node: the target node.
    :returns: the unix socket each stream goes to, by channel: ``memory``, and
        ``disk:<name>`` for each writable disk the source copies while the guest runs;
        None when ``vm.hypervisor`` is not yours.

    Example::

        @hookimpl
        def virshle_migration_receive(vm, attachments, node):
            if vm.hypervisor != "mine":
                return None
            start_waiting(vm, attachments)
            return {"memory": f"{vm.dir}/incoming.sock"}
    """


@hookspec(firstresult=True)
def virshle_migration_send(vm: Vm, sockets: dict[str, str], node: NodeContext) -> dict | None:
    """Copy a running guest to the target: its writable disks, then its memory.

    Called on the source once the target's ``virshle_migration_receive`` answered.
    ``sockets`` has, for each of the target's channels, a unix socket on this node that
    the core carries to the target's socket. Report progress with
    ``virshle_core.progress.report(phase, done, total)`` (``phase``: ``disks``,
    ``memory`` or ``switch-over``). Return once the target holds everything and the
    guest is paused here; raise ``VirshleError`` when the copy failed (the guest must
    then still run here).

    Stops at first non-None result.

    :param vm: the running VM.
    :param sockets: the local end of each stream, by channel.
    :param node: the source node.
    :returns: figures: ``downtime_ms`` and ``total_ms`` as the hypervisor measured them,
        and ``bytes`` sent.

    Example::

        @hookimpl
        def virshle_migration_send(vm, sockets, node):
            if vm.hypervisor != "mine":
                return None
            return send(vm, sockets["memory"])
    """


@hookspec(firstresult=True)
def virshle_migration_end(vm: Vm, side: str, outcome: str, node: NodeContext) -> bool | None:
    """End one side of a live migration.

    - ``side="target", outcome="done"``: the guest is all here; let it run.
    - ``side="target", outcome="abort"``: end the VMM that waited (the source keeps the guest).
    - ``side="source", outcome="done"``: the target runs the guest; end the paused VMM here.
    - ``side="source", outcome="abort"``: stop copying and let the guest run on here
      (it may have been paused at the switch-over).

    Called again after a daemon restart when a migration was cut short: do what is left
    and do not fail when there is nothing (the VMM is gone).

    Stops at first non-None result.

    :param vm: the VM.
    :param side: ``source`` or ``target``.
    :param outcome: ``done`` or ``abort``.
    :param node: the local node.
    :returns: True when done; None when ``vm.hypervisor`` is not yours.

    Example::

        @hookimpl
        def virshle_migration_end(vm, side, outcome, node):
            if vm.hypervisor != "mine":
                return None
            (resume if (side, outcome) in (("target", "done"), ("source", "abort")) else end)(vm)
            return True
    """
