"""The core's verbs on a VM that exists (create, ls, info, logs and the console are the
collection's and the streams' own routes: ``daemon/routes.py``, ``daemon/streams.py``)."""

from __future__ import annotations

from ..wire import api
from .declaration import Argument, Option, Verb

STOPPED = ("created", "shutdown", "crashed")
ACTIVE = ("running", "paused")
CONTROL = "virshle_core.vm.control"
DISKS = "virshle_core.vm.disks"
FORCE_KILL = Option("-f", "--force", field="force", flag=True,
                    help="Kill the VM at once instead of asking the guest.")

SETTINGS = {
    "autostart=true|false": "start it whenever its node daemon starts",
    "vcpu=N": "its vcpus, from its next start (stopped)",
    "vram=SIZE": "its memory, 2 (GiB) or 512MiB, from its next start (stopped)",
}
"""What ``vm set`` changes (``KEY=VALUE``)."""

VM_VERBS = [
    Verb("start", "Boot a VM.",
         help="With --attach, one VM's console then (Ctrl-] detaches).",
         examples=("virshle vm start web-1", "virshle vm start --name web-1 --attach",
                   "virshle vm start web-1 web-2            # several at once",
                   "virshle vm start --all --node remote_1  # every stopped VM there"),
         states=STOPPED, done=ACTIVE, admits=True, hook="virshle_start", event="vm-started",
         run="virshle_core.vm.lifecycle:start", handler="start", bulk=True, doing="starting",
         said="Started VM {vm} (id {id}) on node {node}.",
         command="virshle_core.cli.vm:start_command",
         notes='Its NICs are attached, then the hypervisor plugin starts the VMM in its own session; 409 if it is already running.'),
    Verb("stop", "Stop a VM: ACPI power button, then a kill after [host] stop_timeout.",
         examples=("virshle vm stop web-1",
                   "virshle vm stop --all                    # every running or paused VM, at once",
                   "virshle vm stop --state paused --force"),
         request=api.StopRequest, reply=api.StopResult, states=ACTIVE, done=STOPPED,
         hook="virshle_stop", event="vm-stopped", handler="stop", bulk=True, doing="stopping",
         said="virshle_core.cli.lines:stopped", options=(FORCE_KILL,),
         notes='`force` kills at once. Answers `{"vm": ..., "was_running": bool}`; stopping a stopped VM is a no-op with `was_running: false`.'),
    Verb("rm", "Remove a VM and everything it holds: its process, disks, snapshots, "
         "directory and row.", help="--all and --state ask first, unless --yes.",
         examples=("virshle vm rm web-1", "virshle vm rm web-1 web-2 --force",
                   "virshle vm rm --state shutdown --yes"),
         method="DELETE", path="/vms/{ref}", hook="virshle_post_delete", event="vm-deleted",
         handler="delete", bulk=True, doing="removing",
         said="Removed VM {vm} (id {id}) from node {node}.",
         options=(Option("-f", "--force", field="force", flag=True, help="Stop a running VM first."),),
         query={"force": "Stop a running VM first (1/true)."},
         notes='Its process, NICs, leases, disks, directory and row go; `?force=1` stops a running VM first, otherwise a running VM is a 409.'),
    Verb("pause", "Pause a running VM: its vcpus stop, its memory stays (a paused VM is done "
         "already).", examples=("virshle vm pause web-1", "virshle vm pause --all --node remote_1"),
         states=("running",), done=("paused",), hook="virshle_vm_control", event="vm-paused",
         run=f"{CONTROL}:pause", bulk=True, doing="pausing",
         said="Paused VM {vm} on node {node}.",
         notes='QEMU `stop`, cloud-hypervisor `vm.pause`; answers the VM (`paused`). Any state but running and paused is a 409 `vm_not_running`.'),
    Verb("resume", "Resume a paused VM (a running VM is done already).",
         examples=("virshle vm resume web-1", "virshle vm resume --all"),
         states=("paused",), done=("running",), hook="virshle_vm_control", event="vm-resumed",
         run=f"{CONTROL}:resume", bulk=True, doing="resuming",
         said="Resumed VM {vm} on node {node}.",
         notes='QEMU `cont`, cloud-hypervisor `vm.resume`. A stopped VM is a 409.'),
    Verb("reboot", "Reboot a running VM: the ACPI power button and a reset once the guest is "
         "down, or with force a reset at once.",
         examples=("virshle vm reboot web-1", "virshle vm reboot --force --name web-1 --name web-2"),
         request=api.RebootRequest, states=("running",), hook="virshle_vm_control",
         event="vm-rebooted", run=f"{CONTROL}:reboot", bulk=True, doing="rebooting",
         said="Rebooted VM {vm} on node {node}.",
         options=(Option("-f", "--force", field="force", flag=True,
                         help="Reset at once (the reset button) instead of asking the guest."),),
         notes="Once the guest has powered off, a reset and `cont` instead of an exit (libvirt's way; 500 `vmm_failed` if it did not power off within `[host] stop_timeout`, the VM then left running); `force` is QEMU's `system_reset`. cloud-hypervisor has one reboot, `vm.reboot`. Only a running VM (409 otherwise)."),
    Verb("set", "Change a VM's settings: autostart, and the vcpu and vram (bytes) of a stopped "
         "VM, within [host.limits].",
         help="\b\nSettings:\n" + "\n".join(f"  {key:<22} {what}" for key, what in SETTINGS.items()),
         examples=("virshle vm set web-1 vcpu=4 vram=8GiB", "virshle vm set web-1 autostart=true",
                   "virshle vm set --id 7 autostart=false"),
         method="PATCH", path="/vms/{ref}", request=api.VmChange, admits=True, event="vm-resized",
         run=f"{CONTROL}:change", command="virshle_core.cli.verbs_cmd:set_command",
         notes='The fields given change; answers the VM. `autostart`: the daemon starts the VM when it starts and finds it stopped. `vcpu` and `vram` (bytes) resize a stopped VM for its next start (409 `vm_running` otherwise), admitted as a create is (409 `limit_exceeded`, nothing changed).'),
    Verb("disk resize", "Grow a stopped VM's disk (qemu-img resize), within [host.limits] disk.",
         help="+SIZE adds, SIZE is the new size; a bare number is GiB. The guest grows its "
              "partition and filesystem at its next boot (cloud-init's growpart), or you do.",
         examples=("virshle vm disk resize web-1 os +10G", "virshle vm disk resize --id 7 os 40GiB"),
         path="/vms/{ref}/disks/{disk}/resize", request=api.DiskResize, states=STOPPED,
         admits=True, hook="virshle_disk_resize", event="vm-resized", run=f"{DISKS}:resize_disk",
         arguments=(Argument("DISK", param="disk"),),
         command="virshle_core.cli.verbs_cmd:disk_resize_command",
         notes='`size` (the new size) or `grow` (how much to add), one of the two (`qemu-img resize`). Disks only grow (400 `bad_size`); 404 `disk_not_found`; 409 `vm_running`; a resize is journaled (`resizing`).'),
    Verb("snapshot ls", "The VM's snapshots, oldest first.",
         examples=("virshle vm snapshot ls web-1",), method="GET", path="/vms/{ref}/snapshots",
         reply="list[Snapshot]", lock=False, run="virshle_core.vm.disks:snapshots",
         command="virshle_core.cli.verbs_cmd:snapshot_ls_command",
         notes="Each: `name, vm, memory, state` (the VM's when taken), `size` (what it reserves), `created_at`, and the `vcpu` and `vram` it was taken with."),
    Verb("snapshot create", "Take a snapshot: the writable disks (qcow2 internal snapshots), "
         "and with memory a running guest's memory and devices; it reserves its size against "
         "[host.limits] disk.",
         examples=("virshle vm snapshot create web-1 before-upgrade",
                   "virshle vm snapshot create web-1 live --memory"),
         path="/vms/{ref}/snapshots", status=201, request=api.SnapshotRequest, reply=api.Snapshot,
         admits=True, hook="virshle_snapshot", event="snapshot-created",
         run=f"{DISKS}:take_snapshot",
         said="virshle_core.cli.lines:took_snapshot",
         arguments=(Argument("SNAPSHOT", field="name"),),
         options=(Option("--memory", field="memory", flag=True,
                         help="A running VM's memory and devices too: restoring resumes it "
                              "where it was."),),
         notes="With `qemu-img snapshot` while the VM is stopped, in one QMP `transaction` while it runs, and with `memory` (a running VM only, admitted against the root's free space) QEMU's `savevm`. A name taken is a 409 `snapshot_exists`; a name of digits alone a 400 `bad_name`; journaled (`snapshotting:NAME`)."),
    Verb("snapshot restore", "Bring the disks back to a snapshot (a stopped VM), or a running "
         "guest to a snapshot with memory.",
         examples=("virshle vm snapshot restore web-1 before-upgrade",),
         path="/vms/{ref}/snapshots/{snapshot}/restore", hook="virshle_snapshot",
         event="snapshot-restored", run=f"{DISKS}:snapshot_restore",
         said="Restored VM {vm} to snapshot {snapshot} (it is {state}).",
         arguments=(Argument("SNAPSHOT", param="snapshot"),),
         notes="A stopped VM: `qemu-img snapshot -a` by QEMU's id; a running guest to a snapshot with memory: `loadvm`, refused (409 `snapshot_shape`) when the VM's vcpu or vram changed since. A disk-only snapshot of a running VM is a 409 `vm_running`; 404 `snapshot_not_found` names the VM's snapshots. Answers the VM."),
    Verb("snapshot rm", "Remove a snapshot, and what it reserved.",
         examples=("virshle vm snapshot rm web-1 before-upgrade",), method="DELETE",
         path="/vms/{ref}/snapshots/{snapshot}", reply=api.Snapshot, hook="virshle_snapshot",
         event="snapshot-deleted", run=f"{DISKS}:snapshot_delete",
         said="Removed snapshot {snapshot} of VM {vm}.",
         arguments=(Argument("SNAPSHOT", param="snapshot"),),
         notes='Running or not; answers the snapshot.'),
    Verb("clone", "A new VM with a copy of a stopped VM's disks, a fresh name, uuid, MACs and "
         "cloud-init instance-id (with Accept: application/x-ndjson, progress lines and then "
         "the result).",
         help="Its disks: a qcow2 overlay is copied as a new overlay on the same cached image. "
              "Its snapshots stay with the source.",
         examples=("virshle vm clone web-1 --to web-2", "virshle vm clone --id 7 --json"),
         status=201, request=api.CloneRequest, states=STOPPED, admits=True,
         hook="virshle_disk_copy", event="vm-created", handler="clone",
         command="virshle_core.cli.verbs_cmd:clone_command",
         notes='Its writable disks copied (`virshle_disk_copy`), its size, template, boot fields and user-data; a new uuid, name, MACs and cloud-init seed. Admitted like a create; all or nothing; 409 `name_taken`. With `Accept: application/x-ndjson`, progress lines then `{"result": ...}` or `{"error": ..., "status": N}`.'),
    Verb("migrate", "Move a VM to another node: a stopped VM's files, or with --live a "
         "running guest's disks and memory while it runs.",
         help="It keeps its name, uuid, MACs, template, autostart and (stopped) snapshots; "
              "the target admits it against its [host.limits] before any byte moves, and the "
              "source lets it go only once the target owns it. The streams go through this "
              "command's own connections to both nodes (unix or ssh://): the nodes need no "
              "network between them. A move cut short is settled by running it again.",
         examples=("virshle vm migrate web-1 --to remote_2",
                   "virshle vm migrate web-1 --to remote_2 --live",
                   "virshle vm migrate web-1 --to remote_2 --live --json"),
         path="/vms/{ref}/migrate", request=api.MigrateRequest, reply=api.MoveOffer,
         states=STOPPED + ACTIVE, hook="virshle_migration_send", event="vm-migrated",
         handler="migrate", command="virshle_core.cli.moves:migrate_command",
         notes="The source's *begin*: checks the VM (stopped, or running with `live`), journals it (`migrating:<id>:<node>`, 409 `vm_moving` to other verbs until the move ends) and answers the offer the target's `POST /moves` takes: the VM's row, snapshots, files and base images (their sha256). 409 `vm_running`, `vm_not_running`, `not_supported` (a hypervisor that cannot move it live; snapshots with `live`); 400 `same_node`. The rest of a move is under `/vms/{ref}/migrate/{id}/` and `/moves` (below)."),
]
