"""Shared fixtures for the core and plugin tests (see tests/support.py)."""

pytest_plugins = ["tests.support"]
