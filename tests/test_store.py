"""The store: WAL, schema version, forward migrations, unique names."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from virshle_core import store as store_module
from virshle_core.errors import Conflict, NotFound, UsageError
from virshle_core.models import Disk, Vm
from virshle_core.store import Store


def make_vm(name: str) -> Vm:
    return Vm(id=None, uuid=str(uuid.uuid4()), name=name, node="default", template="xs",
              vcpu=2, vram=1024, disks=[Disk(name="os", path="/x", size=100)])


def test_wal_and_version(tmp_path):
    store = Store(tmp_path / "v.sqlite")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.version == len(store_module.MIGRATIONS)


def test_insert_get_by_id_name_uuid_and_totals(tmp_path):
    store = Store(tmp_path / "v.sqlite")
    vm = store.insert(make_vm("alpha"))
    assert vm.id == 1
    for ref in (1, "1", "alpha", vm.uuid):
        assert store.get(ref).uuid == vm.uuid
    store.insert(make_vm("beta"))
    assert store.totals() == {"vms": 2, "vcpu": 4, "vram": 2048, "disk": 200,
                              "by_state": {"created": 2}}
    with pytest.raises(NotFound):
        store.get("gamma")


def test_names_are_unique(tmp_path):
    store = Store(tmp_path / "v.sqlite")
    store.insert(make_vm("alpha"))
    with pytest.raises(Conflict) as info:
        store.insert(make_vm("alpha"))
    assert info.value.code == "name_taken"
    assert len(store.all()) == 1


def test_forward_migration_keeps_rows(tmp_path, monkeypatch):
    path = tmp_path / "v.sqlite"
    store = Store(path)
    store.insert(make_vm("keep-me"))
    store.close()

    def v2(db):
        db["vms"].add_column("autostart", int, not_null_default=0)

    before = len(store_module.MIGRATIONS)
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS + [v2])
    store = Store(path)
    assert store.version == before + 1
    assert store.get("keep-me").name == "keep-me"
    assert "autostart" in store.db["vms"].columns_dict
    store.close()
    Store(path).close()  # a second open applies nothing again


def test_a_newer_database_is_refused(tmp_path):
    path = tmp_path / "v.sqlite"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(UsageError, match="newer than this Virshle understands"):
        Store(path)


def test_a_failed_migration_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "v.sqlite"
    Store(path).close()

    def broken(db):
        db["vms"].add_column("half", int)
        raise RuntimeError("migration bug")

    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS + [broken])
    with pytest.raises(RuntimeError):
        Store(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(
        store_module.MIGRATIONS) - 1
    assert "half" not in [r[1] for r in conn.execute("PRAGMA table_info(vms)")]


def test_nics_get_unique_macs_and_interface_names(tmp_path):
    from virshle_core.models import Net

    store = Store(tmp_path / "v.sqlite")
    vms = []
    for index in range(40):
        vm = make_vm(f"n{index}")
        vm.nets = [Net(name="main", type="tap"), Net(name="up", type="mac_v_tap")]
        vms.append(store.insert(vm))
    macs = [n.mac for vm in vms for n in vm.nets]
    names = [n.ifname for vm in vms for n in vm.nets]
    assert len(set(macs)) == len(macs) == 80 and len(set(names)) == 80
    assert all(m.startswith("02:76:73:") for m in macs)
    assert all(len(n) <= 15 for n in names)
    assert store.get("n3").nets[1].ifname == "vm4n1"  # stored, stable
    assert store.macs() == set(macs)


def test_v1_databases_get_their_nics_on_upgrade(tmp_path, monkeypatch):
    import json

    path = tmp_path / "v.sqlite"
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
    old = Store(path)
    old.db["vms"].insert({"uuid": "u1", "name": "old", "template": "xs", "vcpu": 1, "vram": 1,
                          "state": "created", "nets": json.dumps([{"name": "main", "type": "tap",
                                                                    "options": {}}])})
    old.close()
    monkeypatch.undo()
    store = Store(path)
    (net,) = store.get("old").nets
    assert net.mac.startswith("02:76:73:") and net.ifname == "vm1n0"
