"""Benchmark a rewriter preset: load time, tokens/s, seconds per rewrite, and output quality.

`python -m benchmarks.rewriter [--rewriter NAME] [--target NAME] [--prompts N] [--quantization A,B]
[--data PATH] [--seed N]` prints one JSON line with one entry per quantization method, all measured
in one process on the same prompts (so their ratios are fair on a noisy machine). Prompts come from
../shared/eval/vbench/dev.jsonl (a seeded sample) when it exists, else from a built-in list.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "vbench" / "dev.jsonl"
BUILTIN = [
    "a unicorn eating spaghetti",
    "a paper boat drifting down a rainy street",
    "two astronauts playing chess on the moon",
    "a neon sign flickering in the rain, zoom in",
    "an old lighthouse in a storm at night",
]


def sample_prompts(path: Path, n: int, seed: int) -> list[str]:
    if not path.exists():
        return (BUILTIN * (n // len(BUILTIN) + 1))[:n]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = sorted({r["prompt"] for r in rows})
    return random.Random(seed).sample(prompts, min(n, len(prompts)))


def measure(rewriter, target, prompts: list[str], seed: int) -> dict:
    from prompts.cleaning import has_loop, problems
    from prompts.preservation import missing_words

    results = [rewriter.rewrite(p, target, seed=seed) for p in prompts]
    used = [r for r in results if r.fallback is None]
    new_tokens = sum(r.new_tokens for r in results)
    seconds = sum(r.seconds for r in results)
    low, high = target.word_range
    return {
        "seconds_per_rewrite": round(statistics.mean(r.seconds for r in results), 3),
        "tokens_per_s": round(new_tokens / seconds, 2) if seconds else None,
        "fallback": round(1 - len(used) / len(results), 3),
        "clean": round(sum(not problems(r.rewritten) for r in used) / max(1, len(used)), 3),
        "keep_all": round(sum(not missing_words(r.prompt, r.rewritten) for r in used) / max(1, len(used)), 3),
        "in_range": round(sum(low <= r.words <= high for r in used) / max(1, len(used)), 3),
        "loops": round(sum(has_loop(r.rewritten) for r in used) / max(1, len(used)), 3),
        "words_median": statistics.median(r.words for r in used) if used else None,
    }


def main(argv: list[str] | None = None) -> None:
    import torch

    from pipeline.devices import pick_device
    from pipeline.presets import get_video_spec
    from prompts.presets import get_rewriter_spec
    from prompts.rewriter import Rewriter

    parser = argparse.ArgumentParser(prog="python -m benchmarks.rewriter")
    parser.add_argument("--rewriter", default="gemma-3-270m")
    parser.add_argument("--target", default="wan2.1-t2v-1.3b")
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--quantization", default=None, help="comma-separated methods; default: the preset's")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", default=None, help="comma-separated CPU decode thread counts to compare")
    args = parser.parse_args(argv)

    device = pick_device()
    spec = get_rewriter_spec(args.rewriter)
    target = get_video_spec(args.target)
    methods = args.quantization.split(",") if args.quantization else [spec.quantization.get(device, "none")]
    prompts = sample_prompts(args.data, args.prompts, args.seed)

    report = {"benchmark": "rewriter", "rewriter": spec.name, "target": target.name, "device": device,
              "threads": torch.get_num_threads(), "prompts": len(prompts), "results": {}}
    threads = [int(t) for t in args.threads.split(",")] if args.threads else [spec.cpu_threads]
    for method in methods:
        for n in threads:
            variant = replace(spec, quantization={**spec.quantization, device: method}, cpu_threads=n)
            start = time.perf_counter()
            rewriter = Rewriter.load(variant, device)
            load_s = time.perf_counter() - start  # the first run of all also converts the GGUF (see README)
            rewriter.rewrite(prompts[0], target, seed=args.seed)  # warm-up
            key = method if len(threads) == 1 else f"{method}/threads={n}"
            report["results"][key] = {"load_s": round(load_s, 2), **measure(rewriter, target, prompts, args.seed)}
            del rewriter
    print(json.dumps(report))


if __name__ == "__main__":
    main()
