"""Memorable default run names such as ``brisk-heron-42``."""

from __future__ import annotations

import random

__all__ = ["generate_run_name"]

_ADJECTIVES = (
    "amber",
    "bold",
    "brisk",
    "calm",
    "clever",
    "crisp",
    "dapper",
    "eager",
    "fierce",
    "gentle",
    "glad",
    "grand",
    "humble",
    "jolly",
    "keen",
    "lively",
    "lucid",
    "mellow",
    "nimble",
    "noble",
    "polite",
    "proud",
    "quiet",
    "rapid",
    "sharp",
    "silent",
    "sleek",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "witty",
    "zesty",
)
_NOUNS = (
    "badger",
    "bison",
    "crane",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "finch",
    "fox",
    "gecko",
    "heron",
    "ibis",
    "jaguar",
    "koala",
    "lark",
    "lemur",
    "lynx",
    "marten",
    "moose",
    "newt",
    "otter",
    "owl",
    "panda",
    "puffin",
    "quail",
    "raven",
    "robin",
    "seal",
    "shrew",
    "stork",
    "swan",
    "tapir",
    "tern",
    "toad",
    "viper",
    "wren",
    "yak",
    "zebra",
)


def generate_run_name() -> str:
    """A random ``adjective-noun-number`` name (uniqueness comes from the run id, not this)."""
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(1, 999)}"
