"""Readable random VM names: ``brave-otter``, ``quiet-heron``."""

from __future__ import annotations

import random

ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "dapper", "eager",
    "fancy", "fierce", "gentle", "glad", "golden", "happy", "hidden", "jolly", "keen", "kind",
    "lively", "lucky", "merry", "mighty", "misty", "noble", "polar", "proud", "quick", "quiet",
    "rapid", "royal", "rustic", "shiny", "silent", "silver", "smooth", "snowy", "solar", "steady",
    "sunny", "swift", "tidy", "vivid", "warm", "wild", "wise", "witty", "young", "zesty",
)
NOUNS = (
    "badger", "beaver", "bison", "condor", "cougar", "coyote", "crane", "dingo", "dolphin", "eagle",
    "falcon", "ferret", "finch", "gecko", "heron", "ibex", "jaguar", "koala", "lemur", "lynx",
    "marmot", "marten", "moose", "narwhal", "ocelot", "orca", "osprey", "otter", "owl", "panda",
    "panther", "pelican", "puffin", "quokka", "raven", "robin", "salmon", "seal", "sparrow", "stoat",
    "swan", "tapir", "tiger", "toucan", "turtle", "viper", "walrus", "weasel", "wombat", "yak",
)


def random_name(taken: set[str], rng: random.Random | None = None) -> str:
    """A name not in ``taken``; grows a number suffix once the pairs run short."""
    rng = rng or random.SystemRandom()
    for attempt in range(200):
        name = f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}"
        if attempt >= 20:
            name = f"{name}-{rng.randrange(10, 10000)}"
        if name not in taken:
            return name
    raise RuntimeError("could not find a free VM name")  # pragma: no cover
