"""What cloud-init prints on the serial console that ``vm ssh`` can use: the user the
keys went to (``ssh_authkey_fingerprints``' table) and the host's public keys
(``keys_to_console``'s block). The last boot's are the ones that hold."""

from __future__ import annotations

import re

_USER = re.compile(r"Authorized keys from \S+ for user ([a-z_][a-z0-9_.-]*)")
_BLOCK = re.compile(r"-----BEGIN SSH HOST KEY KEYS-----(.*?)-----END SSH HOST KEY KEYS-----",
                    re.S)
_KEY = re.compile(r"\b((?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521))"
                  r" AAAA[A-Za-z0-9+/]+={0,3})")


def login_of(console: str) -> tuple[str | None, list[str]] | None:
    """The user and host keys the console shows (None when it shows neither)."""
    users = _USER.findall(console)
    blocks = _BLOCK.findall(console)
    keys = _KEY.findall(blocks[-1]) if blocks else []
    if not users and not keys:
        return None
    return (users[-1] if users else None), keys
