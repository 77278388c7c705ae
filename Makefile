# The two commands a newcomer runs (as root on Debian 12): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: setup demo demo-debian test test-fast bench docs dist clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(PLUGINS) scripts/setup.sh scripts/debian-packages.txt
	PYTHON=$(PYTHON) scripts/setup.sh

demo: setup
	$(VENV)/bin/python scripts/demo.py

# The demo, and a real Debian 12 cloud image booted beside it (cloud-init, your key, ssh).
demo-debian: setup
	$(VENV)/bin/python scripts/demo.py --debian

test: setup
	$(VENV)/bin/pytest

# Without the slow end-to-end tests (those that boot guests).
test-fast: setup
	$(VENV)/bin/pytest -m "not e2e"

# Wheels and sdists of every distribution (the core and each plugin), and a wheel of every
# runtime dependency, into dist/: `pip install --no-index --find-links dist/ 'virshle[all]'`
# then needs no package index. Needs Python's venv, not the test stack.
dist:
	scripts/dist.sh dist

# The parts of docs/ written from the code (hook reference, error codes, the VM document).
docs: setup
	$(VENV)/bin/cog -I docs -r docs/plugins.md docs/api.md

bench: setup
	$(VENV)/bin/python bench/run.py
	$(VENV)/bin/python bench/vm.py
	$(VENV)/bin/python bench/net.py
	$(VENV)/bin/python bench/nodes.py
	$(VENV)/bin/python bench/guest.py
	$(VENV)/bin/python bench/cli.py
	$(VENV)/bin/python bench/scale.py

clean:
	rm -rf $(VENV) .venv-dist build dist *.egg-info plugins/*/*.egg-info .pytest_cache .hypothesis
