"""Logging in to a guest: what ``vm ssh`` learns from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .marker import hookspec

if TYPE_CHECKING:
    from ..models import GuestLogin, Vm


@hookspec(firstresult=True)
def virshle_guest_login(vm: Vm, console: str) -> GuestLogin | None:
    """Say, from what the guest printed on its serial console, how to log in to it.

    Runs in the command line's process, when ``vm ssh`` is about to log in and the
    user gave no ``--user``: ``user`` is used when neither the VM's user-data (its
    ``provision["user"]``) nor its template's ``ssh_user`` names one (then root is
    tried); ``host_keys`` are written to the VM's own known-hosts file, so that ssh
    checks the guest's keys strictly without the user's ``~/.ssh/known_hosts``, and a
    reused address never meets another guest's key. The ``cloudinit`` plugin reads
    cloud-init's "Authorized keys ... for user NAME" table and its "BEGIN SSH HOST KEY
    KEYS" block (the last boot's).

    Stops at first non-None result.

    :param vm: the VM, as its node lists it (``provision`` says how it was seeded).
    :param console: the end of its console log (at most the last 256 KiB), as text.
    :returns: a ``GuestLogin`` (``user`` None when the console does not say; an empty
        ``host_keys`` when it printed none), or None when the console says nothing
        this plugin knows.

    Example::

        @hookimpl
        def virshle_guest_login(console):
            found = re.findall(r"Login as (\\w+)", console)
            return GuestLogin(user=found[-1]) if found else None
    """
