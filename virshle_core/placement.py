"""Choosing the node for a new VM, through ``virshle_choose_node``."""

from __future__ import annotations


from .errors import VirshleError
from .models import NodeCandidate
from .plugins import hooks


def choose_node(candidates: list[NodeCandidate], template_name: str | None = None) -> str:
    """The name of the node the plugins chose; an error with every node's reason if none
    (the reasons are the placement plugin's: ``candidate.refused``)."""
    chosen = hooks().choose_node(candidates=candidates, template_name=template_name)
    names = {c.name for c in candidates}
    if chosen is not None and chosen in names:
        return chosen
    if chosen is not None:
        raise VirshleError(f"the placement plugin chose an unknown node {chosen!r}")
    reasons = "; ".join(f"{c.name}: {c.refused or 'not chosen'}" for c in candidates) or "no nodes"
    raise VirshleError(f"no node can take this VM ({reasons})",
                       "Free room on a node, raise [host.limits], or choose one with --node.",
                       code="no_node_fits")
