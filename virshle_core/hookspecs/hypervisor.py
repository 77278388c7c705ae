"""Hypervisor hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .marker import hookspec

if TYPE_CHECKING:
    from ..models import VmStats
    from ..models import ConsoleEndpoint, NetAttachment, NodeContext, Vm, VmmHandle, VmWatch


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


@hookspec(firstresult=True)
def virshle_vm_control(vm: Vm, action: str, force: bool, node: NodeContext) -> bool | None:
    """Pause, resume or reboot a running VM through its VMM.

    ``pause`` stops the guest's vcpus (its memory stays), ``resume`` lets them
    run again. ``reboot`` asks the guest to restart (QEMU: the ACPI power
    button, and a reset instead of an exit once it has powered off, as libvirt
    does), or with ``force`` resets it at once, as the reset button does. The
    core checks the VM's state first: ``pause`` and ``reboot`` reach only a
    running VM, ``resume`` only a paused one; it records the state and
    announces ``vm-paused``, ``vm-resumed`` or ``vm-rebooted`` afterwards.

    Stops at first non-None result.

    :param vm: the VM (``vm.hypervisor`` names its plugin).
    :param action: ``pause``, ``resume`` or ``reboot``.
    :param force: for ``reboot``: a hard reset, without asking the guest.
    :param node: the local node.
    :returns: True once done; None when the VM is not yours. Raise
        ``VirshleError`` (code ``not_supported``) for an action your VMM lacks.

    Example::

        @hookimpl
        def virshle_vm_control(vm, action, force):
            if vm.hypervisor != "myvmm":
                return None
            api(vm).put({"pause": "vm.pause", "resume": "vm.resume",
                         "reboot": "vm.reboot"}[action])
            return True
    """


@hookspec(firstresult=True)
def virshle_vm_stats(vm: Vm, node: NodeContext) -> VmStats | None:
    """Count what a running VM's VMM has used: cpu time, resident memory, disk I/O.

    Called by the metrics plugin in a worker thread, at most once per its sampling
    interval, for each running or paused VM; never by a command line. Ask the VMM (QMP
    ``query-blockstats``, cloud-hypervisor's ``vm.counters``), not the guest, with a
    short timeout; return None for a VM that is not yours or whose VMM is gone.

    Stops at first non-None result.

    :param vm: a running or paused VM.
    :param node: the local node.
    :returns: a ``VmStats`` (counters since the VMM started), or None.

    Example::

        @hookimpl
        def virshle_vm_stats(vm):
            pid = my_pid(vm)
            if pid is None:
                return None
            process = psutil.Process(pid)
            times = process.cpu_times()
            return VmStats(cpu_seconds=times.user + times.system,
                           rss_bytes=process.memory_info().rss)
    """
