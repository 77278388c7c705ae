"""Many nodes at once: every node asked in parallel, each keeping its result or its
error; and one entry per daemon when two ``[[node]]`` entries reach the same one."""

from __future__ import annotations

from ..errors import VirshleError

TYPE_CHECKING = False  # typing itself is an import the CLI's start-up avoids
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, TypeVar

    NodeClient = Any  # the package's: importing it here would make a cycle
    T = TypeVar("T")


def fan_out(clients: Iterable[NodeClient], work: Callable[[NodeClient], T]
            ) -> list[tuple[NodeClient, T | None, VirshleError | None]]:
    """Run ``work`` on every node in parallel; keep each node's result or error."""
    clients = list(clients)

    def one(client: NodeClient) -> tuple[NodeClient, T | None, VirshleError | None]:
        try:
            return client, work(client), None
        except VirshleError as exc:
            return client, None, exc

    if len(clients) <= 1:
        return [one(c) for c in clients]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(32, len(clients))) as pool:
        try:
            return list(pool.map(one, clients))
        except KeyboardInterrupt:
            for client in clients:  # the workers' requests end now, so the pool can close
                client.abort()
            raise


def one_per_daemon(results: list) -> tuple[list, list[str]]:
    """``fan_out``'s results with one entry per daemon: two ``[[node]]`` entries that reach
    the same daemon (a unix and an ssh URL of one host, say) answer with the same node id,
    and only the first is kept. Also what to tell the user, once per such pair."""
    first: dict[str, str] = {}
    kept, notices = [], []
    for client, value, error in results:
        identity = client.node_id if error is None else None
        if identity and identity in first:
            notices.append(f"nodes {first[identity]!r} and {client.name!r} reach the same daemon "
                           f"(node id {identity[:8]}): its VMs are shown once, as node "
                           f"{first[identity]!r}; remove one of the two [[node]] entries")
            continue
        if identity:
            first[identity] = client.name
        kept.append((client, value, error))
    return kept, notices
