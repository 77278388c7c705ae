"""Weighted random placement."""

from __future__ import annotations

import random
from collections import Counter

from virshle_lb import choose, eligible

from virshle_core.models import NodeCandidate


def test_weights_10_to_2_within_bounds():
    rng = random.Random(7)
    candidates = [NodeCandidate("remote_1", weight=10), NodeCandidate("remote_2", weight=2)]
    counts = Counter(choose(candidates, rng=rng) for _ in range(6000))
    share = counts["remote_1"] / 6000
    assert abs(share - 10 / 12) < 0.03, counts


def test_weight_zero_offline_saturated_and_unfit_are_never_chosen():
    candidates = [
        NodeCandidate("zero", weight=0),
        NodeCandidate("down", status="unreachable"),
        NodeCandidate("full", info={"saturated": True}),
        NodeCandidate("small", info={"templates": {"xs": {"fits": False, "reason": "ram"}}}),
        NodeCandidate("ok", weight=1, info={"templates": {"xs": {"fits": True}}}),
    ]
    assert {choose(candidates, "xs") for _ in range(200)} == {"ok"}
    assert eligible(candidates[3], "xs") == (False, "ram")
    assert choose(candidates[:4], "xs") is None


def test_in_flight_creates_spread_a_burst():
    rng = random.Random(3)
    candidates = [NodeCandidate("a", weight=1), NodeCandidate("b", weight=1)]
    placed = Counter()
    for _ in range(40):
        name = choose(candidates, rng=rng)
        placed[name] += 1
        for c in candidates:
            if c.name == name:
                c.in_flight += 1
    assert abs(placed["a"] - placed["b"]) <= 6, placed
