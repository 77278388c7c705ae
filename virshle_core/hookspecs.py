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

    Called before the configuration file is read, in every process that loads
    plugins; all implementations are called. A table registered here is
    validated as strictly as the core's own: unknown keys and wrong types are
    configuration errors with their line. Read it back with
    ``node.section(name)``; a missing table gives the class's defaults.

    :param register: call ``register("dhcp.kea", KeaConfig)`` with the dotted
        table name and an attrs class whose fields all have defaults.
    :returns: nothing.

    Example::

        @hookimpl
        def virshle_config_sections(register):
            register("hello", HelloConfig)
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

    Example::

        @hookimpl
        def virshle_register_commands(cli):
            @cli.command()
            @click.pass_obj
            def hello(settings):          # settings.config is the loaded configuration
                click.echo("hello")
    """


# ---------------------------------------------------------------------------
# Node hooks
# ---------------------------------------------------------------------------


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


@hookspec(firstresult=True)
def virshle_choose_node(
    candidates: list[NodeCandidate], template_name: str | None
) -> str | None:
    """Choose the node a new VM goes to when ``vm create`` has no ``--node``.

    Runs in the command line's process. The ``lb`` plugin answers with a
    weighted random choice among the online, unsaturated candidates that fit;
    mark an implementation ``tryfirst=True`` to override it.

    Stops at first non-None result.

    :param candidates: every managed node, online or not, with its
        ``node info`` document as a dict (``info["templates"]`` says which
        templates it offers and whether each fits). Set ``candidate.refused``
        to say why you would not choose a node: the user reads it when no
        node was chosen.
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


# ---------------------------------------------------------------------------
# VM creation hooks
# ---------------------------------------------------------------------------


@hookspec
def virshle_pre_create(vm: Vm, template: VmTemplate, node: NodeContext) -> None:
    """Validate or prepare a VM before anything is made for it.

    Called for every plugin, before disks are cloned. Raise ``VirshleError``
    (or ``UsageError`` for bad input: exit 2) to refuse the VM: nothing is left
    behind. An implementation may fill fields of ``vm`` (e.g. MACs of its nets).

    :param vm: the VM being created; ``vm.id`` is not set yet.
    :param template: the template it comes from.
    :param node: the node it is created on.
    :returns: nothing.

    Example::

        @hookimpl
        def virshle_pre_create(vm, template):
            if template.vcpu > 8:
                raise UsageError(f"VM {vm.name}: at most 8 vcpu here", "Use a smaller template.")
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
    ``readonly: true``), in the order the plugins answer. The ``cloudinit``
    plugin writes a NoCloud seed; a plugin for Ignition would write its config
    drive instead (disable ``cloudinit`` with ``VIRSHLE_DISABLE_PLUGINS=cloudinit``).

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

    Example::

        @hookimpl
        def virshle_provision(vm, template, node):
            keys = authorized_keys(node.config.host.ssh_authorized_keys + template.ssh_authorized_keys)
            path = vm.path / "ignition.json"
            path.write_text(json.dumps(ignition_config(vm, keys)))
            vm.provision = {"seed": "ignition", "keys": [fingerprint(k) for k in keys]}
            return [Disk(name="ignition", path=str(path), size=path.stat().st_size, readonly=True)]
    """


# ---------------------------------------------------------------------------
# Network hooks
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def virshle_net_attach(vm: Vm, net: Net, node: NodeContext) -> NetAttachment | None:
    """Create the host side of one NIC (a tap on a bridge, a macvtap...).

    Called before the VMM starts, once per NIC. Return None when ``net.type``
    is not yours: a start whose net type no plugin owns fails with the list of
    plugins that attach nets. ``net.mac`` and ``net.ifname`` are already
    allocated (unique, stable, at most 15 characters). Put descriptors the VMM
    must inherit in ``NetAttachment.fds`` (the core closes its copies once the
    VMM started), and set ``NetAttachment.offload = False`` when the host side
    cannot take partial checksums.

    Stops at first non-None result.

    :param vm: the VM being started.
    :param net: the NIC, with its type, options, MAC and interface name.
    :param node: the local node.
    :returns: what was made; handed back to ``virshle_net_detach`` if the start
        fails later.

    Example::

        @hookimpl
        def virshle_net_attach(vm, net, node):
            if net.type != "tap":
                return None
            make_tap(net.ifname)
            return NetAttachment(net=net.name, type="tap", ifname=net.ifname, mac=net.mac)
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

    Example::

        @hookimpl
        def virshle_net_detach(net):
            if net.type != "tap":
                return None
            delete_tap_if_exists(net.ifname)
            return True
    """


# ---------------------------------------------------------------------------
# Hypervisor hooks
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def virshle_hypervisor(wanted: str, node: NodeContext) -> str | None:
    """Name the hypervisor a new VM is recorded under, once, when it is created.

    ``[host] hypervisor`` may name one plugin (``qemu``, ``ch``) or say
    ``auto``; the answer is kept in ``vm.hypervisor``, so every later hook
    (``virshle_pre_create``, ``virshle_start``, ``virshle_stop``...) reads a
    plain name and never resolves ``auto`` itself, and a VM keeps its
    hypervisor when the host's setting or the installed programs change. A VM
    created when no plugin answered is resolved again at its first start.

    Stops at first non-None result.

    :param wanted: ``[host] hypervisor``: a plugin's name or ``auto``.
    :param node: the local node.
    :returns: your name when ``wanted`` is your name, or when it is ``auto`` and
        your VMM can run here (its binary is installed); else None. Mark the
        implementation ``tryfirst``/``trylast`` to say which ``auto`` prefers.

    Example::

        @hookimpl
        def virshle_hypervisor(wanted):
            if wanted == "myvmm" or (wanted == "auto" and shutil.which("myvmm")):
                return "myvmm"
            return None
    """


@hookspec(firstresult=True)
def virshle_start(
    vm: Vm, attachments: list[NetAttachment], node: NodeContext
) -> VmmHandle | None:
    """Start the VMM and boot the VM.

    The VMM must run in its own session (it outlives the daemon), write a
    pidfile and its control socket in ``vm.path``, and keep the serial
    output in ``vm.path / "console.log"``. Return None when ``vm.hypervisor``
    is not yours (it is never ``auto``: the core resolves that at create). If
    it raises, the NICs already attached are detached again.

    Stops at first non-None result.

    :param vm: the VM to start.
    :param attachments: the host side of each NIC, in ``vm.nets`` order.
    :param node: the local node.
    :returns: the started VMM.

    Example::

        @hookimpl
        def virshle_start(vm, attachments, node):
            if vm.hypervisor != "myvmm":
                return None
            proc = subprocess.Popen(build_argv(vm, attachments), start_new_session=True)
            return VmmHandle(pid=proc.pid, hypervisor="myvmm")
    """


@hookspec(firstresult=True)
def virshle_stop(vm: Vm, force: bool, node: NodeContext) -> bool | None:
    """Stop the VM: a graceful shutdown, or kill at once with ``force``.

    A graceful stop waits up to ``[host] stop_timeout`` seconds, then kills.
    It must succeed when nothing runs. A forced stop must also end a VMM
    that is still coming up: after a crash in the middle of a start, the
    daemon calls it (``vm.hypervisor`` set to your name) to clear what the
    start left, perhaps before any pidfile exists. Return once the VMM is
    gone, reaped when it is your child, so that no zombie stays
    (``virshle_core.vmm`` has the helpers).

    Stops at first non-None result.

    :param vm: the VM to stop.
    :param force: kill the VMM without asking the guest.
    :param node: the local node.
    :returns: True when the VM is yours and stopped, else None.

    Example::

        @hookimpl
        def virshle_stop(vm, force, node):
            if vm.hypervisor != "myvmm":
                return None
            (kill if force else power_button)(vm)
            return True
    """


@hookspec(firstresult=True)
def virshle_vm_state(vm: Vm, node: NodeContext) -> str | None:
    """Read the VM's live state from its VMM; only read it.

    The daemon keeps running VMs' states from their ``virshle_vm_watch``; it
    calls this hook only to re-adopt VMs when it starts, for an explicit
    refresh (``vm info --refresh``), and for VMs no watch follows; never for a
    listing. Change nothing: a VMM found powered off but still running (QEMU
    with ``-no-shutdown``), or dead, is ended by the daemon through
    ``virshle_stop(force=True)``, which also removes its files.

    Stops at first non-None result.

    :param vm: the VM.
    :param node: the local node.
    :returns: one of ``created, running, paused, shutdown, crashed``, or None
        when the VM is not yours.

    Example::

        @hookimpl
        def virshle_vm_state(vm):
            if vm.hypervisor != "myvmm":
                return None
            return "running" if pid_alive(vm.path / "vmm.pid") else "shutdown"
    """


@hookspec(firstresult=True)
def virshle_vm_watch(vm: Vm, node: NodeContext) -> VmWatch | None:
    """Give the daemon a live link to a running VM's VMM, to follow its state.

    Called when a VM starts and for every running VM a daemon re-adopts. The
    daemon runs the watch's coroutines on its event loop, so they must never
    block. ``follow(report)`` holds one control connection for the VM's life,
    calls ``report(state)`` whenever the VM enters ``running``, ``paused``,
    ``shutdown`` or ``crashed`` (from the VMM's own events: QEMU's ``STOP``,
    ``RESUME``, ``SHUTDOWN``, ``GUEST_PANICKED``...), notices the process's end
    with a pidfd, and returns the state the VM ended in. ``stop(force,
    timeout)`` presses the power button (or kills at once) and returns once the
    VMM has exited. ``close()`` lets go of it when the daemon stops. The daemon
    records the states, announces ``vm-state-changed``, and detaches the NICs
    of a VM whose VMM ended; listings then never ask a VMM. Return None when
    the VM is not yours; such VMs are polled with ``virshle_vm_state``.

    Stops at first non-None result.

    :param vm: a running VM.
    :param node: the local node.
    :returns: a ``virshle_core.models.VmWatch``, or None.

    Example::

        class MyWatch(VmWatch):
            async def follow(self, report):
                async for event in self.events():          # the VMM's own event stream
                    report({"paused": "paused", "resumed": "running"}[event])
                return "crashed" if not self.stopping else "shutdown"

        @hookimpl
        def virshle_vm_watch(vm, node):
            return MyWatch(vm) if vm.hypervisor == "myvmm" else None
    """


@hookspec(firstresult=True)
def virshle_console(vm: Vm, node: NodeContext) -> ConsoleEndpoint | None:
    """Say where the VM's serial console can be reached.

    Stops at first non-None result.

    :param vm: the VM.
    :param node: the local node.
    :returns: the console's unix socket and kept log file, or None when not yours.

    Example::

        @hookimpl
        def virshle_console(vm):
            if vm.hypervisor != "myvmm":
                return None
            return ConsoleEndpoint(socket=str(vm.path / "console.sock"),
                                   log=str(vm.path / "console.log"))
    """


# ---------------------------------------------------------------------------
# DHCP and clean-up hooks
# ---------------------------------------------------------------------------


@hookspec
def virshle_lease_query(vms: list[Vm], node: NodeContext) -> list[Lease] | None:
    """Report the IP leases of these VMs' NICs.

    Called once per listing with every VM listed: make one batched query,
    never one per VM. Answers of all plugins are merged, matched to NICs by
    MAC. When the DHCP server is unreachable, log a warning and return None;
    never raise.

    :param vms: the VMs being listed.
    :param node: the local node.
    :returns: the leases found.

    Example::

        @hookimpl
        def virshle_lease_query(vms):
            macs = {net.mac for vm in vms for net in vm.nets if net.mac}
            return [Lease(mac=l["hw-address"], ip=l["ip-address"])
                    for l in all_leases() if l["hw-address"] in macs]
    """


@hookspec
def virshle_post_delete(vm: Vm, node: NodeContext) -> None:
    """Release what the VM held outside its directory (leases, reservations...).

    Called for every plugin after the VM is stopped and its NICs detached,
    before its row is deleted. Must succeed when there is nothing to release.

    :param vm: the VM being removed.
    :param node: the local node.
    :returns: nothing.

    Example::

        @hookimpl
        def virshle_post_delete(vm):
            for net in vm.nets:
                delete_lease(net.mac)
    """
