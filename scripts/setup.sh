#!/usr/bin/env bash
# Set-up: Debian packages (when missing), then every distribution of the
# repository installed editable into .venv/ with the dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < scripts/debian-packages.txt
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these Debian packages are missing: ${missing[*]}; run as root or install them." >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The tests start their own OVS, Kea and sshd in namespaces: the packages'
  # system services are not started by this install (policy-rc.d says no).
  policy=/usr/sbin/policy-rc.d
  made_policy=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  [[ -n $made_policy ]] && rm -f "$policy"
  [[ -z ${status:-} ]] || { echo "setup: apt-get install failed" >&2; exit 1; }
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
plugins=()
for dir in plugins/*/; do plugins+=(-e "$dir"); done
echo "setup: installing virshle and $(( ${#plugins[@]} / 2 )) plugins (editable) into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' "${plugins[@]}" 2>&1 \
  | grep -v -e '^WARNING: Location' -e '^$' || true
# Bytecode now: a shell with PYTHONDONTWRITEBYTECODE would otherwise compile on every start.
.venv/bin/python -m compileall -q virshle_core plugins examples >/dev/null || true
.venv/bin/virshle --version >/dev/null
touch .venv/.installed
echo "setup: done; .venv/bin/virshle and .venv/bin/v are ready"
