#!/usr/bin/env bash
# Build the small test guest: Debian's cloud kernel (extracted, not installed)
# and a busybox-static initramfs that loads the virtio drivers, prints
# VIRSHLE-GUEST-READY on the serial console, asks DHCP for an address, runs
# an SSH server (Debian's dropbear) and powers off on the ACPI power button.
#
#   scripts/build-guest.sh OUTDIR
#     -> OUTDIR/vmlinuz OUTDIR/initramfs.gz OUTDIR/disk.raw
#        OUTDIR/id_ed25519{,.pub}  a client key the guest's root authorises
#        OUTDIR/host_key.pub       the guest's SSH host key (for known_hosts)
#
# Idempotent: an OUTDIR that holds a complete guest of this recipe is kept.
set -euo pipefail
out=${1:?usage: build-guest.sh OUTDIR}
recipe=7
if [[ -f "$out/recipe" && $(cat "$out/recipe") == "$recipe" && -f "$out/vmlinuz" && -f "$out/initramfs.gz" ]]; then
  exit 0
fi
for tool in busybox cpio gzip dpkg apt-get dropbear dropbearkey ssh-keygen; do
  command -v "$tool" >/dev/null || { echo "build-guest: $tool is missing (make setup installs it)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

cloud_kernel() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }
kernel_pkg=$(cloud_kernel)
if [[ -z "$kernel_pkg" ]]; then
  apt-get update -qq >/dev/null 2>&1 || true  # package lists may be missing on a fresh machine
  kernel_pkg=$(cloud_kernel)
fi
[[ -n "$kernel_pkg" ]] || { echo "build-guest: cannot find the cloud kernel package linux-image-cloud-amd64" >&2; exit 1; }
(cd "$work" && apt-get download "$kernel_pkg" >/dev/null 2>&1) || {
  echo "build-guest: apt-get download $kernel_pkg failed" >&2; exit 1; }
dpkg -x "$work"/linux-image-*.deb "$work/kernel"
cp "$work"/kernel/boot/vmlinuz-* "$out/vmlinuz.tmp"
moddir=$(echo "$work"/kernel/lib/modules/*)

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,etc,lib/modules,tmp,run}
cp "$(command -v busybox)" "$root/bin/busybox"
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
         drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/core/failover \
         drivers/net/net_failover drivers/net/virtio_net drivers/block/virtio_blk \
         drivers/input/evdev drivers/acpi/button; do
  cp "$moddir/kernel/$m.ko" "$root/lib/modules/"
done

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         failover net_failover virtio_net virtio_blk evdev button; do
  insmod /lib/modules/$m.ko 2>/dev/null
done
hostname virshle-guest
echo "VIRSHLE-GUEST-READY"
[ -e /sys/block/vda/size ] && echo "virshle-guest: disk vda $(cat /sys/block/vda/size) sectors"
# The ACPI power button (QEMU system_powerdown, cloud-hypervisor vm.shutdown) powers off.
sleep 0.2
button=$(awk '/^N: Name="Power Button"/{found=1} found && /^H: Handlers=/{for(i=1;i<=NF;i++) if ($i ~ /^event/) print $i; exit}' /proc/bus/input/devices)
if [ -n "$button" ]; then
  (head -c 1 "/dev/input/$button" >/dev/null; echo "virshle-guest: power button, powering off"; sync; poweroff -f) &
fi
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
ip link set lo up
/usr/sbin/dropbear -s -r /etc/dropbear/dropbear_ed25519_host_key -p 22
for dev in /sys/class/net/eth*; do
  [ -e "$dev" ] || continue
  name=${dev##*/}
  ip link set "$name" up
  (udhcpc -i "$name" -s /etc/udhcpc.script -t 20 -T 1 -b >/dev/null 2>&1 &)
done
while true; do setsid cttyhack sh; done
INIT
chmod +x "$root/init"

cat > "$root/etc/udhcpc.script" <<'DHCP'
#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface" 2>/dev/null
    echo "virshle-guest: lease $ip on $interface" > /dev/console
    ;;
esac
DHCP
chmod +x "$root/etc/udhcpc.script"

# SSH: dropbear with the libraries it links, a host key made now, the client key authorised
mkdir -p "$root"/{etc/dropbear,root/.ssh,lib64,lib/x86_64-linux-gnu,usr/sbin}
cp "$(command -v dropbear)" "$root/usr/sbin/dropbear"
ldd "$(command -v dropbear)" | awk '/=> \//{print $3} /^[ \t]*\/lib64\//{print $1}' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
dropbearkey -t ed25519 -f "$root/etc/dropbear/dropbear_ed25519_host_key" >/dev/null 2>&1
dropbearkey -y -f "$root/etc/dropbear/dropbear_ed25519_host_key" | grep '^ssh-' > "$work/host_key.pub"
rm -f "$work/id_ed25519" "$work/id_ed25519.pub"
ssh-keygen -q -t ed25519 -N "" -C "virshle-test" -f "$work/id_ed25519"
cp "$work/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
chmod 700 "$root/root" "$root/root/.ssh"; chmod 600 "$root/root/.ssh/authorized_keys"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
printf '/bin/sh\n' > "$root/etc/shells"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$out/initramfs.gz.tmp"
truncate -s 64M "$out/disk.raw"
cp "$work/id_ed25519" "$work/id_ed25519.pub" "$work/host_key.pub" "$out/"
chmod 600 "$out/id_ed25519"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initramfs.gz.tmp" "$out/initramfs.gz"
echo "$recipe" > "$out/recipe"
echo "build-guest: $out ($kernel_pkg)"
