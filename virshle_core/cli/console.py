"""Joining the terminal to a VM's serial console (``vm attach``, ``vm start --attach``)."""

from __future__ import annotations

import os
import select
import sys
import threading

import click

DETACH = b"\x1d"  # Ctrl-]


def attach(client, ref: str, name: str) -> None:
    """Relay stdin to the console and the console to stdout until Ctrl-] or the VM stops."""
    ws = client.console(ref)
    interactive = sys.stdin.isatty()
    click.echo(f"Attached to the console of {name} on node {client.name}. "
               "Press Ctrl-] to detach.", err=True)
    saved = None
    if interactive:
        import termios
        import tty

        saved = termios.tcgetattr(sys.stdin.fileno())
        tty.setraw(sys.stdin.fileno())
    stop = threading.Event()

    def pump_output() -> None:
        out = sys.stdout.buffer
        while True:
            data = ws.recv()
            if data is None:
                break
            out.write(data)
            out.flush()
        stop.set()

    reader = threading.Thread(target=pump_output, daemon=True)
    reader.start()
    reason = "detached"
    try:
        stdin = sys.stdin.fileno()
        while not stop.is_set():
            ready, _, _ = select.select([stdin], [], [], 0.2)
            if not ready:
                continue
            data = os.read(stdin, 4096)
            if not data:
                if interactive:
                    break
                # stdin ended (a pipe): keep showing output until Ctrl-] never comes
                stop.wait()
                break
            if DETACH in data:
                before = data.split(DETACH, 1)[0]
                if before:
                    ws.send(before)
                break
            ws.send(data)
        else:
            reason = "the console closed (the VM stopped?)"
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
        ws.close()
    click.echo(f"\r\n[{reason}: {name}]", err=True)
