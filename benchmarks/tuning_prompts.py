"""Write the tuning prompts: training-split VBench prompts that are in no training pair of either step.

`python -m benchmarks.tuning_prompts [--data PATH] [--n 40] [--seed 7] --out FILE` writes them in the prompts-file
format of `benchmarks.rewrite_eval --prompts FILE` (one a line under `[dimension]` headers), drawn round-robin over
the dimensions. Choices about the rewriter (which adapter, a decoding setting) are made on these, never on the
validation split or benchmarks/user_prompts.txt. The file is written outside the repository: it holds VBench prompts.

`--pairs` writes the LoRA training pairs' prompts instead, all of them: the prompts the rewriter's own drafts are
written for before the self-play preference step (`python -m prompts.training.preference --drafts`; docs/rewriter.md).
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from pathlib import Path

from prompts.training.pairs import DEFAULT_DATA, build_pairs, load_rows, preference_pairs
from prompts.training.splits import prompt_hash, split


def tuning_prompts(rows: list[dict], n: int, seed: int) -> list[tuple[str, str]]:
    """(dimension, prompt) for `n` training-split prompts in neither the LoRA pairs nor the preference pairs, as
    cleaned with or without the shot-type cleaning (the shipped recipe's and the earlier one's)."""
    train_rows, _ = split(rows)
    used = set()
    for shots in (False, True):
        used |= {prompt_hash(p.prompt) for p in build_pairs(rows, shots=shots)[0]}
        used |= {prompt_hash(p.prompt) for p in preference_pairs(train_rows, shots=shots)[0]}
    by_dimension: dict[str, list[str]] = defaultdict(list)
    for row in train_rows:
        key = prompt_hash(row["prompt"])
        if key not in used:
            used.add(key)
            by_dimension[row["dimension"]].append(row["prompt"])
    rng, out = random.Random(seed), []
    while len(out) < n and any(by_dimension.values()):
        for dimension in sorted(by_dimension):
            pool = by_dimension[dimension]
            if pool and len(out) < n:
                out.append((dimension, pool.pop(rng.randrange(len(pool)))))
    return out


def paired_prompts(rows: list[dict]) -> list[tuple[str, str]]:
    """(dimension, prompt) of every LoRA training pair (prompts.training.pairs.build_pairs), in the pairs' order;
    the pairs as cleaned before the shot-type cleaning (553), which the self-play recipe's drafts were written on."""
    return [(p.dimension, p.prompt) for p in build_pairs(rows)[0]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuning_prompts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="VBench rows with reference rewrites")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pairs", action="store_true", help="the training pairs' prompts instead (all of them; --n and --seed do not apply)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = load_rows(args.data)
    picked = paired_prompts(rows) if args.pairs else tuning_prompts(rows, args.n, args.seed)
    lines = []
    for dimension in sorted({d for d, _ in picked}):
        lines += [f"[{dimension}]", *(p for d, p in picked if d == dimension)]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(picked)} {'paired' if args.pairs else 'tuning'} prompts in {args.out}")


if __name__ == "__main__":
    main()
