#!/usr/bin/env bash
# `make dist`: the wheels and sdists of every distribution, and a wheelhouse of their
# runtime dependencies, into OUTDIR (dist/). Needs only Python 3.11+ with venv and pip
# (Debian: python3-venv), not the test stack: it builds in a venv of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
PYTHON=${PYTHON:-python3}
venv=.venv-dist
if [[ ! -x $venv/bin/python ]]; then
  if ! "$PYTHON" -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      echo "dist: installing python3-venv" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      "$PYTHON" -m venv "$venv"
    else
      echo "dist: $PYTHON cannot make a venv; install python3-venv" >&2
      exit 1
    fi
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check build 'setuptools>=77' wheel
fi
rm -rf "$out"
"$venv/bin/python" scripts/dist.py --wheelhouse "$out"
echo "dist: $(ls "$out" | wc -l) files in $out/; install with:" >&2
echo "  pip install --no-index --find-links $out/ 'virshle[all]'" >&2
