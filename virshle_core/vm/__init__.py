"""The life of a VM on its node: create, start, stop and delete (``lifecycle``), the verbs
on a VM that exists (``control``: pause, resume, reboot, size, clone; ``disks``: snapshots
and growth), what a crash left (``reconcile``), the node's limits (``admission``), what a
create request must be (``intake``, ``userdata``), and the undo stack (``undo``)."""
