"""Choosing the node for a new VM, through ``virshle_choose_node``."""

from __future__ import annotations

from typing import Any

from .errors import VirshleError
from .models import NodeCandidate
from .plugins import hooks


def choose_node(candidates: list[NodeCandidate], template: Any = None) -> str:
    """The name of the node the plugins chose; an error listing every node's reason if none."""
    chosen = hooks().choose_node(candidates=candidates, template=template)
    names = {c.name for c in candidates}
    if chosen is not None and chosen in names:
        return chosen
    if chosen is not None:
        raise VirshleError(f"the placement plugin chose an unknown node {chosen!r}")
    reasons = "; ".join(f"{c.name}: {_reason(c, template)}" for c in candidates) or "no nodes"
    raise VirshleError(f"no node can take this VM ({reasons})",
                       "Free room on a node, raise [host.limits], or choose one with --node.",
                       code="no_node_fits")


def _reason(candidate: NodeCandidate, template: Any) -> str:
    if candidate.status != "online":
        return candidate.status
    if candidate.weight <= 0:
        return "weight 0"
    if candidate.saturated:
        return saturation_reason(candidate.info)
    if template is not None:
        fit = (candidate.info.get("templates") or {}).get(getattr(template, "name", ""))
        if fit and not fit.get("fits", True):
            return fit.get("reason") or "template does not fit"
    return "not chosen"


def saturation_reason(info: dict) -> str:
    """``saturated: cpu 400% reserved (limit 300%)`` from a node info document."""
    full = []
    for resource in ("cpu", "ram", "disk"):
        figures = info.get(resource) or {}
        reserved, limit = figures.get("reserved_pct"), figures.get("limit_pct")
        if reserved is not None and limit and reserved >= limit:
            full.append(f"{resource} {reserved:g}% reserved (limit {limit:g}%)")
    return "saturated: " + ", ".join(full) if full else "saturated"
