"""KVM only where the CPU really has it; TCG otherwise."""

from virshle_qemu import QemuConfig, choose_accel, cpu_has_virtualisation


def test_flags(tmp_path):
    with_vmx = tmp_path / "a"
    with_vmx.write_text("processor : 0\nflags : fpu vme vmx sse\n")
    without = tmp_path / "b"
    without.write_text("processor : 0\nflags : fpu vme sse hypervisor\n")
    assert cpu_has_virtualisation(str(with_vmx))
    assert not cpu_has_virtualisation(str(without))
    assert not cpu_has_virtualisation(str(tmp_path / "missing"))


def test_override():
    assert choose_accel(QemuConfig(accel="tcg")) == "tcg"
    assert choose_accel(QemuConfig(accel="kvm")) == "kvm"
    assert choose_accel(QemuConfig()) in ("kvm", "tcg")
