"""The store: WAL, schema version, forward migrations, unique names."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from virshle_core.store import store as store_module
from virshle_core.errors import Conflict, NotFound, UsageError
from virshle_core.models import Disk, Vm
from virshle_core.store.store import Store



def nic_macs(store) -> set[str]:
    """The MACs the store's uniqueness table holds (what keeps two NICs from sharing one)."""
    return {row[0] for row in store.conn.execute("SELECT mac FROM nics").fetchall()}

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
                              "running_vcpu": 0, "running_vram": 0,
                              "by_state": {"created": 2}}
    store.update(vm, state="running")
    assert store.totals()["running_vcpu"] == 2 and store.totals()["running_vram"] == 1024
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
        db["vms"].add_column("future_setting", int, not_null_default=0)

    before = len(store_module.MIGRATIONS)
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS + [v2])
    store = Store(path)
    assert store.version == before + 1
    assert store.get("keep-me").name == "keep-me"
    assert "future_setting" in store.db["vms"].columns_dict
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
    assert store.get("n3").nets[1].ifname == f"v{store.tag}4n1"  # stored, stable
    assert nic_macs(store) == set(macs)


def test_two_roots_on_one_host_name_their_first_nic_apart(tmp_path):
    """Both roots once named their first VM's tap vm1n0: one host, one name, two owners."""
    from virshle_core.marks import node_tag
    from virshle_core.models import Net

    firsts = []
    for root, identity in (("one", "0b0b0b0b-0000-4000-8000-000000000001"),
                           ("two", "0b0b0b0b-0000-4000-8000-000000000002")):
        (tmp_path / root).mkdir()
        (tmp_path / root / "node-id").write_text(identity + "\n")
        store = Store(tmp_path / root / "v.sqlite")
        vm = make_vm("first")
        vm.nets = [Net(name="main", type="tap")]
        first = store.insert(vm)
        assert first.id == 1 and store.tag == node_tag(identity)
        firsts.append(first.nets[0].ifname)
    assert firsts[0] != firsts[1] and all(len(name) <= 15 for name in firsts)


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


def test_ids_are_never_given_again(tmp_path):
    # Issue 8, item 15: after removing id 1, the next VM got id 1.
    store = Store(tmp_path / "v.sqlite")
    first = store.insert(make_vm("first"))
    second = store.insert(make_vm("second"))
    store.delete(second)
    store.delete(first)
    assert store.insert(make_vm("third")).id == 3
    store.close()
    assert Store(tmp_path / "v.sqlite").insert(make_vm("fourth")).id == 4  # across restarts too


def test_upgrading_to_autoincrement_keeps_rows_and_nics(tmp_path, monkeypatch):
    import json

    path = tmp_path / "v.sqlite"
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:2])
    old = Store(path)  # a version-2 database, as round one wrote it
    nets = [{"name": "main", "type": "tap", "options": {}, "mac": "02:76:73:00:00:01",
             "ifname": "vm1n0"}]
    for vm_id, name in ((1, "kept"), (2, "gone")):
        old.db["vms"].insert({"id": vm_id, "uuid": f"u{vm_id}", "name": name, "template": "xs",
                              "vcpu": 1, "vram": 1, "state": "created", "nets": json.dumps(nets)})
    old.db.execute("INSERT INTO nics VALUES (1, 'main', '02:76:73:00:00:01', 'vm1n0')")
    old.db.execute("DELETE FROM vms WHERE id = 2")
    old.close()
    monkeypatch.undo()
    store = Store(path)
    (vm,) = store.all()
    assert vm.name == "kept" and vm.nets[0].mac == "02:76:73:00:00:01"
    assert nic_macs(store) == {"02:76:73:00:00:01"}  # the nics survived the table rebuild
    assert store.insert(make_vm("next")).id == 2  # AUTOINCREMENT from the highest id left


def test_each_reference_looks_in_its_own_namespace(tmp_path):
    from virshle_core.wire.refs import VmRef

    store = Store(tmp_path / "v.sqlite")
    alpha = store.insert(make_vm("alpha"))
    # a name that only an older Virshle allowed: all digits, equal to alpha's id
    store.db["vms"].insert({"uuid": str(uuid.uuid4()), "name": "1", "template": "xs", "vcpu": 1,
                            "vram": 1, "state": "created"})
    assert store.get(VmRef.of("id", 1)).name == "alpha"
    assert store.get(VmRef.of("name", "1")).id == 2
    assert store.get(VmRef.of("uuid", alpha.uuid)).name == "alpha"
    with pytest.raises(UsageError, match="is ambiguous"):
        store.get("1")  # bare, and both readings exist: refused
    with pytest.raises(NotFound):
        store.get(VmRef.of("id", 12345))
    with pytest.raises(NotFound):
        store.get(VmRef.of("id", 10**30))  # larger than any id SQLite can hold
    with pytest.raises(NotFound):
        store.get(VmRef.of("name", "alph"))


def test_rows_being_created_are_hidden_but_reserved(tmp_path):
    store = Store(tmp_path / "v.sqlite")
    done = store.insert(make_vm("done"))
    making = make_vm("making")
    making.pending = "creating"
    store.insert(making)
    assert [vm.name for vm in store.all()] == ["done"]
    with pytest.raises(NotFound):
        store.get("making")
    totals = store.totals()
    assert totals["vcpu"] == 4 and totals["vms"] == 1 and totals["creating"] == 1
    assert [vm.name for vm in store.journal()] == ["making"]
    store.finish_creating([making])
    assert [vm.name for vm in store.all()] == ["done", "making"] and not store.journal()
    assert done.id < making.id


def test_admission_and_insert_are_one_transaction(tmp_path):
    # 16 threads, room for 5 VMs of 2 vcpu: exactly 5 get in.
    import threading

    from virshle_core.errors import Conflict

    path = tmp_path / "v.sqlite"
    Store(path).close()
    admitted, refused = [], []

    def admit(totals):
        if totals["vcpu"] + 2 > 10:
            raise Conflict("full", code="limit_exceeded")

    def worker(index):
        store = Store(path)  # its own connection, as another process would have
        try:
            store.insert_many([make_vm(f"w{index}")], admit=admit)
            admitted.append(index)
        except Conflict:
            refused.append(index)
        finally:
            store.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 5 and len(refused) == 11
    assert Store(path).totals()["vcpu"] == 10


def test_a_broken_or_empty_database_is_refused_when_vms_exist(tmp_path):
    from virshle_core.errors import VirshleError
    from virshle_core.store.opening import open_node_store, set_aside

    db, vm_root = tmp_path / "virshle.sqlite", tmp_path / "vm"
    (vm_root / str(uuid.uuid4())).mkdir(parents=True)
    db.write_bytes(b"")
    with pytest.raises(VirshleError, match=r"is empty \(0 bytes\); 1 VM directory under"):
        open_node_store(db, vm_root)
    db.write_bytes(b"this is not a database, it is garbage" * 200)
    with pytest.raises(VirshleError, match="is not a usable SQLite database") as info:
        open_node_store(db, vm_root)
    assert "--force-new" in info.value.hint
    db.unlink()
    with pytest.raises(VirshleError, match="is missing"):
        open_node_store(db, vm_root)
    Store(db).close()  # valid, but empty: it would forget the VM
    with pytest.raises(VirshleError, match="holds no VM"):
        open_node_store(db, vm_root)
    moved = set_aside(db, vm_root)
    assert any("virshle.sqlite.broken-" in line for line in moved)
    assert list(vm_root.iterdir()) == [] and list((tmp_path / "lost+found").iterdir())
    open_node_store(db, vm_root).close()  # a new, empty start


def test_a_current_store_opens_without_sqlite_utils(tmp_path):
    """sqlite-utils (5 MiB with the click and importlib.metadata it imports) is for
    migrations: a daemon whose database is current never loads it."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path\n"
            "from virshle_core.store.opening import open_node_store\n"
            "store = open_node_store(Path(sys.argv[1]), Path(sys.argv[2]), 'n')\n"
            "store.all(); store.close(); print('sqlite_utils' in sys.modules)\n")
    argv = [sys.executable, "-c", code, str(tmp_path / "virshle.db"), str(tmp_path / "vm")]
    (tmp_path / "vm").mkdir()
    first = subprocess.run(argv, capture_output=True, text=True, check=True)
    again = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert (first.stdout.strip(), again.stdout.strip()) == ("True", "False")


def test_a_round_one_database_opens_with_this_code(tmp_path):
    """tests/data/round-one.sqlite was written by round one's Virshle (6bc1402, schema
    version 2) with two VMs: this code migrates it forward and loses nothing."""
    import shutil

    from virshle_core.store.migrations import MIGRATIONS

    path = tmp_path / "virshle.sqlite"
    shutil.copyfile(Path(__file__).parent.parent / "data" / "round-one.sqlite", path)
    store = Store(path)
    try:
        assert store.version == len(MIGRATIONS)
        web, db = store.get("web-1"), store.get("db-1")
        assert (web.id, web.state, db.id, db.state) == (1, "shutdown", 2, "created")
        assert web.uuid == "0d6f0c1e-0000-4000-8000-000000000001"
        assert [(n.mac, n.ifname) for n in web.nets] == [("02:76:73:68:df:d9", "vm1n0")]
        assert [(d.name, d.size) for d in web.disks] == [("os", 1048576)]
        assert (web.pending, web.autostart, web.provision) == (None, False, {})
        new = store.insert(make_vm("after-upgrade"))
        assert new.id == 3  # ids go on from where round one left them
    finally:
        store.close()
