"""Typed calls of the hooks, the way the core makes them (tox's ``Plugin`` facade).

``plugins().net_attach(vm=vm, net=net, node=node)`` returns a ``NetAttachment`` or None,
where ``hook().virshle_net_attach(...)`` returned ``Any``: the contract each hookspec
states (``hookspecs``) is written once, here, for every call site. ``implementers``
names the plugins that implement a hook, for messages such as "Hypervisor plugins: qemu".

``VIRSHLE_TRACE_HOOKS=1`` logs every hook call, its implementations and its time on
stderr (``plugins.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import click
    import pluggy

    from ..wire.api import Snapshot
    from ..config import TemplateDisk, VmTemplate
    from ..models import (ApiRoute, ClonedDisk, ConsoleEndpoint, Disk, GuestLogin, Lease, Net,
                          NetAttachment, NodeCandidate, NodeContext, Service, Vm, VmmHandle,
                          VmStats, VmWatch)


class Hooks:
    def __init__(self, manager: "pluggy.PluginManager"):
        self._manager = manager
        self._hook = manager.hook

    def implementers(self, name: str) -> list[str]:
        """The plugins implementing hook ``name`` (``net_attach`` or ``virshle_net_attach``),
        the core's fallbacks left out."""
        caller = getattr(self._hook, name if name.startswith("virshle_") else f"virshle_{name}")
        return sorted({self._manager.get_name(impl.plugin) or "?"
                       for impl in caller.get_hookimpls()} - {"core"})

    # --- start-up ----------------------------------------------------------------------

    def config_sections(self, register: Callable[[str, type], None]) -> None:
        self._hook.virshle_config_sections(register=register)

    def register_commands(self, cli: "click.Group") -> None:
        self._hook.virshle_register_commands(cli=cli)

    def node_init(self, node: "NodeContext", parts: frozenset[str]) -> None:
        self._hook.virshle_node_init(node=node, parts=parts)

    def node_gc(self, node: "NodeContext", dry_run: bool) -> list[str]:
        """Every plugin's lines of what it removed (or would, with ``dry_run``)."""
        return [line for lines in self._hook.virshle_node_gc(node=node, dry_run=dry_run)
                for line in lines or ()]

    def node_info(self, node: "NodeContext") -> list[dict[str, Any]]:
        """Every plugin's extra health fields, in call order (the first writer of a key wins)."""
        return [extra for extra in self._hook.virshle_node_info(node=node) if extra]

    # --- placement and creation ----------------------------------------------------------

    def choose_node(self, candidates: list["NodeCandidate"], template_name: str | None) -> str | None:
        return self._hook.virshle_choose_node(candidates=candidates, template_name=template_name,
                                              template=template_name)

    def pre_create(self, vm: "Vm", template: "VmTemplate", node: "NodeContext") -> None:
        self._hook.virshle_pre_create(vm=vm, template=template, node=node)

    def disk_clone(self, source: str, dest: str, disk: "TemplateDisk", node: "NodeContext"
                   ) -> "ClonedDisk | dict[str, Any] | None":
        return self._hook.virshle_disk_clone(source=source, dest=dest, disk=disk, node=node)

    def provision(self, vm: "Vm", template: "VmTemplate", node: "NodeContext") -> list["Disk"]:
        """The disks every provisioning plugin made, in call order."""
        return [disk for answer in self._hook.virshle_provision(vm=vm, template=template, node=node)
                for disk in answer or []]

    def post_delete(self, vm: "Vm", node: "NodeContext") -> None:
        self._hook.virshle_post_delete(vm=vm, node=node)

    # --- networks --------------------------------------------------------------------------

    def net_attach(self, vm: "Vm", net: "Net", node: "NodeContext") -> "NetAttachment | None":
        return self._hook.virshle_net_attach(vm=vm, net=net, node=node)

    def net_detach(self, vm: "Vm", net: "Net", attachment: "NetAttachment | None",
                   node: "NodeContext") -> bool | None:
        return self._hook.virshle_net_detach(vm=vm, net=net, attachment=attachment, node=node)

    def lease_query(self, vms: list["Vm"], node: "NodeContext") -> list["Lease"]:
        """Every DHCP plugin's leases for these VMs, together."""
        return [lease for answer in self._hook.virshle_lease_query(vms=vms, node=node)
                for lease in answer or []]

    # --- hypervisors -------------------------------------------------------------------------

    def hypervisor(self, wanted: str, node: "NodeContext") -> str | None:
        return self._hook.virshle_hypervisor(wanted=wanted, node=node)

    def start(self, vm: "Vm", attachments: list["NetAttachment"],
              node: "NodeContext") -> "VmmHandle | None":
        return self._hook.virshle_start(vm=vm, attachments=attachments, node=node)

    def stop(self, vm: "Vm", force: bool, node: "NodeContext") -> bool | None:
        return self._hook.virshle_stop(vm=vm, force=force, node=node)

    def vm_state(self, vm: "Vm", node: "NodeContext") -> str | None:
        return self._hook.virshle_vm_state(vm=vm, node=node)

    def vm_watch(self, vm: "Vm", node: "NodeContext") -> "VmWatch | None":
        return self._hook.virshle_vm_watch(vm=vm, node=node)

    def console(self, vm: "Vm", node: "NodeContext") -> "ConsoleEndpoint | None":
        return self._hook.virshle_console(vm=vm, node=node)

    def vm_control(self, vm: "Vm", action: str, force: bool, node: "NodeContext") -> bool | None:
        return self._hook.virshle_vm_control(vm=vm, action=action, force=force, node=node)

    # --- disks and snapshots -----------------------------------------------------------------

    def snapshot(self, vm: "Vm", action: str, snapshot: "Snapshot", node: "NodeContext"
                 ) -> bool | None:
        return self._hook.virshle_snapshot(vm=vm, action=action, snapshot=snapshot, node=node)

    def disk_resize(self, vm: "Vm", disk: "Disk", size: int, node: "NodeContext") -> int | None:
        return self._hook.virshle_disk_resize(vm=vm, disk=disk, size=size, node=node)

    def disk_copy(self, vm: "Vm", disk: "Disk", dest: str, node: "NodeContext"
                  ) -> "ClonedDisk | None":
        return self._hook.virshle_disk_copy(vm=vm, disk=disk, dest=dest, node=node)

    # --- moving a VM between nodes -------------------------------------------------------

    def net_types(self, node: "NodeContext") -> set[str]:
        """The net types the plugins that declare theirs attach, merged."""
        return {kind for kinds in self._hook.virshle_net_types(node=node) for kind in kinds or ()}

    def migration_support(self, vm: "Vm", node: "NodeContext") -> str | None:
        return self._hook.virshle_migration_support(vm=vm, node=node)

    def migration_receive(self, vm: "Vm", attachments: list["NetAttachment"],
                          node: "NodeContext") -> dict[str, str] | None:
        return self._hook.virshle_migration_receive(vm=vm, attachments=attachments, node=node)

    def migration_send(self, vm: "Vm", sockets: dict[str, str], node: "NodeContext"
                       ) -> dict | None:
        return self._hook.virshle_migration_send(vm=vm, sockets=sockets, node=node)

    def migration_end(self, vm: "Vm", side: str, outcome: str, node: "NodeContext"
                      ) -> bool | None:
        return self._hook.virshle_migration_end(vm=vm, side=side, outcome=outcome, node=node)

    def discover_nodes(self, config: Any, probe: bool = False) -> list | None:
        """Every catalogue's nodes, one per node id; None when no catalogue is configured."""
        answers = [a for a in self._hook.virshle_discover_nodes(config=config, probe=probe)
                   if a is not None]
        if not answers:
            return None
        found, ids = [], set()
        for node in (node for answer in answers for node in answer):
            if node.id is None or node.id not in ids:
                ids.add(node.id)
                found.append(node)
        return found

    def service_after(self, config: Any) -> list[str]:
        """Every plugin's units for the service's ``After=``, in order, once each."""
        units: list[str] = []
        for answer in self._hook.virshle_service_after(config=config):
            units += [unit for unit in answer or [] if unit not in units]
        return units

    def vm_stats(self, vm: "Vm", node: "NodeContext") -> "VmStats | None":
        return self._hook.virshle_vm_stats(vm=vm, node=node)

    # --- logging in to a guest ----------------------------------------------------------

    def guest_login(self, vm: "Vm", console: str) -> "GuestLogin | None":
        return self._hook.virshle_guest_login(vm=vm, console=console)

    # --- extending the daemon and the command line ---------------------------------------

    def verbs(self) -> list[Any]:
        """Every plugin's verbs (``virshle_core.verbs.Verb``), each stamped with the plugin
        that declared it."""
        found = []
        for impl in self._hook.virshle_verbs.get_hookimpls():
            for verb in impl.function() or ():
                verb.plugin = self._manager.get_name(impl.plugin) or "?"
                found.append(verb)
        return found

    def routes(self) -> list[tuple[str, "ApiRoute"]]:
        """Every plugin's own routes, with the plugin's name (their prefix)."""
        return [(self._manager.get_name(impl.plugin) or "?", route)
                for impl in self._hook.virshle_routes.get_hookimpls()
                for route in impl.function() or ()]

    def services(self, node: Any) -> list[tuple[str, "Service"]]:
        """Every plugin's services for the daemon of ``node``, with the plugin's name."""
        return [(self._manager.get_name(impl.plugin) or "?", service)
                for impl in self._hook.virshle_services.get_hookimpls()
                for service in impl.function(node=node) or ()]
