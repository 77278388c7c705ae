"""The QEMU command line: an argument list with everything the VM needs."""

from __future__ import annotations

from pathlib import Path

from virshle_core.models import Disk, NetAttachment, Vm
from virshle_qemu import QemuConfig
from virshle_qemu.vmm import build_argv, is_uefi_image

ESP = bytes.fromhex("28732ac11ff8d211ba4b00a0c93ec93b")


def gpt_image(path: Path, with_esp: bool) -> Path:
    image = bytearray(64 * 1024)
    header = bytearray(92)
    header[:8] = b"EFI PART"
    header[72:80] = (2).to_bytes(8, "little")     # partition entries at LBA 2
    header[80:84] = (4).to_bytes(4, "little")     # 4 entries
    header[84:88] = (128).to_bytes(4, "little")   # of 128 bytes
    image[512:512 + 92] = header
    entry_type = ESP if with_esp else bytes(range(16))
    image[1024 + 128:1024 + 128 + 16] = entry_type  # the second entry
    path.write_bytes(bytes(image))
    return path


def vm(tmp_path, **fields) -> Vm:
    base = dict(id=3, uuid="11111111-2222-4333-8444-555555555555", name="web", node="default",
                template="xs", vcpu=2, vram=512 * 1024**2, dir=str(tmp_path))
    base.update(fields)
    return Vm(**base)


def test_uefi_detection(tmp_path):
    assert is_uefi_image(str(gpt_image(tmp_path / "a.img", with_esp=True)))
    assert not is_uefi_image(str(gpt_image(tmp_path / "b.img", with_esp=False)))
    (tmp_path / "c.img").write_bytes(b"\0" * 4096)
    assert not is_uefi_image(str(tmp_path / "c.img"))


def test_direct_kernel_boot(tmp_path):
    argv = build_argv(vm(tmp_path, kernel="/k", initramfs="/i", cmdline="console=ttyS0 quiet",
                         disks=[Disk(name="os", path="/d/os", format="qcow2")]),
                      [], QemuConfig(), "/usr/bin/qemu-system-x86_64", "tcg")
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    joined = " ".join(argv)
    assert "-kernel /k -initrd /i -append console=ttyS0 quiet" in joined
    assert "-accel tcg -cpu max" in joined and "-smp 2 -m 512M" in joined
    assert f"logfile={tmp_path}/console.log,logappend=on" in joined
    assert "-drive file=/d/os,if=virtio,format=qcow2,index=0" in joined
    assert "-no-shutdown" in argv and "-daemonize" in argv
    assert "pflash" not in joined


def test_kvm_uses_the_host_cpu(tmp_path):
    argv = build_argv(vm(tmp_path, kernel="/k"), [], QemuConfig(), "q", "kvm")
    assert argv[argv.index("-cpu") + 1] == "host"


def test_uefi_disk_boots_ovmf_with_its_own_nvram(tmp_path):
    image = gpt_image(tmp_path / "uefi.img", with_esp=True)
    argv = build_argv(vm(tmp_path, disks=[Disk(name="os", path="/d/os", source=str(image))]),
                      [], QemuConfig(), "q", "tcg")
    joined = " ".join(argv)
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd" in joined
    assert f"if=pflash,format=raw,unit=1,file={tmp_path}/OVMF_VARS.fd" in joined


def test_bios_disk_boots_seabios(tmp_path):
    image = gpt_image(tmp_path / "bios.img", with_esp=False)
    argv = build_argv(vm(tmp_path, disks=[Disk(name="os", path="/d/os", source=str(image))]),
                      [], QemuConfig(), "q", "tcg")
    assert "-bios" not in argv and "pflash" not in " ".join(argv)


def test_explicit_firmware(tmp_path):
    argv = build_argv(vm(tmp_path, firmware="/fw.fd"), [], QemuConfig(), "q", "tcg")
    assert argv[argv.index("-bios") + 1] == "/fw.fd"


def test_nics_by_tap_name_or_inherited_fd(tmp_path):
    attachments = [NetAttachment(net="main", type="tap", ifname="vs3main", mac="02:00:00:00:00:03"),
                   NetAttachment(net="up", type="mac_v_tap", ifname="vm3up", fds=[7],
                                 mac="02:00:00:00:00:04")]
    joined = " ".join(build_argv(vm(tmp_path, kernel="/k"), attachments, QemuConfig(), "q", "tcg"))
    assert "-netdev tap,id=net-main,ifname=vs3main,script=no,downscript=no" in joined
    assert "-device virtio-net-pci,netdev=net-main,mac=02:00:00:00:00:03" in joined
    assert "-netdev tap,id=net-up,fd=7" in joined


def test_no_checksum_offload_behind_a_userspace_switch(tmp_path):
    attachment = NetAttachment(net="main", type="tap", ifname="vm3n0", mac="02:76:73:00:00:03",
                               offload=False)
    joined = " ".join(build_argv(vm(tmp_path, kernel="/k"), [attachment], QemuConfig(), "q", "tcg"))
    assert "virtio-net-pci,netdev=net-main,mac=02:76:73:00:00:03,csum=off,guest_csum=off,gso=off" in joined
