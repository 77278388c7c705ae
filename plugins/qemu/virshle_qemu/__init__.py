"""The QEMU backend (``[qemu]``): QMP control, KVM only where the CPU really has it."""

from __future__ import annotations

import os
import shutil

import attrs

from virshle_core import hookimpl
from virshle_core.config import field_check

ACCELS = ("auto", "kvm", "tcg")


@attrs.define
class QemuConfig:
    """``[qemu]``."""

    binary: str = "qemu-system-x86_64"
    accel: str = attrs.field(
        default="auto",
        validator=field_check(lambda v: None if v in ACCELS else f'must be one of {", ".join(ACCELS)}'))


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


@hookimpl
def virshle_config_sections(register):
    register("qemu", QemuConfig)


@hookimpl
def virshle_node_info(node):
    config = node.section("qemu") or QemuConfig()
    return {"qemu": {"binary": shutil.which(config.binary), "accel": choose_accel(config)}}
