"""Pin placement: new VMs go to the node named by ``$VIRSHLE_PIN_NODE``.

A third-party replacement for the ``lb`` plugin's choice, marked
``tryfirst`` so it answers before ``lb``. When the variable is unset, or
that node is not online, it answers None and ``lb`` chooses as usual.
"""

from __future__ import annotations

import os

from virshle_core import hookimpl


@hookimpl(tryfirst=True)
def virshle_choose_node(candidates):
    wanted = os.environ.get("VIRSHLE_PIN_NODE")
    for candidate in candidates:
        if candidate.name == wanted and candidate.status == "online":
            return candidate.name
    return None
