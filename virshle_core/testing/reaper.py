"""Run a command as a child subreaper, and reap every orphan it leaves.

    python tests/reaper.py PIDFILE COMMAND [ARG...]

The fault tests ``kill -9`` node daemons. The VMMs a daemon started outlive
it and are re-parented to the nearest subreaper; on a machine whose PID 1
never reaps, they would stay zombies once they end. Started under this
process, they come here instead and are reaped. It writes the command's pid
to PIDFILE, passes SIGTERM and SIGINT on to it, and exits (with the
command's status) once it has no child left.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    pidfile, argv = sys.argv[1], sys.argv[2:]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    child = os.fork()
    if child == 0:
        os.execvp(argv[0], argv)
    with open(pidfile, "w") as handle:
        handle.write(f"{child}\n")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: _forward(child, number))
    status = 0
    while True:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            return status
        except InterruptedError:
            continue
        if pid == child:
            status = os.waitstatus_to_exitcode(code)


def _forward(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
