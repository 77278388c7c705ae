"""The whole plugin contract: every hook Virshle calls, typed and documented.

Hooks are plain synchronous functions. Call them with keyword arguments.
The daemon runs them in a worker thread and serialises operations on one VM,
so an implementation may block (run a command, wait for a socket).

"Owner" hooks are ``firstresult``: the first implementation that returns
something other than ``None`` answers, so an implementation returns ``None``
for objects that are not its own (another net type, another hypervisor).
"Merged" hooks collect every implementation's answer.

Write an implementation with ``from virshle_core import hookimpl``, and
declare only the arguments you use: pluggy passes arguments by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    import click

    from .config import VmTemplate, TemplateDisk
    from .models import (
        ClonedDisk,
        ConsoleEndpoint,
        Disk,
        Lease,
        Net,
        NetAttachment,
        NodeCandidate,
        NodeContext,
        Vm,
        VmmHandle,
        VmWatch,
    )

hookspec = pluggy.HookspecMarker("virshle")

# ---------------------------------------------------------------------------
# Start-up hooks: called in every process that loads plugins (CLI and daemon)
# ---------------------------------------------------------------------------


@hookspec
def virshle_config_sections(register: Callable[[str, type], None]) -> None:
    """Declare the plugin's own configuration tables.

    Called before the configuration file is read. A table registered here
    is validated as strictly as the core's own: unknown keys and wrong types
    are configuration errors with their line. Read it back with
    ``node.config.section(name)``; a missing table gives the class's defaults.

    :param register: call ``register("dhcp.kea", KeaConfig)`` with the dotted
        table name and an attrs class whose fields all have defaults.
    :returns: nothing.
    """


@hookspec
def virshle_register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``virshle`` command line.

    Called once, after every core command exists. A command whose name is
    already taken is refused with a warning; it never replaces a core one.
    Import heavy modules inside the command, not at module level: every
    ``virshle`` invocation loads plugins.

    :param cli: the top-level click group; use ``@cli.command()``.
    :returns: nothing.
    """


# ---------------------------------------------------------------------------
# Node hooks
# ---------------------------------------------------------------------------


@hookspec
def virshle_node_init(node: NodeContext, parts: frozenset[str]) -> None:
    """Prepare the host for this plugin; must be idempotent.

    Called by ``virshle node init``. Create what is missing (a bridge, a
    directory), repair what drifted, and reap orphans that are provably
    yours (never touch what another program made).

    :param node: the local node.
    :param parts: the parts asked for, a subset of ``{"dir", "db", "net"}``;
        network plugins act only when ``"net"`` is in it.
    :returns: nothing. Raise ``VirshleError`` to report a failure.
    """


@hookspec
def virshle_node_info(node: NodeContext) -> dict[str, Any] | None:
    """Extra health fields for ``node info`` and ``node ls --all``.

    Every implementation is called and the dictionaries are merged into the
    node info document under ``"plugins"`` (later keys do not override
    earlier ones). Keep it fast: it runs for every listing.

    :param node: the local node.
    :returns: a JSON-serialisable dictionary, or None.
    """


@hookspec(firstresult=True)
def virshle_choose_node(
    candidates: list[NodeCandidate], template_name: str | None
) -> str | None:
    """Choose the node a new VM goes to when ``vm create`` has no ``--node``.

    The ``lb`` plugin answers with a weighted random choice among the online,
    unsaturated candidates that fit. Mark an implementation ``tryfirst=True``
    to override it.

    Stops at first non-None result.

    :param candidates: every managed node, online or not, with its info
        (``info["templates"]`` says which templates it offers and whether
        each fits). Set ``candidate.refused`` to say why you would not
        choose a node: the user reads it when no node was chosen.
    :param template_name: the name of the VM's template. Templates belong
        to the nodes (each its own ``config.toml``): the command line that
        places a VM does not hold them, only what each node says of them.
    :returns: the chosen node's name, or None to let another plugin choose.
    """


# ---------------------------------------------------------------------------
# VM creation hooks
# ---------------------------------------------------------------------------


@hookspec
def virshle_pre_create(vm: Vm, template: VmTemplate, node: NodeContext) -> None:
    """Validate or prepare a VM before anything is made for it.

    Called for every plugin, before disks are cloned. Raise ``VirshleError``
    (or ``UsageError`` for bad input) to refuse the VM: nothing is left behind.
    An implementation may fill fields of ``vm`` (e.g. MACs of its nets).

    :param vm: the VM being created; ``vm.id`` is not set yet.
    :param template: the template it comes from.
    :param node: the node it is created on.
    :returns: nothing.
    """


@hookspec(firstresult=True)
def virshle_disk_clone(source: str, dest: str, disk: TemplateDisk, node: NodeContext
                       ) -> ClonedDisk | None:
    """Make the VM's own disk ``dest`` from the template disk ``source``.

    The template's file must never be written. The core's default keeps one
    verified copy of each image in ``node.root / "cache"`` and gives each VM a
    reflink of it or a qcow2 overlay on it; a storage plugin may do otherwise
    (a ZFS clone, an LVM snapshot).

    Stops at first non-None result.

    :param source: absolute path of the template disk.
    :param dest: absolute path to create (its directory exists).
    :param disk: the template's disk entry (name, readonly).
    :param node: the node: ``node.root`` is where its caches go.
    :returns: a ``ClonedDisk(format="raw" | "qcow2", size=bytes)``, or None to
        let another plugin clone it. (A dict with those keys, what this hook
        returned before, is still read.)

    Example::

        @hookimpl
        def virshle_disk_clone(source, dest):
            subprocess.run(["cp", "--reflink=always", source, dest], check=True)
            return ClonedDisk(format="raw", size=os.path.getsize(dest))
    """


@hookspec
def virshle_provision(vm: Vm, template: VmTemplate, node: NodeContext) -> list[Disk] | None:
    """Make what the guest needs at its first boot, e.g. a cloud-init NoCloud seed.

    Called for every plugin when a VM is created, after its own disks are
    made and its NICs have their MACs, before the VM becomes visible. Write
    files into ``vm.path`` only: they go with the VM. The disks returned are
    attached read-only after the VM's own disks (QEMU: virtio; cloud-hypervisor:
    ``readonly: true``), in the order the plugins answer.

    ``vm.user_data`` is the user-data the user gave (``--user-data``, or the
    template's ``user_data`` file); ``virshle_core.keys.authorized_keys``
    reads the template's and the host's ``ssh_authorized_keys``. Validate
    them in ``virshle_pre_create`` (raise ``UsageError``: exit 2, nothing is
    made). Say what was done, for ``vm info``, in ``vm.provision``
    (JSON-serialisable: e.g. ``{"seed": "nocloud", "user": "debian",
    "keys": ["SHA256:…"]}``).

    :param vm: the VM being created; its directory exists.
    :param template: the template it comes from.
    :param node: the node it is created on.
    :returns: the extra disks it boots with, or None.
    """


# ---------------------------------------------------------------------------
# Network hooks
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def virshle_net_attach(vm: Vm, net: Net, node: NodeContext) -> NetAttachment | None:
    """Create the host side of one NIC (a tap on a bridge, a macvtap...).

    Called before the VMM starts, once per NIC. Return None when ``net.type``
    is not yours.

    Stops at first non-None result.

    :param vm: the VM being started.
    :param net: the NIC, with its type, options, MAC and interface name.
    :param node: the local node.
    :returns: what was made, handed back to ``virshle_net_detach``.
    """


@hookspec(firstresult=True)
def virshle_net_detach(
    vm: Vm, net: Net, attachment: NetAttachment | None, node: NodeContext
) -> bool | None:
    """Remove the host side of one NIC; must succeed when it is already gone.

    Stops at first non-None result.

    :param vm: the VM being stopped or removed.
    :param net: the NIC.
    :param attachment: what ``virshle_net_attach`` returned, when this
        detach undoes a start that failed; None when a VM is stopped or
        removed (attachments are not kept): rebuild what you need from
        ``net`` (its ``ifname``, your mark on the interface).
    :param node: the local node.
    :returns: True when ``net.type`` is yours and it is removed, else None.
    """


# ---------------------------------------------------------------------------
# Hypervisor hooks
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def virshle_start(
    vm: Vm, attachments: list[NetAttachment], node: NodeContext
) -> VmmHandle | None:
    """Start the VMM and boot the VM.

    The VMM must run in its own session (it outlives the daemon), write a
    pidfile and its control socket in ``vm.path``, and keep the serial
    output in ``vm.path / "console.log"``. Return None when ``vm.hypervisor``
    is not yours.

    Stops at first non-None result.

    :param vm: the VM to start.
    :param attachments: the host side of each NIC, in ``vm.nets`` order.
    :param node: the local node.
    :returns: the started VMM.
    """


@hookspec(firstresult=True)
def virshle_stop(vm: Vm, force: bool, node: NodeContext) -> bool | None:
    """Stop the VM: a graceful shutdown, or kill at once with ``force``.

    A graceful stop waits up to ``[host] stop_timeout`` seconds, then kills.
    It must succeed when nothing runs. A forced stop must also end a VMM
    that is still coming up: after a crash in the middle of a start, the
    daemon calls it (``vm.hypervisor`` set to your name) to clear what the
    start left, perhaps before any pidfile exists. Return once the VMM is
    gone, reaped when it is your child.

    Stops at first non-None result.

    :param vm: the VM to stop.
    :param force: kill the VMM without asking the guest.
    :param node: the local node.
    :returns: True when the VM is yours and stopped, else None.
    """


@hookspec(firstresult=True)
def virshle_vm_state(vm: Vm, node: NodeContext) -> str | None:
    """Read the VM's live state from its VMM; only read it.

    The daemon keeps running VMs' states from their ``virshle_vm_watch``; it
    calls this hook only to re-adopt VMs when it starts, for an explicit
    refresh (``vm info --refresh``), and for VMs no watch follows. Change
    nothing: a VMM found powered off or dead is ended by the daemon through
    ``virshle_stop(force=True)``, which also removes its files.

    Stops at first non-None result.

    :param vm: the VM.
    :param node: the local node.
    :returns: one of ``created, running, paused, shutdown, crashed``, or None
        when the VM is not yours.
    """


@hookspec(firstresult=True)
def virshle_vm_watch(vm: Vm, node: NodeContext) -> VmWatch | None:
    """Give the daemon a live link to a running VM's VMM, to follow its state.

    Called when a VM starts and for every running VM a daemon re-adopts. The
    daemon runs the watch's ``follow`` on its event loop (hold one control
    connection per VMM, listen to its events, notice its exit with a pidfd),
    records each state change and announces it as ``vm-state-changed``;
    listings then read the store and never ask the VMM. ``stop`` makes many
    concurrent stops cheap: a signal, or the power button, and an exit wait.
    Return None when the VM is not yours; such VMs are polled with
    ``virshle_vm_state`` instead.

    Stops at first non-None result.

    :param vm: a running VM.
    :param node: the local node.
    :returns: a ``virshle_core.models.VmWatch``, or None.
    """


@hookspec(firstresult=True)
def virshle_console(vm: Vm, node: NodeContext) -> ConsoleEndpoint | None:
    """Say where the VM's serial console can be reached.

    Stops at first non-None result.

    :param vm: the VM.
    :param node: the local node.
    :returns: the console's socket and log file, or None when not yours.
    """


# ---------------------------------------------------------------------------
# DHCP and clean-up hooks
# ---------------------------------------------------------------------------


@hookspec
def virshle_lease_query(vms: list[Vm], node: NodeContext) -> list[Lease] | None:
    """Report the IP leases of these VMs' NICs.

    Called once per listing with every VM listed: make one batched query,
    never one per VM. Answers of all plugins are merged. When the DHCP
    server is unreachable, log a warning and return None; never raise.

    :param vms: the VMs being listed.
    :param node: the local node.
    :returns: the leases found, matched to NICs by MAC.
    """


@hookspec
def virshle_post_delete(vm: Vm, node: NodeContext) -> None:
    """Release what the VM held outside its directory (leases, reservations...).

    Called for every plugin after the VM is stopped and its NICs detached,
    before its row is deleted. Must succeed when there is nothing to release.

    :param vm: the VM being removed.
    :param node: the local node.
    :returns: nothing.
    """
