"""``virshle vm pause|resume|reboot|set|disk|snapshot|clone|ssh``: the verbs on VMs that
exist, beside create, start, stop and rm (``cli/vm.py``)."""

from __future__ import annotations

from typing import Any, Callable

import click

from . import actions
from .app import Settings, VirshleGroup, verbosity_options
from .completion import vm_names
from .selection import act, one_ref, vm_ref_options, vm_selection

JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@click.command("pause")
@vm_selection
@JSON
@verbosity_options
@click.pass_obj
def vm_pause(settings: Settings, names, vm_id, vm_name, vm_uuid, node_name, state, every,
             as_json: bool) -> None:
    """Pause running VMs: their vcpus stop, their memory stays (`vm resume` goes on).

    \b
    Examples:
      virshle vm pause web-1
      virshle vm pause --all --node remote_1
    """
    act(settings, "pause", names, vm_id, vm_name, vm_uuid, node_name, state, every, as_json)


@click.command("resume")
@vm_selection
@JSON
@verbosity_options
@click.pass_obj
def vm_resume(settings: Settings, names, vm_id, vm_name, vm_uuid, node_name, state, every,
              as_json: bool) -> None:
    """Resume paused VMs.

    \b
    Examples:
      virshle vm resume web-1
      virshle vm resume --all
    """
    act(settings, "resume", names, vm_id, vm_name, vm_uuid, node_name, state, every, as_json)


@click.command("reboot")
@vm_selection
@click.option("-f", "--force", is_flag=True,
              help="Reset at once (the reset button) instead of asking the guest.")
@JSON
@verbosity_options
@click.pass_obj
def vm_reboot(settings: Settings, names, vm_id, vm_name, vm_uuid, node_name, state, every,
              force: bool, as_json: bool) -> None:
    """Reboot running VMs: the ACPI power button, and a reset once the guest is down
    (within [host] stop_timeout); --force resets at once.

    \b
    Examples:
      virshle vm reboot web-1
      virshle vm reboot --force --name web-1 --name web-2
    """
    act(settings, "reboot", names, vm_id, vm_name, vm_uuid, node_name, state, every, as_json,
        force=force)


# --- settings and sizes ----------------------------------------------------------------

SETTINGS = {
    "autostart": "true or false: start it whenever its node daemon starts",
    "vcpu": "a number of vcpus (the VM stopped; used at its next start)",
    "vram": "a memory size, 2 (GiB) or 512MiB (the VM stopped; used at its next start)",
}


def _size(text: str, what: str) -> int:
    """A size on the command line: a bare number is GiB, as in config.toml."""
    from ..units import parse_size

    try:
        return parse_size(float(text) if text.replace(".", "", 1).isdigit() else text)
    except ValueError as exc:
        raise click.BadParameter(f"{what}: {exc}") from None


@click.command("set")
@click.argument("words", nargs=-1, metavar="[NAME] KEY=VALUE...")
@vm_ref_options
@JSON
@verbosity_options
@click.pass_obj
def vm_set(settings: Settings, words: tuple[str, ...], vm_id, vm_name, vm_uuid, node_name,
           as_json: bool) -> None:
    """Change a VM's settings; its size only while it is stopped, within the node's
    [host.limits].

    \b
    Settings:
      autostart=true|false   start it whenever its node daemon starts
      vcpu=N                 its vcpus, from its next start
      vram=SIZE              its memory, 2 (GiB) or 512MiB, from its next start

    \b
    Examples:
      virshle vm set web-1 autostart=true
      virshle vm set web-1 vcpu=2 vram=4GiB
      virshle vm set --id 7 autostart=false
    """
    from ..wire import api

    words = list(words)
    if words and "=" not in words[0] and not (vm_id or vm_name or vm_uuid):
        vm_name = words.pop(0)  # `vm set NAME key=value`, as libvirt's and Incus's verbs read
    if not words:
        raise click.UsageError("say what to change: KEY=VALUE (settings: "
                               + ", ".join(SETTINGS) + ")")
    change = api.VmChange()
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or key not in SETTINGS:
            raise click.BadParameter(f"{word!r}: settings are " + "; ".join(
                f"{k}={v}" for k, v in SETTINGS.items()), param_hint="KEY=VALUE")
        if key == "vcpu":
            if not (value.isascii() and value.isdigit()) or int(value) < 1:
                raise click.BadParameter(f"vcpu must be a whole number of at least 1, not {value!r}",
                                         param_hint="KEY=VALUE")
            change.vcpu = int(value)
        elif key == "vram":
            change.vram = _size(value, "vram")
        else:
            truth = {"true": True, "yes": True, "on": True, "1": True,
                     "false": False, "no": False, "off": False, "0": False}.get(value.lower())
            if truth is None:
                raise click.BadParameter(f"{key} must be true or false, not {value!r}",
                                         param_hint="KEY=VALUE")
            change.autostart = truth
    client, found = actions.find_vm(settings, one_ref(vm_id, vm_name, vm_uuid), node_name)
    changed = client.change_vm(actions.uuid_ref(found), change)
    changed.node = client.name
    if as_json:
        from .render import emit_json

        emit_json(changed)
        return
    from ..units import human_size

    said = []
    if change.vcpu is not None or change.vram is not None:
        said.append(f"{changed.vcpu} vcpu, {human_size(changed.vram)} of memory from its next start")
    if change.autostart is not None:
        said.append(f"autostart is {'on' if changed.autostart else 'off'}")
    settings.say(f"VM {changed.name}: {'; '.join(said)}.")


@click.group("disk", cls=VirshleGroup)
@verbosity_options
def vm_disk() -> None:
    """A VM's disks.

    \b
    Examples:
      virshle vm disk resize web-1 os +10G
    """


@vm_disk.command("resize")
@click.argument("words", nargs=-1, metavar="[VM] DISK [+]SIZE")
@vm_ref_options
@JSON
@verbosity_options
@click.pass_obj
def vm_disk_resize(settings: Settings, words, vm_id, vm_name, vm_uuid, node_name,
                   as_json: bool) -> None:
    """Grow a stopped VM's disk (qemu-img resize), within [host.limits] disk. +SIZE adds,
    SIZE is the new size; a bare number is GiB. The guest grows its partition and
    filesystem at its next boot (cloud-init's growpart), or you do.

    \b
    Examples:
      virshle vm disk resize web-1 os +10G
      virshle vm disk resize --id 7 os 40GiB
    """
    words = list(words)
    if len(words) == 3 and not (vm_id or vm_name or vm_uuid):
        vm_name = words.pop(0)
    if len(words) != 2:
        raise click.UsageError("say the VM, the disk and the size: vm disk resize VM DISK +SIZE")
    disk, text = words
    grow = text.startswith("+")
    size = _size(text[1:] if grow else text, "SIZE")
    client, found = actions.find_vm(settings, one_ref(vm_id, vm_name, vm_uuid), node_name)
    changed = client.resize_disk(actions.uuid_ref(found), disk, size=None if grow else size,
                                 grow=size if grow else None)
    if as_json:
        from .render import emit_json

        emit_json(changed)
        return
    from ..units import human_size

    new = next((d.size for d in changed.disks if d.name == disk), None)
    settings.say(f"VM {changed.name}: disk {disk} is now {human_size(new)}.")


# --- snapshots -------------------------------------------------------------------------


@click.group("snapshot", cls=VirshleGroup)
@verbosity_options
def vm_snapshot() -> None:
    """Snapshots of a VM's disks (and of a running guest's memory, with --memory).

    They are qcow2 internal snapshots, kept inside each writable disk: nothing
    else to keep track of, and a VM's snapshots go with it. Each counts against
    [host.limits] disk by its disks' sizes (and the VM's memory with --memory).

    \b
    Examples:
      virshle vm snapshot create web-1 before-upgrade
      virshle vm snapshot ls web-1
      virshle vm snapshot restore web-1 before-upgrade
      virshle vm snapshot rm web-1 before-upgrade
    """


def _vm_and_snapshot(words, vm_id, vm_name, vm_uuid, wanted: int = 2) -> tuple:
    """``[VM] SNAPSHOT``: the VM's reference and the snapshot's name."""
    words = list(words)
    if len(words) == wanted and not (vm_id or vm_name or vm_uuid):
        vm_name = words.pop(0)
    if len(words) != wanted - 1:
        raise click.UsageError("say the VM and the snapshot: VM SNAPSHOT (or --name VM SNAPSHOT)")
    return one_ref(vm_id, vm_name, vm_uuid), (words[0] if words else None)


def snapshot_command(name: str, metavar: str = "[VM] SNAPSHOT") -> Callable:
    """A ``vm snapshot`` subcommand: ``[VM] SNAPSHOT`` (or ``--name VM SNAPSHOT``), ``--json``."""
    def decorate(func: Callable) -> Callable:
        for decorator in (click.pass_obj, verbosity_options, JSON, vm_ref_options,
                          click.argument("words", nargs=-1, metavar=metavar)):
            func = decorator(func)
        return vm_snapshot.command(name)(func)

    return decorate


def _on_snapshot(settings: Settings, words, vm_id, vm_name, vm_uuid, node_name, action: str,
                 as_json: bool, said: Callable, memory: bool = False) -> None:
    ref, name = _vm_and_snapshot(words, vm_id, vm_name, vm_uuid)
    client, found = actions.find_vm(settings, ref, node_name)
    result = client.snapshot(actions.uuid_ref(found), action, name, memory)
    reply(settings, as_json, result, said(found, name, result))


def reply(settings: Settings, as_json: bool, result: Any, message: str) -> None:
    """``--json``: the result as one JSON document; else the message for people."""
    if as_json:
        from .render import emit_json

        emit_json(result)
    else:
        settings.say(message)


@snapshot_command("create")
@click.option("--memory", is_flag=True,
              help="A running VM's memory and devices too: restoring resumes it where it was.")
def snapshot_create(settings: Settings, words, vm_id, vm_name, vm_uuid, node_name, memory: bool,
                    as_json: bool) -> None:
    """Take a snapshot of a VM's disks (running or not), and with --memory of the guest.

    \b
    Examples:
      virshle vm snapshot create web-1 before-upgrade
      virshle vm snapshot create web-1 live --memory
    """
    _on_snapshot(settings, words, vm_id, vm_name, vm_uuid, node_name, "create", as_json,
                 lambda vm, name, taken: f"Took snapshot {name} of VM {vm.name} "
                                         f"({'disks and memory' if taken.memory else 'disks'}).",
                 memory=memory)


@snapshot_command("ls", metavar="[VM]")
def snapshot_ls(settings: Settings, words, vm_id, vm_name, vm_uuid, node_name, as_json: bool) -> None:
    """List a VM's snapshots, oldest first.

    \b
    Examples:
      virshle vm snapshot ls web-1
    """
    ref, _ = _vm_and_snapshot(words, vm_id, vm_name, vm_uuid, wanted=1)
    client, found = actions.find_vm(settings, ref, node_name)
    listed = client.snapshots(actions.uuid_ref(found))
    from .render import echo, emit_json, table

    if as_json:
        emit_json(listed)
        return
    from ..units import human_size

    echo(table(["name", "memory", "taken while", "reserves", "created"],
               [[s.name, "yes" if s.memory else "no", s.state, human_size(s.size), s.created_at]
                for s in listed]))


@snapshot_command("restore")
def snapshot_restore(settings: Settings, words, vm_id, vm_name, vm_uuid, node_name,
                     as_json: bool) -> None:
    """Bring a VM back to a snapshot: its disks while it is stopped, or a running guest to
    a snapshot taken with --memory.

    \b
    Examples:
      virshle vm snapshot restore web-1 before-upgrade
    """
    _on_snapshot(settings, words, vm_id, vm_name, vm_uuid, node_name, "restore", as_json,
                 lambda vm, name, restored: f"Restored VM {vm.name} to snapshot {name} "
                                            f"(it is {restored.state}).")


@snapshot_command("rm")
def snapshot_rm(settings: Settings, words, vm_id, vm_name, vm_uuid, node_name, as_json: bool) -> None:
    """Remove a snapshot, and what it reserved.

    \b
    Examples:
      virshle vm snapshot rm web-1 before-upgrade
    """
    _on_snapshot(settings, words, vm_id, vm_name, vm_uuid, node_name, "delete", as_json,
                 lambda vm, name, removed: f"Removed snapshot {name} of VM {vm.name}.")


# --- clone and ssh ---------------------------------------------------------------------


@click.command("clone")
@click.argument("source", required=False, metavar="SRC", shell_complete=vm_names)
@click.option("--id", "vm_id", metavar="ID", help="The source VM's id (instead of SRC).")
@click.option("--uuid", "vm_uuid", metavar="UUID", help="The source VM's uuid (instead of SRC).")
@click.option("--node", "node_name", metavar="NAME", help="The node that has the source VM.")
@click.option("--to", "--name", "new_name", metavar="NEW",
              help="The clone's name (default: a random one).")
@click.option("--autostart", is_flag=True, help="Start the clone whenever its node daemon starts.")
@JSON
@verbosity_options
@click.pass_obj
def vm_clone(settings: Settings, source, vm_id, vm_uuid, node_name, new_name, autostart: bool,
             as_json: bool) -> None:
    """Copy a stopped VM into a new one on its node: its disks (a qcow2 overlay is copied
    as a new overlay on the same cached image), its size and template; a new name, uuid,
    MAC addresses and cloud-init instance-id. Its snapshots stay with the source.

    \b
    Examples:
      virshle vm clone web-1 --to web-2
      virshle vm clone web-1 --name web-3
      virshle vm clone --id 7 --json
    """
    from ..wire import api
    from ..wire.refs import validate_name

    if new_name is not None:
        validate_name(new_name)
    ref = one_ref((vm_id,) if vm_id else (), (source,) if source else (), (vm_uuid,) if vm_uuid else ())
    client, found = actions.find_vm(settings, ref, node_name)
    bar = actions.ProgressLine()
    try:
        made = client.clone_vm(actions.uuid_ref(found),
                               api.CloneRequest(name=new_name, autostart=autostart),
                               on_progress=bar.update)
    except KeyboardInterrupt:
        bar.close()
        click.echo("Interrupted: the clone was cancelled; the node undoes what it had begun.",
                   err=True)
        raise SystemExit(130) from None
    finally:
        bar.close()
    made.node = client.name
    reply(settings, as_json, made,
          f"Cloned VM {found.name} into {made.name} (id {made.id}) on node {client.name}.")


@click.command("ssh")
@click.argument("words", nargs=-1, metavar="[NAME] [-- COMMAND...]", shell_complete=vm_names)
@vm_ref_options
@click.option("-u", "--user", metavar="USER",
              help="Log in as USER (default: the user its user-data names, else ssh's own).")
@click.option("-i", "--identity", metavar="FILE", help="The private key to use (ssh -i).")
@click.option("-o", "--ssh-option", "ssh_options", metavar="OPTION", multiple=True,
              help="An ssh option, as ssh -o takes it (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the ssh command instead of running it.")
@verbosity_options
@click.pass_obj
def vm_ssh(settings: Settings, words, vm_id, vm_name, vm_uuid, node_name, user, identity,
           ssh_options, dry_run: bool) -> None:
    """Log in to a VM with ssh, at its DHCP lease; through its node (ssh -J) when the node is
    remote. After --, a command to run there instead of a shell.

    \b
    Examples:
      virshle vm ssh web-1
      virshle vm ssh web-1 --user debian -- uptime
      virshle vm ssh --id 7 -o StrictHostKeyChecking=accept-new
    """
    from .ssh import ssh_argv

    words = list(words)
    if words and not (vm_id or vm_name or vm_uuid):
        vm_name = words.pop(0)
    client, found = actions.find_vm(settings, one_ref(vm_id, vm_name, vm_uuid), node_name, leases=True)
    argv = ssh_argv(client, found, words, user, identity, list(ssh_options))
    if dry_run:
        import shlex

        click.echo(shlex.join(argv))
        return
    _exec(argv)


def _exec(argv: list[str]) -> Any:
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        from ..errors import VirshleError

        raise VirshleError(f"cannot run {argv[0]}: {exc.strerror}",
                           "Install the Debian package openssh-client.") from None


COMMANDS = (vm_pause, vm_resume, vm_reboot, vm_set, vm_disk, vm_snapshot, vm_clone, vm_ssh)
