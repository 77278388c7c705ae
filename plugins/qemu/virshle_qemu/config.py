"""``[qemu]``: the plugin's settings, and which accelerator a VM gets."""

from __future__ import annotations

import os

import attrs

from virshle_core.config import field_check

ACCELS = ("auto", "kvm", "tcg")
NAME = "qemu"


@attrs.define
class QemuConfig:
    """``[qemu]``."""

    binary: str = "qemu-system-x86_64"
    accel: str = attrs.field(
        default="auto",
        validator=field_check(lambda v: None if v in ACCELS else f'must be one of {", ".join(ACCELS)}'))
    machine: str = "q35"
    ovmf_code: str = "/usr/share/OVMF/OVMF_CODE_4M.fd"
    ovmf_vars: str = "/usr/share/OVMF/OVMF_VARS_4M.fd"


def cpu_has_virtualisation(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU flags show vmx or svm (a nested PVM /dev/kvm shows neither)."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return "vmx" in flags or "svm" in flags
    except OSError:
        return False
    return False


def choose_accel(config: QemuConfig) -> str:
    if config.accel != "auto":
        return config.accel
    usable = os.access("/dev/kvm", os.R_OK | os.W_OK)
    return "kvm" if usable and cpu_has_virtualisation() else "tcg"


def config_of(node) -> QemuConfig:
    return node.section("qemu") or QemuConfig()
