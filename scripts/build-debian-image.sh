#!/usr/bin/env bash
# A real Debian 12 cloud image for the end-to-end tests, the demo and the benches:
# UEFI (GPT + EFI system partition holding a unified kernel image), cloud-init,
# openssh-server, sudo, a DHCP client. Built from Debian's packages with
# mmdebstrap, without mounts or loop devices (mke2fs -d, mtools, sfdisk).
#
#   scripts/build-debian-image.sh [OUTPUT_DIR]
#
# The image is cached outside the checkout, keyed by this script's hash
# (default ${XDG_CACHE_HOME:-~/.cache}/virshle/images/debian12-<hash>/); a
# second run prints the path at once. The last line printed is the image's path.
# Packages come from the sources this host's apt already uses.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hash=$(cat "$0" "$here/debian-image-customize.sh" | sha256sum | cut -c1-12)
out=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/virshle/images/debian12-$hash}
image=$out/disk.raw
if [[ -s $image && -f $out/.complete ]]; then
  echo "$image"
  exit 0
fi

need=(mmdebstrap mtools systemd-boot-efi binutils fdisk e2fsprogs)
missing=()
for pkg in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "build-debian-image: missing Debian packages: ${missing[*]}; run as root" >&2
    exit 1
  fi
  echo "build-debian-image: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
           --no-install-recommends "${missing[@]}" >/dev/null; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/debian-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
started=$(date +%s)

# The host's own Debian sources (deb822 or one-line), bookworm and its updates.
sources=$work/sources
: > "$sources"
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [[ -f $file ]] || continue
  grep -qE 'bookworm' "$file" || continue
  if [[ $file == *.sources ]]; then
    cat "$file" >> "$sources"; echo >> "$sources"
  else
    grep -E '^deb .*bookworm' "$file" >> "$sources" || true
  fi
done
[[ -s $sources ]] || { echo "build-debian-image: no bookworm source in /etc/apt" >&2; exit 1; }
if grep -q '^Types:' "$sources"; then mirror_file=$work/debian.sources; else mirror_file=$work/debian.list; fi
mv "$sources" "$mirror_file"

root_uuid=$(cat /proc/sys/kernel/random/uuid)
esp_partuuid=$(cat /proc/sys/kernel/random/uuid)
root_partuuid=$(cat /proc/sys/kernel/random/uuid)
rootfs=$work/rootfs

packages=linux-image-cloud-amd64,initramfs-tools,zstd,systemd-sysv,libpam-systemd,dbus
packages+=,cloud-init,cloud-guest-utils,openssh-server,openssh-sftp-server,ifupdown,isc-dhcp-client
packages+=,sudo,e2fsprogs,iproute2,netbase,ca-certificates,procps,less

echo "build-debian-image: mmdebstrap (a few minutes)" >&2
mmdebstrap --variant=minbase --mode=unshare --format=directory --include="$packages" \
  --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook="echo 'PARTUUID=$root_partuuid / ext4 errors=remount-ro 0 1' > \"\$1/etc/fstab\"" \
  --customize-hook="echo 'PARTUUID=$esp_partuuid /boot/efi vfat umask=0077,nofail 0 2' >> \"\$1/etc/fstab\"" \
  --customize-hook="mkdir -p \"\$1/boot/efi\"" \
  --customize-hook="\"$here/debian-image-customize.sh\" \"\$1\"" \
  --customize-hook='chroot "$1" update-initramfs -u -k all >/dev/null' \
  --customize-hook="cp \"\$1\"/boot/vmlinuz-* \"$work/vmlinuz\"; cp \"\$1\"/boot/initrd.img-* \"$work/initrd.img\"" \
  --customize-hook='rm -f "$1/etc/apt/apt.conf.d/99mmdebstrap"' \
  bookworm "$rootfs" "$mirror_file" >&2

echo "build-debian-image: unified kernel image" >&2
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
echo "root=PARTUUID=$root_partuuid ro console=tty0 console=ttyS0,115200" > "$work/cmdline"
cp "$rootfs/etc/os-release" "$work/os-release"
# Each section goes after the previous one, 4 KiB aligned (fixed addresses only fit small kernels).
align() { echo $(( ($1 + 4095) / 4096 * 4096 )); }
end=0
while read -r idx _name size vma _rest; do
  [[ $idx =~ ^[0-9]+$ ]] || continue
  (( 16#$vma + 16#$size > end )) && end=$(( 16#$vma + 16#$size ))
done < <(objdump -h "$stub")
osrel=$(align "$end")
cmdline=$(align $((osrel + $(stat -c%s "$work/os-release"))))
linux=$(align $((cmdline + $(stat -c%s "$work/cmdline"))))
initrd=$(align $((linux + $(stat -c%s "$work/vmlinuz"))))
objcopy \
  --add-section .osrel="$work/os-release" --change-section-vma .osrel=$(printf 0x%x "$osrel") \
  --add-section .cmdline="$work/cmdline" --change-section-vma .cmdline=$(printf 0x%x "$cmdline") \
  --add-section .linux="$work/vmlinuz" --change-section-vma .linux=$(printf 0x%x "$linux") \
  --add-section .initrd="$work/initrd.img" --change-section-vma .initrd=$(printf 0x%x "$initrd") \
  "$stub" "$work/BOOTX64.EFI"

echo "build-debian-image: partitions and disk" >&2
rm -rf "$rootfs/boot/efi"/* || true
truncate -s 127M "$work/esp.img"
mformat -i "$work/esp.img" -F -v ESP -T 260096 -h 64 -s 32 ::
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mke2fs -q -t ext4 -U "$root_uuid" -L root -d "$rootfs" "$work/root.img" 1919M
rm -rf "$rootfs"
truncate -s 2048M "$work/disk.raw"
sfdisk -q "$work/disk.raw" <<EOF
label: gpt
start=2048, size=260096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$esp_partuuid, name="ESP"
start=262144, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$root_partuuid, name="root"
EOF
dd if="$work/esp.img" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$work/disk.raw" bs=1M seek=128 conv=notrunc,sparse status=none
mv "$work/disk.raw" "$image"
touch "$out/.complete"
echo "build-debian-image: done in $(( $(date +%s) - started )) s" >&2
echo "$image"
