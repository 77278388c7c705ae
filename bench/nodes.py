"""Multi-node figures (issue 5's targets), over real sshd in namespaces.

    .venv/bin/python bench/nodes.py [--runs N]

`node ls` and `vm ls` over 1, 2 and 4 nodes reached by SSH (target: the
4-node listing at most 1.5x the 1-node one: nodes are asked in parallel),
and the cost of one request over SSH against the same over the unix socket.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from virshle_core.testing.netlab import tear_down  # noqa: E402
from virshle_core.testing import VIRSHLE, remove_short_dirs  # noqa: E402
from virshle_core.testing.sshlab import ssh_nodes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "virshle_core"),
                    str(REPO / "plugins")], stdout=subprocess.DEVNULL)
    parts: list = []
    try:
        lab = ssh_nodes([f"b{i}" for i in range(1, 5)], str(os.getpid() % 10000), "10.56", parts)
        client, home, agent, base = lab.client, lab.home, lab.agent, lab.base
        for daemon in lab.nodes.values():
            for _ in range(5):
                daemon.cli("vm", "create", "-t", "xs")
        urls = [lab.url(name) for name in lab.nodes]
        sockets = [daemon.socket for daemon in lab.nodes.values()]
        env = {**os.environ, "HOME": str(home), "SSH_AUTH_SOCK": str(agent.socket),
               "XDG_CACHE_HOME": str(home / ".cache")}

        def config_for(entries: list[str]) -> Path:
            path = base / f"config{len(entries)}-{entries[0][:4]}.toml"
            path.write_text("".join(f'[[node]]\nname = "n{i}"\nurl = "{u}"\n\n'
                                    for i, u in enumerate(entries, start=1)))
            return path

        def timed(argv: list[str], config: Path) -> float:
            samples = []
            for _ in range(args.runs):
                start = time.perf_counter()
                subprocess.run(["ip", "netns", "exec", client.name, VIRSHLE, *argv],
                               env={**env, "VIRSHLE_CONFIG": str(config)}, check=True,
                               stdout=subprocess.DEVNULL)
                samples.append(time.perf_counter() - start)
            return statistics.median(samples)

        figures = {}
        for count in (1, 2, 4):
            config = config_for(urls[:count])
            timed(["node", "ls"], config)  # warm the config cache
            figures[count] = (timed(["node", "ls"], config), timed(["vm", "ls"], config))
            print(f"{count} node(s) over SSH: node ls {figures[count][0] * 1000:7.1f} ms, "
                  f"vm ls {figures[count][1] * 1000:7.1f} ms", flush=True)
        print(f"4 nodes / 1 node: node ls {figures[4][0] / figures[1][0]:.2f}x, "
              f"vm ls {figures[4][1] / figures[1][1]:.2f}x (target <= 1.5x)")

        # per-request cost: many requests in one process, SSH against the unix socket
        probe = (
            "import sys, time\n"
            "from virshle_core.client import NodeClient\n"
            "from virshle_core.config import NodeEntry\n"
            "client = NodeClient(NodeEntry(name='n', url=sys.argv[1]))\n"
            "client.ping()\n"
            "start = time.perf_counter()\n"
            "for _ in range(200): client.ping()\n"
            "print((time.perf_counter() - start) / 200)\n")
        python = str(Path(VIRSHLE).parent / "python")
        over_ssh = float(subprocess.run(["ip", "netns", "exec", client.name, python, "-c", probe,
                                         urls[0]], env=env, capture_output=True, text=True,
                                        check=True).stdout)
        over_unix = float(subprocess.run([python, "-c", probe, f"unix://{sockets[0]}"], env=env,
                                         capture_output=True, text=True, check=True).stdout)
        print(f"one request (ping), connection reused: over SSH {over_ssh * 1000:.2f} ms, "
              f"over the unix socket {over_unix * 1000:.2f} ms ({over_ssh / over_unix:.1f}x)")
    finally:
        tear_down(parts)
        remove_short_dirs()


if __name__ == "__main__":
    main()
