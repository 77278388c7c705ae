#!/usr/bin/env bash
# mmdebstrap customize hook of build-debian-image.sh: make the root filesystem ($1)
# a generic cloud image, so that every VM made from it gets its own identity.
set -euo pipefail
root=$1
: > "$root/etc/machine-id"                      # a new machine-id at first boot
rm -f "$root"/etc/ssh/ssh_host_*                # new host keys per VM (cloud-init makes them)
echo localhost > "$root/etc/hostname"           # cloud-init sets the VM's name
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat > "$root/etc/systemd/system/ssh.service.d/host-keys.conf" <<'UNIT'
[Service]
# sshd starts even where cloud-init did not run
ExecStartPre=/usr/bin/ssh-keygen -A
UNIT
cat > "$root/etc/cloud/cloud.cfg.d/90-virshle-image.cfg" <<'CFG'
# The seed comes from Virshle's NoCloud volume (label cidata): look nowhere else.
datasource_list: [NoCloud, None]
# Debian's locale-gen ignores en_US.UTF-8 unless listed; C.UTF-8 always exists.
locale: C.UTF-8
# sudo resolves the VM's own name.
manage_etc_hosts: true
# A DSA key takes long to make without hardware help, and nothing uses it.
ssh_genkeytypes: [rsa, ecdsa, ed25519]
CFG
# The network: cloud-init writes it from the seed's network-config (ifupdown).
cat > "$root/etc/network/interfaces" <<'NET'
auto lo
iface lo inet loopback
source /etc/network/interfaces.d/*
NET
