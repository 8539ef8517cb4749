"""The fixed held-out validation split of the VBench rows: never trained or tuned on.

Within each dimension the rows are ranked by a hash of their prompt and the first 15% (rounded up)
are held out, so every dimension gives the same share and the split never depends on file order,
on a seed or on rows added later to other dimensions. A prompt listed under two dimensions is held
out under both when either picks it, so no prompt sits on both sides.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict

VALIDATION_SHARE = 0.15  # the floor; rounding up per dimension keeps every dimension at or above it


def prompt_hash(prompt: str) -> str:
    """The key a prompt is ranked by: sha256 of its words, lower case, single-spaced."""
    return hashlib.sha256(" ".join(prompt.lower().split()).encode("utf-8")).hexdigest()


def held_out_hashes(rows: list[dict], share: float = VALIDATION_SHARE) -> frozenset[str]:
    """The `prompt_hash` of every held-out prompt of `rows` (dicts with a prompt and a dimension)."""
    if not 0 < share < 1:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    by_dim: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_dim[row["dimension"]].add(prompt_hash(row["prompt"]))
    held = set()
    for hashes in by_dim.values():
        held.update(sorted(hashes)[: math.ceil(share * len(hashes))])
    return frozenset(held)


def split(rows: list[dict], share: float = VALIDATION_SHARE) -> tuple[list[dict], list[dict]]:
    """(train, validation): every row of `rows` on exactly one side, in their original order."""
    held = held_out_hashes(rows, share)
    train = [r for r in rows if prompt_hash(r["prompt"]) not in held]
    validation = [r for r in rows if prompt_hash(r["prompt"]) in held]
    return train, validation
