"""What every hypervisor plugin does the same way with its VMM processes.

A VMM outlives the daemon that started it, so it is found again by its pid file and
told apart from a process that reused its pid by a marker on its command line (the
VM's uuid, or its API socket). The daemon is a subreaper: a VMM that ends while the
daemon runs is its child, and is reaped here so that no zombie stays.

``VmmHooks`` carries the four hooks whose bodies are the same in every VMM plugin:
stop, state, watch and console, for the VMs the plugin started.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Callable

from . import hookimpl


def read_pid(path: str | os.PathLike) -> int | None:
    """The pid in a pid file, or None when there is none or it is not a number."""
    try:
        with open(path) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def reap(pid: int) -> bool:
    """Collect the exit status of a VMM that is our child; True when it had ended."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False  # not our child: its parent (or PID 1) reaps it


def alive(pid: int, marker: bytes, program: bytes | None = None) -> bool:
    """The process exists, has not ended, and its command line holds ``marker`` (and its
    program's name holds ``program``): a pid another process reused is not the VMM."""
    reap(pid)
    try:  # the command line first, the state last: a death in between shows as "Z"
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":  # it ended after the first reap: collect it now
        reap(pid)
        return False
    if program is not None and program not in os.path.basename(cmdline.split(b"\0", 1)[0]):
        return False
    return marker in cmdline


def kill(pid: int) -> None:
    """SIGKILL, for a VMM that would not stop; one already gone is fine."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_gone(pid: int, still_alive: Callable[[int], bool], timeout: float) -> bool:
    """Wait until the VMM has ended (and, when it is our child, is reaped); False when it
    still runs after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if reap(pid):
            return True
        if not still_alive(pid):
            reap(pid)  # it may have died between the two looks: a zombie of ours is reaped
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


class VmmHooks:
    """The hooks a VMM plugin implements like every other, for the VMs it started
    (``vm.hypervisor == name``), through its own ``vmm`` module (``start(vm,
    attachments, config)``, ``stop(vm, force, timeout)``, ``state(vm)``) and ``watch``
    module (``watch(vm)``), imported when first needed. A plugin hands them on as its own::

        hooks = VmmHooks(NAME, __name__, config_of, auto="first")
        virshle_hypervisor, virshle_start = hooks.start_hooks()
        virshle_stop, virshle_vm_state, virshle_vm_watch, virshle_console = hooks.hooks()

    ``config_of(node)`` is the plugin's table (its ``binary`` is the VMM's program);
    ``auto`` says whether ``hypervisor = "auto"`` asks this plugin ``first`` or ``last``.
    """

    def __init__(self, name: str, package: str, config_of: Callable[[Any], Any] | None = None,
                 auto: str = "last"):
        self.name = name
        self.package = package
        self.config_of = config_of
        self.auto = auto

    def hooks(self) -> tuple[Callable, ...]:
        return self.virshle_stop, self.virshle_vm_state, self.virshle_vm_watch, self.virshle_console

    def start_hooks(self) -> tuple[Callable, Callable]:
        """``virshle_hypervisor`` (asked first or last for ``auto``) and ``virshle_start``."""
        chooser = self._hypervisor_first if self.auto == "first" else self._hypervisor_last
        return chooser, self.virshle_start

    def _takes(self, wanted: str, node: Any) -> str | None:
        import shutil

        if wanted == self.name or (wanted == "auto" and shutil.which(self.config_of(node).binary)):
            return self.name
        return None

    @hookimpl(tryfirst=True)
    def _hypervisor_first(self, wanted, node):
        return self._takes(wanted, node)

    @hookimpl(trylast=True)
    def _hypervisor_last(self, wanted, node):
        return self._takes(wanted, node)

    @hookimpl
    def virshle_start(self, vm, attachments, node):
        if vm.hypervisor != self.name:
            return None
        return self._module("vmm").start(vm, attachments, self.config_of(node))

    def _module(self, name: str) -> Any:
        import importlib

        return importlib.import_module(f"{self.package}.{name}")

    @hookimpl
    def virshle_stop(self, vm, force, node):
        if vm.hypervisor != self.name:
            return None
        self._module("vmm").stop(vm, force, timeout=float(node.config.host.stop_timeout))
        return True

    @hookimpl
    def virshle_vm_state(self, vm, node):
        if vm.hypervisor != self.name:
            return None
        return self._module("vmm").state(vm)

    @hookimpl
    def virshle_vm_watch(self, vm, node):
        if vm.hypervisor != self.name:
            return None
        return self._module("watch").watch(vm)

    @hookimpl
    def virshle_console(self, vm, node):
        if vm.hypervisor != self.name:
            return None
        from .models import ConsoleEndpoint

        socket, log = os.path.join(vm.dir, "console.sock"), os.path.join(vm.dir, "console.log")
        if not (os.path.exists(socket) or os.path.exists(log)):
            return None  # never started: it has no console yet
        return ConsoleEndpoint(socket=socket, log=log)
