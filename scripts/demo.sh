#!/usr/bin/env bash
# The main job: a node daemon on a scratch root, a real guest booted on it.
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin/virshle
scratch=$(mktemp -d /tmp/virshle-demo.XXXXXX)
daemon_pid=""
cleanup() {
  if [[ -n "$daemon_pid" ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    VIRSHLE_CONFIG="$scratch/config.toml" $V -q vm rm --name demo --force >/dev/null 2>&1 || true
    kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

scripts/build-guest.sh .cache/guest
guest=$(pwd)/.cache/guest
cp "$guest/disk.raw" "$scratch/disk.raw"
cat > "$scratch/config.toml" <<TOML
[host]
root = "$scratch/root"
stop_timeout = 20

[[template.vm]]
name = "tiny"
vcpu = 1
vram = "256MiB"
kernel = "$guest/vmlinuz"
initramfs = "$guest/initramfs.gz"
cmdline = "console=ttyS0 quiet panic=-1"

[[template.vm.disk]]
name = "os"
path = "$scratch/disk.raw"
TOML
export VIRSHLE_CONFIG="$scratch/config.toml"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step $V node init --all
$V node serve &
daemon_pid=$!
for _ in $(seq 100); do [[ -S "$scratch/root/virshle.sock" ]] && break; sleep 0.1; done
step $V node ls --all
step $V template ls
step $V plugins ls
step curl -s --unix-socket "$scratch/root/virshle.sock" http://virshle/api/v1/node/ping
echo
step $V vm create -t tiny --name demo
step $V vm start --name demo
printf '\n(waiting for the guest to boot: it prints VIRSHLE-GUEST-READY on its serial console)\n'
for _ in $(seq 120); do
  $V vm logs --name demo 2>/dev/null | grep -q VIRSHLE-GUEST-READY && break
  sleep 0.5
done
step $V vm ls -v
printf '\n\033[1m$ %s\033[0m\n' "$V vm logs --name demo | head -3"
$V vm logs --name demo | head -3
step $V vm stop --name demo
step $V vm rm --name demo
echo
echo "Demo done: the node daemon (pid $daemon_pid) stops now and $scratch is removed."
