"""SSH public keys for a VM's first boot: read them, check them, name them by fingerprint.

A template's (and the host's) ``ssh_authorized_keys`` entries are key lines
(``ssh-ed25519 AAAA… comment``) or paths of public key files
(``~/.ssh/id_ed25519.pub``, ``~`` being the home of the node daemon's user).
Provisioning plugins turn them into their own format (cloud-init's
``ssh_authorized_keys``, Ignition's ``sshAuthorizedKeys``).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from .config import KEY_TYPES
from .errors import UsageError


def authorized_keys(entries: list[str]) -> list[str]:
    """Every key the entries name, one line each; UsageError names a bad entry."""
    keys: list[str] = []
    for entry in entries:
        text = entry.strip()
        if "\n" in text or "\r" in text:  # a second line would be a second key, unchecked
            raise UsageError("ssh_authorized_keys: an entry must be one line (one key, or one "
                             f"file's path); this one has {len(text.splitlines())}",
                             "Give each key as its own entry of the list.", code="bad_key")
        if text.startswith(KEY_TYPES):
            lines = [text]
            where = "the key"
        else:
            path = Path(text).expanduser()
            try:
                content = path.read_text()
            except FileNotFoundError:
                raise UsageError(f"ssh_authorized_keys: {path} does not exist",
                                 "Give the path of a public key file (…/id_ed25519.pub) that "
                                 "exists on the node, or the key line itself.",
                                 code="bad_key") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"ssh_authorized_keys: cannot read {path}: "
                                 f"{getattr(exc, 'strerror', None) or exc}", code="bad_key") from None
            lines = [line.strip() for line in content.splitlines()
                     if line.strip() and not line.startswith("#")]
            where = str(path)
            if not lines:
                raise UsageError(f"ssh_authorized_keys: {path} holds no key", code="bad_key")
        for line in lines:
            fingerprint(line, where)
            if line not in keys:
                keys.append(line)
    return keys


def fingerprint(line: str, where: str = "the key") -> str:
    """``SHA256:…`` of a public key line, as ``ssh-keygen -l`` prints it."""
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith(KEY_TYPES):
        raise UsageError(f"ssh_authorized_keys: {where} is not a public key "
                         f"(it starts {line[:20]!r})",
                         "A public key line starts with its type: ssh-ed25519, ssh-rsa, "
                         "ecdsa-sha2-nistp256… (a private key must never be given).",
                         code="bad_key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise UsageError(f"ssh_authorized_keys: {where} is not a public key (bad base64)",
                         code="bad_key") from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"
