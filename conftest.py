"""This repository's own fixtures (the test guest); the shared ones (daemon, register, cli)
come from Virshle's pytest plugin, ``virshle_core.testing``, installed with the package."""

pytest_plugins = ["tests.support"]
