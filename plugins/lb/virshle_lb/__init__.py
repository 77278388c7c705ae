"""Placement: where ``vm create`` puts a VM when no ``--node`` is given.

A weighted random choice among the candidates that are online, not
saturated, fit the template and have a weight above 0. Creates already in
flight count against a node: each one lowers its effective weight, so a
burst of creates spreads out instead of piling onto one node.

Another plugin overrides this one with ``@hookimpl(tryfirst=True)``.
"""

from __future__ import annotations

import random
from typing import Any

from virshle_core import hookimpl

_rng = random.SystemRandom()


def eligible(candidate: Any, template_name: str | None) -> tuple[bool, str]:
    """Whether the balancer may choose ``candidate``, and if not, why."""
    if candidate.status != "online":
        return False, candidate.status
    if candidate.weight <= 0:
        return False, "weight 0"  # only chosen with --node
    if candidate.saturated:
        return False, candidate.saturation
    if template_name is not None:
        templates = candidate.info.get("templates")
        fit = (templates or {}).get(template_name)
        if templates is not None and fit is None:
            return False, f"offers no template {template_name!r}"
        if fit is not None and not fit.get("fits", True):
            return False, fit.get("reason") or "the template does not fit"
    return True, ""


def effective_weight(candidate: Any) -> float:
    return candidate.weight / (1.0 + candidate.in_flight)


def choose(candidates: list, template_name: str | None = None,
           rng: random.Random = _rng) -> str | None:
    pool = []
    for candidate in candidates:
        ok, candidate.refused = eligible(candidate, template_name)
        if ok:
            pool.append(candidate)
    if not pool:
        return None
    weights = [effective_weight(c) for c in pool]
    return rng.choices(pool, weights=weights, k=1)[0].name


@hookimpl
def virshle_choose_node(candidates: list, template_name: str | None) -> str | None:
    return choose(candidates, template_name)
