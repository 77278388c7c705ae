"""Keeps a cloud-hypervisor VM's serial console: a log on disk and a socket to attach to.

    python -m virshle_ch.console_keeper SERIAL_SOCKET CONSOLE_SOCKET LOG_FILE

cloud-hypervisor's serial port in ``Socket`` mode serves one client and
keeps no log. This small process, started beside the VMM in its own
session, is that one client: it appends everything the guest prints to
LOG_FILE (so ``vm logs`` works even while no daemon runs) and serves
CONSOLE_SOCKET, where ``vm attach`` connects; what an attached client types
goes to the guest. It ends when the VMM closes the serial port, or on
SIGTERM.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
import time


def connect(path: str, timeout: float = 10.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def main(serial_path: str, console_path: str, log_path: str) -> int:
    serial = connect(serial_path)
    try:
        os.unlink(console_path)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(console_path)
    os.chmod(console_path, 0o600)
    server.listen(4)
    log = open(log_path, "ab", buffering=0)
    selector = selectors.DefaultSelector()
    selector.register(serial, selectors.EVENT_READ, "serial")
    selector.register(server, selectors.EVENT_READ, "server")
    clients: set[socket.socket] = set()
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    try:
        while running:
            for key, _ in selector.select(timeout=0.5):
                if key.data == "server":
                    client, _ = server.accept()
                    clients.add(client)
                    selector.register(client, selectors.EVENT_READ, "client")
                elif key.data == "serial":
                    data = serial.recv(65536)
                    if not data:
                        return 0  # the VMM is gone
                    log.write(data)
                    for client in list(clients):
                        try:
                            client.sendall(data)
                        except OSError:
                            clients.discard(client)
                            selector.unregister(client)
                            client.close()
                else:
                    client = key.fileobj
                    data = client.recv(65536)
                    if not data:
                        clients.discard(client)
                        selector.unregister(client)
                        client.close()
                        continue
                    serial.sendall(data)
    finally:
        for sock in (*clients, server, serial):
            sock.close()
        try:
            os.unlink(console_path)
        except FileNotFoundError:
            pass
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
