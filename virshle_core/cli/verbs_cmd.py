"""The ``vm`` and ``node`` commands of the declared verbs (``virshle_core.verbs``): one per
verb, made from its declaration (its words, help and examples, ``NAME...`` with
``--state``/``--all`` when it acts on many, its options and arguments, ``--json``), and the
few commands of their own a declaration names (``command``): set, disk resize, snapshot
ls, clone; ``ssh`` is no verb of the node's."""

from __future__ import annotations

from typing import Any, Callable

import click

from ..verbs import Verb, find
from ..verbs.vm import SETTINGS
from . import actions
from .app import Settings, VirshleGroup, verbosity_options
from .completion import vm_names
from .selection import act, one_ref, vm_ref_options, vm_selection

JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
GROUPS = {
    "snapshot": "Snapshots of a VM's disks (and of a running guest's memory, with --memory).\n\n"
                "They are qcow2 internal snapshots, kept inside each writable disk: nothing "
                "else to keep track of, and a VM's snapshots go with it. Each counts against "
                "[host.limits] disk by its disks' sizes (and the VM's memory with --memory).",
    "disk": "A VM's disks.",
}


def help_of(verb: Verb) -> str:
    """A command's help: the declaration's summary, more, and its examples."""
    text = verb.summary + (f"\n\n{verb.help}" if verb.help else "")
    if verb.examples:
        text += "\n\n\b\nExamples:\n" + "\n".join(f"  {example}" for example in verb.examples)
    return text


def declared(group: str, name: str, words: str | None = None) -> Callable:
    """A command of its own for a declared verb: its help comes from the declaration. With
    ``words`` (the metavar of its words: ``[VM] DISK [+]SIZE``), the common parameters of a
    command on one VM too: its words, ``--id/--name/--uuid/--node``, ``--json``, ``-v``."""
    def decorate(func: Callable) -> click.Command:
        if words is not None:
            for decorator in (click.pass_obj, verbosity_options, JSON, vm_ref_options,
                              click.argument("words", nargs=-1, metavar=words,
                                             shell_complete=vm_names)):
                func = decorator(func)
        return click.command(name.split()[-1], help=help_of(find(group, name)))(func)

    return decorate


def command(verb: Verb) -> click.Command:
    """The command a declaration makes: what it says, which VMs, its options, its words."""
    def callback(settings: Settings, names=(), vm_id=(), vm_name=(), vm_uuid=(), node_name=None,
                 state=None, every=False, as_json=False, words=(), **values: Any) -> None:
        values = {k: v for k, v in values.items() if v not in (None, False)}
        if verb.group == "node":
            return _on_node(settings, verb, node_name, values, as_json)
        if verb.bulk:
            return act(settings, verb, names, vm_id, vm_name, vm_uuid, node_name, state, every,
                       as_json, values, yes=values.pop("yes", False))
        words = list(words)
        wanted = len(verb.arguments)
        if len(words) == wanted + 1 and not (vm_id or vm_name or vm_uuid):
            vm_name = (words.pop(0),)
        if len(words) != wanted:
            raise click.UsageError(f"say the VM{''.join(' and ' + a.metavar for a in verb.arguments)}: "
                                   f"vm {verb.name} VM {' '.join(a.metavar for a in verb.arguments)}")
        for argument, word in zip(verb.arguments, words):
            values[argument.param or argument.field] = word
        actions.one(settings, verb, one_ref(vm_id, vm_name, vm_uuid), node_name, values, as_json)

    params: list[click.Parameter] = []
    for option in verb.options:
        params.append(click.Option(list(option.names), option.field, is_flag=option.flag,
                                   metavar=option.metavar, help=option.help))
    if verb.bulk and verb.method == "DELETE":
        params.append(click.Option(["-y", "--yes"], "yes", is_flag=True,
                                   help="Do not ask before acting on --all or --state VMs."))
    func = click.pass_obj(callback)
    func = verbosity_options(func)
    func = JSON(func)
    if verb.group == "vm":
        if verb.bulk:
            func = vm_selection(func)
        else:
            func = vm_ref_options(func)
            metavar = " ".join(["[VM]"] + [a.metavar for a in verb.arguments])
            func = click.argument("words", nargs=-1, metavar=metavar, shell_complete=vm_names)(func)
    else:
        func = click.option("--node", "node_name", metavar="NAME", help="Only this node.")(func)
    made = click.command(verb.words[-1], help=help_of(verb))(func)
    made.params.extend(params)
    return made


def _on_node(settings: Settings, verb: Verb, node_name: str | None, values: dict,
             as_json: bool) -> None:
    from ..client import fan_out
    from .render import about, echo, emit_json

    results = fan_out(settings.clients(node_name), lambda client: client.perform(verb, **values))
    if as_json:
        emit_json([{"node": c.name, "result": r, "error": e.to_json() if e else None}
                   for c, r, e in results])
    for client, result, error in results:
        if error is not None:
            echo(f"Error: {about(client.name, error.message)}", err=True)
        elif not as_json:
            settings.say(verb.said.format(node=client.name, verb=verb.name))
    if any(error for _, _, error in results):
        raise click.exceptions.Exit(1)


def add_commands(group: click.Group, verbs: list[Verb]) -> None:
    """Each verb of ``group``'s kind: its own command, or the one its declaration makes, in
    the subgroups its words name (``snapshot create``)."""
    for verb in verbs:
        if verb.group != group.name:
            continue
        made = _load(verb.command) if verb.command else command(verb)
        parent = group
        for word in verb.words[:-1]:
            if word not in parent.commands:
                parent.add_command(_subgroup(word, [v for v in verbs if v.words[:-1] == (word,)]))
            parent = parent.commands[word]
        parent.add_command(made, verb.words[-1])


class VerbsGroup(VirshleGroup):
    """The ``vm`` and ``node`` groups: the core's verbs are added where the group is made;
    the plugins' (``virshle_verbs``), once this process has loaded its plugins, the first
    time a command of the group is looked up."""

    plugins_added = False

    def _with_plugins(self) -> None:
        from ..hooks.manager import loaded

        if self.plugins_added or not loaded():
            return
        self.plugins_added = True
        from ..verbs import every

        add_commands(self, [verb for verb in every() if verb.plugin != "core"])

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._with_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._with_plugins()
        return super().get_command(ctx, name)


def _subgroup(word: str, verbs: list[Verb]) -> click.Group:
    """``vm snapshot``, ``vm disk``: the verbs of that word, with an example of each."""
    def group() -> None:
        pass

    examples = [verb.examples[0] for verb in verbs if verb.examples]
    text = GROUPS.get(word, f"The {word} verbs.") + (
        "\n\n\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples) if examples else "")
    return click.group(word, cls=VirshleGroup, help=text)(verbosity_options(group))


def _load(spec: str) -> click.Command:
    from ..verbs import _load as load

    return load(spec)


# --- settings and sizes ----------------------------------------------------------------

def _size(text: str, what: str) -> int:
    """A size on the command line: a bare number is GiB, as in config.toml."""
    from ..units import parse_size

    try:
        return parse_size(float(text) if text.replace(".", "", 1).isdigit() else text)
    except ValueError as exc:
        raise click.BadParameter(f"{what}: {exc}") from None


@declared("vm", "set", words="[NAME] KEY=VALUE...")
def set_command(settings: Settings, words: tuple[str, ...], vm_id, vm_name, vm_uuid, node_name,
                as_json: bool) -> None:
    from ..wire import api

    words = list(words)
    if words and "=" not in words[0] and not (vm_id or vm_name or vm_uuid):
        vm_name = words.pop(0)  # `vm set NAME key=value`, as libvirt's and Incus's verbs read
    if not words:
        raise click.UsageError("say what to change: KEY=VALUE (settings: "
                               + ", ".join(key.split("=")[0] for key in SETTINGS) + ")")
    change = api.VmChange()
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or key not in {setting.split("=")[0] for setting in SETTINGS}:
            raise click.BadParameter(f"{word!r}: settings are " + "; ".join(
                f"{k}: {v}" for k, v in SETTINGS.items()), param_hint="KEY=VALUE")
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
    changed = client.set(actions.uuid_ref(found), **change.to_json())
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


@declared("vm", "disk resize", words="[VM] DISK [+]SIZE")
def disk_resize_command(settings: Settings, words, vm_id, vm_name, vm_uuid, node_name,
                        as_json: bool) -> None:
    words = list(words)
    if len(words) == 3 and not (vm_id or vm_name or vm_uuid):
        vm_name = words.pop(0)
    if len(words) != 2:
        raise click.UsageError("say the VM, the disk and the size: vm disk resize VM DISK +SIZE")
    disk, text = words
    grow = text.startswith("+")
    size = _size(text[1:] if grow else text, "SIZE")
    client, found = actions.find_vm(settings, one_ref(vm_id, vm_name, vm_uuid), node_name)
    changed = client.disk_resize(actions.uuid_ref(found), disk=disk, size=None if grow else size,
                                 grow=size if grow else None)
    if as_json:
        from .render import emit_json

        emit_json(changed)
        return
    from ..units import human_size

    new = next((d.size for d in changed.disks if d.name == disk), None)
    settings.say(f"VM {changed.name}: disk {disk} is now {human_size(new)}.")


# --- snapshots -------------------------------------------------------------------------


def _vm_and_snapshot(words, vm_id, vm_name, vm_uuid, wanted: int = 2) -> tuple:
    """``[VM] SNAPSHOT``: the VM's reference and the snapshot's name."""
    words = list(words)
    if len(words) == wanted and not (vm_id or vm_name or vm_uuid):
        vm_name = words.pop(0)
    if len(words) != wanted - 1:
        raise click.UsageError("say the VM and the snapshot: VM SNAPSHOT (or --name VM SNAPSHOT)")
    return one_ref(vm_id, vm_name, vm_uuid), (words[0] if words else None)


def reply(settings: Settings, as_json: bool, result: Any, message: str) -> None:
    """``--json``: the result as one JSON document; else the message for people."""
    if as_json:
        from .render import emit_json

        emit_json(result)
    else:
        settings.say(message)


@declared("vm", "snapshot ls", words="[VM]")
def snapshot_ls_command(settings: Settings, words, vm_id, vm_name, vm_uuid, node_name,
                        as_json: bool) -> None:
    ref, _ = _vm_and_snapshot(words, vm_id, vm_name, vm_uuid, wanted=1)
    client, found = actions.find_vm(settings, ref, node_name)
    listed = client.snapshot_ls(actions.uuid_ref(found))
    from .render import echo, emit_json, table

    if as_json:
        emit_json(listed)
        return
    from ..units import human_size

    echo(table(["name", "memory", "taken while", "reserves", "created"],
               [[s.name, "yes" if s.memory else "no", s.state, human_size(s.size), s.created_at]
                for s in listed]))


# --- clone and ssh ---------------------------------------------------------------------


@declared("vm", "clone")
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
def clone_command(settings: Settings, source, vm_id, vm_uuid, node_name, new_name, autostart: bool,
                  as_json: bool) -> None:
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
              help="Log in as USER (default: the user its user-data names, else the "
                   "template's ssh_user, else the image's default user its console names, "
                   "else root).")
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
    from .ssh import login_for, ssh_argv

    words = list(words)
    if words and not (vm_id or vm_name or vm_uuid):
        vm_name = words.pop(0)
    client, found = actions.find_vm(settings, one_ref(vm_id, vm_name, vm_uuid), node_name, leases=True)
    ssh_argv(client, found, words, user, identity, [])  # refuses a VM it cannot reach first
    user, known_hosts = login_for(client, found, user)
    argv = ssh_argv(client, found, words, user, identity, list(ssh_options), known_hosts)
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


COMMANDS = (vm_ssh,)
"""The ``vm`` commands that are no verb of the node's."""
