#!/usr/bin/env bash
# The main job: a node daemon on a scratch root, and a look at it.
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin/virshle
scratch=$(mktemp -d /tmp/virshle-demo.XXXXXX)
daemon_pid=""
cleanup() {
  if [[ -n "$daemon_pid" ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

truncate -s 64M "$scratch/disk.img"
cat > "$scratch/config.toml" <<TOML
[host]
root = "$scratch/root"

[[template.vm]]
name = "xs"
vcpu = 1
vram = 2

[[template.vm.disk]]
name = "os"
path = "$scratch/disk.img"

[[template.vm.net]]
name = "main"
[template.vm.net.type.tap]
TOML
export VIRSHLE_CONFIG="$scratch/config.toml"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step $V node init --all
$V node serve &
daemon_pid=$!
for _ in $(seq 50); do [[ -S "$scratch/root/virshle.sock" ]] && break; sleep 0.1; done
step $V node ls --all
step $V template ls
step $V plugins ls
step curl -s --unix-socket "$scratch/root/virshle.sock" http://virshle/api/v1/node/ping
echo
step $V vm create -t xs --name demo
step $V vm ls -v
step $V vm rm --name demo
echo
echo "Demo done: the node daemon (pid $daemon_pid) stops now and $scratch is removed."
