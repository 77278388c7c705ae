"""KVM only where the CPU really has it; TCG otherwise."""

import pytest

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


@pytest.mark.parametrize("kvm_usable,cpu_has_it,expected", [
    (True, True, "kvm"),
    (True, False, "tcg"),  # a nested PVM /dev/kvm: stock guest kernels hang under it
    (False, True, "tcg"),
    (False, False, "tcg"),
])
def test_auto_uses_kvm_only_where_the_cpu_really_has_it(monkeypatch, kvm_usable, cpu_has_it,
                                                        expected):
    from virshle_qemu import config

    monkeypatch.setattr(config.os, "access", lambda path, mode: kvm_usable and path == "/dev/kvm")
    monkeypatch.setattr(config, "cpu_has_virtualisation", lambda: cpu_has_it)
    assert choose_accel(QemuConfig()) == expected
