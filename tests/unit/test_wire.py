"""The wire records (virshle_core.wire.record, api): what the daemon writes, the client reads back."""

from __future__ import annotations

import pytest

from virshle_core.wire import api
from virshle_core.models import Disk, Net, Vm

VM = dict(id=7, uuid="3f0c6a1e-0000-4000-8000-000000000007", name="web", node="n1", template="xs",
          state="running", vcpu=2, vram=1024, disks=[{"name": "os", "path": "/d", "size": 5,
                                                      "readonly": False, "format": "qcow2"}],
          nets=[{"name": "main", "type": "tap", "mac": "52:54:00:00:00:07", "ifname": "vm7n0",
                 "options": {}}], ips=["10.0.0.7"], kernel=None, initramfs=None, cmdline=None,
          firmware=None, hypervisor="qemu", provision={"seed": "nocloud"},
          created_at="2026-11-27T00:00:00+00:00", updated_at="2026-11-27T00:00:01+00:00",
          autostart=False, owner="root", moving_to=None)


def test_the_node_model_is_written_as_the_declared_document():
    model = Vm(id=7, uuid=VM["uuid"], name="web", node="n1", template="xs", vcpu=2, vram=1024,
               disks=[Disk(name="os", path="/d", size=5, format="qcow2", source="/secret")],
               nets=[Net(name="main", type="tap", mac="52:54:00:00:00:07", ifname="vm7n0")],
               state="running", ips=["10.0.0.7"], hypervisor="qemu", provision={"seed": "nocloud"},
               created_at=VM["created_at"], updated_at=VM["updated_at"], user_data="private")
    document = model.to_json()
    assert document == VM and list(document) == list(VM)  # the declared fields, in order
    assert "source" not in document["disks"][0] and "user_data" not in document  # node-only


def test_a_reply_reads_back_typed_and_writes_back_the_same():
    vm = api.Vm.from_json({**VM, "from_a_newer_daemon": 1})  # unknown fields: ignored
    assert vm.state == api.VmState.RUNNING and vm.disks[0].size == 5 and vm.nets[0].ifname == "vm7n0"
    assert vm.to_json() == VM
    assert api.Vm.from_json({**VM, "state": "hibernated"}).state == "hibernated"  # kept as is


def test_a_reply_that_does_not_fit_says_where():
    with pytest.raises(api.WireError) as caught:
        api.Vm.from_json({**VM, "vcpu": "2", "disks": [{"name": "os"}]})
    assert caught.value.problems == ["vcpu: must be an integer, not '2'", "disks[0].path: is required"]


def test_a_request_is_read_strictly():
    assert api.CreateRequest.from_json({"template": "xs"}, strict=True).count == 1
    with pytest.raises(api.WireError) as caught:
        api.CreateRequest.from_json({"template": "x\x00", "count": True, "colour": "red"},
                                    strict=True)
    assert sorted(caught.value.problems) == [
        "colour: unknown key", "count: must be an integer, not true",
        "template: must not contain a NUL character"]


def test_defaults_are_not_shared_between_records():
    documents = [{key: value for key, value in VM.items() if key != "ips"} for _ in range(2)]
    first, second = (api.Vm.from_json(document) for document in documents)
    first.ips.append("10.0.0.9")
    assert second.ips == [] and api.Vm.from_json(documents[0]).ips == []
