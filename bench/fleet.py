"""A fleet on one machine: N node daemons, measured against N (issue 25).

    .venv/bin/python bench/fleet.py [--nodes 10,50,100] [--vms 5] [--runs 5] [--ssh]

Starts the largest N of node daemons (each its own root, 5 VMs defined, about 36 MiB),
and an etcd on loopback where they register ([discovery.etcd], [host] advertise_url).
For each N it reports, for a command line that lists the first N nodes by hand (unix
sockets) and for one that has only the catalogue (N nodes registered):

    vm ls; node ls --all; a placement of `vm create -n 50` (and the rm of what it made);
    the peak RSS of the command line's process;

and once, `node drain` of one node with its VMs (cold moves to the others). The same
`vm ls` through one sshd on loopback, every node an `ssh://` URL, warm: one held
connection (its holder) carries the channels to every node's socket.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from virshle_core.testing import VIRSHLE, Daemon, remove_short_dirs, short_dir, write_config  # noqa: E402
from virshle_core.testing.etcdlab import Etcd  # noqa: E402


def timed(argv: list[str], env: dict, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run([VIRSHLE, *argv], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        samples.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {result.stderr[-500:]}")
    return statistics.median(samples)


def peak_rss(argv: list[str], env: dict) -> float:
    """The command line's peak RSS in MiB (a child of a fresh interpreter, measured alone)."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], "
             "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, VIRSHLE, *argv], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", default="10,50,100")
    parser.add_argument("--vms", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    counts = sorted({1, *(int(n) for n in args.nodes.split(","))})  # one node: the baseline
    base = Path(tempfile.mkdtemp(prefix="fleet-", dir="/tmp"))
    etcd = Etcd(base) if shutil.which("etcd") else None
    daemons: list[Daemon] = []
    ssh = None
    try:
        started = time.monotonic()
        for index in range(counts[-1]):
            directory = short_dir("fl")
            config = write_config(directory)
            socket_path = Daemon(directory, config).socket
            extra = ""
            if etcd is not None:
                extra = (f'\n[discovery.etcd]\nendpoints = ["{etcd.url}"]\n')
            config.write_text(config.read_text().replace(
                "[host]\n", f'[host]\nname = "f{index}"\nadvertise_url = "unix://{socket_path}"\n',
                1) + extra)
            daemon = Daemon(directory, config, init_parts=("--dir", "--db"))
            daemon.start()
            daemons.append(daemon)
            for _ in range(args.vms):
                daemon.cli("vm", "create", "-t", "xs")
        print(f"{counts[-1]} daemons with {args.vms} VMs each, up in "
              f"{time.monotonic() - started:.0f} s; daemon RSS "
              f"{statistics.median(_rss(d.pid) for d in daemons):.1f} MiB (median)")
        print(f"{'nodes':>5} {'source':<10} {'vm ls':>9} {'node ls --all':>14} "
              f"{'create -n 50':>13} {'CLI RSS':>9}")
        floors: dict = {}
        for count in counts:
            static = base / f"static-{count}.toml"
            static.write_text("".join(f'[[node]]\nname = "f{i}"\nurl = "unix://{d.socket}"\n\n'
                                      for i, d in enumerate(daemons[:count])))
            sources = [("[[node]]", static)]
            if etcd is not None and count == counts[-1]:
                found = base / "catalogue.toml"
                found.write_text(f'[discovery.etcd]\nendpoints = ["{etcd.url}"]\n'
                                 "allow_local = true\n")
                sources.append(("etcd", found))
            for label, path in sources:
                env = {**os.environ, "VIRSHLE_CONFIG": str(path)}
                subprocess.run([VIRSHLE, "node", "ls"], env=env, stdout=subprocess.DEVNULL)
                spent = _cpu(daemons[:count])
                listing = timed(["vm", "ls"], env, args.runs)
                spent = (_cpu(daemons[:count]) - spent) / args.runs  # the daemons' own work
                floors[(count, label)] = spent / (os.cpu_count() or 1)
                health = timed(["node", "ls", "--all"], env, args.runs)
                start = time.perf_counter()
                made = subprocess.run([VIRSHLE, "vm", "create", "-t", "xs", "-n", "50", "--name",
                                       "placed"], env=env, capture_output=True, text=True)
                placement = time.perf_counter() - start
                if made.returncode != 0:
                    raise SystemExit(made.stderr[-500:])
                subprocess.run([VIRSHLE, "vm", "rm", "--yes",
                                *[f"placed-{i}" for i in range(1, 51)]], env=env,
                               stdout=subprocess.DEVNULL)
                rss = peak_rss(["vm", "ls"], env)
                print(f"{count:>5} {label:<10} {listing * 1000:>7.0f}ms {health * 1000:>12.0f}ms "
                      f"{placement * 1000:>11.0f}ms {rss:>7.1f}MiB   (the daemons' cpu for one "
                      f"vm ls: {spent * 1000:.0f} ms, {floors[(count, label)] * 1000:.0f} ms on "
                      f"{os.cpu_count()} cores)", flush=True)
        ssh = SshFront(base, daemons)
        for count in counts:
            env = ssh.env(count)
            subprocess.run([VIRSHLE, "vm", "ls"], env=env, stdout=subprocess.DEVNULL)
            time.sleep(1.5)  # the holder logs in
            listing = timed(["vm", "ls"], env, args.runs)
            rss = peak_rss(["vm", "ls"], env)
            print(f"{count:>5} {'ssh, warm':<10} {listing * 1000:>7.0f}ms {'':>14} {'':>13} "
                  f"{rss:>7.1f}MiB", flush=True)
        drain_over = counts[1] if len(counts) > 1 else counts[0]
        env = {**os.environ, "VIRSHLE_CONFIG": str(base / f"static-{drain_over}.toml")}
        start = time.perf_counter()
        drained = subprocess.run([VIRSHLE, "node", "drain", "f0"], env=env, capture_output=True,
                                 text=True)
        print(f"node drain of one node with {args.vms} VMs over {drain_over} nodes: "
              f"{(time.perf_counter() - start) * 1000:.0f} ms (exit {drained.returncode})")
    finally:
        if ssh is not None:
            ssh.stop()
        for daemon in daemons:
            daemon.close()
        if etcd is not None:
            etcd.stop()
        remove_short_dirs()
        shutil.rmtree(base, ignore_errors=True)


class SshFront:
    """One sshd on loopback in front of every node, an agent, and a HOME that trusts it."""

    def __init__(self, base: Path, daemons: list[Daemon]):
        from virshle_core.testing.netlab import HostNs, free_port, run
        from virshle_core.testing.sshlab import SshAgent, Sshd

        self.base, self.daemons = base, daemons
        key = base / "id_ed25519"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        self.agent = SshAgent(base / "agent", [key])
        self.sshd = Sshd(HostNs(), base / "sshd", "127.0.0.1", key.with_suffix(".pub"),
                         port=free_port())
        self.home = base / "home"
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".ssh" / "known_hosts").write_text(self.sshd.known_hosts_line() + "\n")

    def env(self, count: int) -> dict:
        path = self.base / f"ssh-{count}.toml"
        path.write_text("".join(
            f'[[node]]\nname = "f{i}"\nurl = "ssh://root@127.0.0.1:{self.sshd.port}{d.socket}"\n\n'
            for i, d in enumerate(self.daemons[:count])))
        return {**os.environ, "VIRSHLE_CONFIG": str(path), "HOME": str(self.home),
                "SSH_AUTH_SOCK": str(self.agent.socket), "XDG_CACHE_HOME": str(self.home / ".cache")}

    def stop(self) -> None:
        self.sshd.stop()
        self.agent.stop()


def _cpu(daemons: list[Daemon]) -> float:
    """Cpu seconds the daemons have used (user and system)."""
    import psutil

    total = 0.0
    for daemon in daemons:
        times = psutil.Process(daemon.pid).cpu_times()
        total += times.user + times.system
    return total


def _rss(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 1024**2


if __name__ == "__main__":
    main()
