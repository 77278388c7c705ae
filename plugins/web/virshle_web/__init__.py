"""``virshle web``: a dashboard of every node this command line manages, in the browser.

It runs on the command line's side, not on a node: it shows the nodes of the
configuration (``unix://`` and ``ssh://``), through the same client and fan-out as the
commands. Pages:

- **Fleet**: a card per node: online or why not, cordoned, its VMs, and bars of cpu,
  memory and disk used and reserved against its ``[host.limits]``;
- **VMs**: every VM of every node, filtered by text and state, sorted by any column;
- **a VM**: its disks, NICs, addresses, snapshots, console log and cloud-init status,
  and its actions (start, stop, force stop, pause, resume, reboot, snapshot, restore,
  clone, migrate, remove; a confirmation before what destroys);
- **Create**: from a template, on a node or where the placement hook puts it;
- **Console**: the VM's serial console in xterm.js, on the node's console stream.

Live: the event streams of every node are merged into one (Server-Sent Events); a VM
that changes state changes on the open pages. Reading works without JavaScript.

Access: it listens on loopback (``--listen 127.0.0.1:8080``) and prints a URL with a
random token; opening it sets a cookie, and every request needs one or the other (401
otherwise). Every form carries a CSRF token (403 without it). Another address needs
``--listen-public`` and TLS (``--tls-cert``, ``--tls-key``).
"""

from __future__ import annotations

from virshle_core import hookimpl

NAME = "web"


@hookimpl
def virshle_register_commands(cli):
    import click

    @cli.command("web")
    @click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
                  help="Where to serve the dashboard.")
    @click.option("--listen-public", is_flag=True,
                  help="Allow an address other than loopback (needs --tls-cert and --tls-key).")
    @click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False),
                  help="A PEM certificate: serve HTTPS.")
    @click.option("--tls-key", type=click.Path(exists=True, dir_okay=False),
                  help="The certificate's PEM private key.")
    @click.pass_obj
    def web(settings, listen: str, listen_public: bool, tls_cert: str | None,
            tls_key: str | None) -> None:
        """Serve a dashboard of every node in the browser: fleet, VMs, actions, consoles.

        It prints a URL with a token: open it (the token becomes a cookie). Ctrl-C stops.

        \b
        Examples:
          virshle web
          virshle web --listen 127.0.0.1:9000
          virshle web --listen 0.0.0.0:8443 --listen-public --tls-cert c.pem --tls-key k.pem
        """
        from .server import check_listen, serve

        host, port = check_listen(listen, listen_public, tls_cert, tls_key)
        serve(settings, host, port, tls_cert, tls_key)
