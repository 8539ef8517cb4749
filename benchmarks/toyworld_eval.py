"""Does the toy-world model follow prompts? The world's detector scores clips generated from held-out prompts.

`python -m benchmarks.toyworld_eval [--prompts N] [--rewriter NAME|none] [--vague N] [--vague-seeds K] [--speed-runs N]` prints one
JSON line, then a table:
1. held-out prompts (color, direction and background combinations never trained on, seeds never used): how
   often the detected object color, motion direction and background match the prompt, beside random guessing;
2. rewrite effect: vague prompts ("a ball moving") are rewritten (one rewrite seed each), and clips from the raw
   and the rewritten prompt (same video seeds, `--vague-seeds` per prompt) are scored against the attributes the
   rewrite states;
3. speed: seconds per clip at the preset's defaults, beside the tiny random preset in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

ATTRIBUTES = ("color", "direction", "background")
TARGETS = {"color": 0.85, "direction": 0.75, "background": 0.85}
VAGUE = (  # what a user might type: a shape, a color or a motion at most, never all three
    "a ball moving",
    "a box sliding",
    "a star moving",
    "a triangle falling",
    "a shape going somewhere",
    "a ball rolling",
    "a moving square",
    "a star drifting across the sky",
    "something bouncing",
    "a shape drifting",
    "an orange thing",
    "a star",
    "a red ball",
    "a green block",
    "a little dot moving",
    "a purple triangle",
    "a box",
    "something moving fast",
    "a circle flying",
    "a ball in the sky",
    "a falling star",
    "a cube going up",
    "a blue shape",
    "a toy ball rolling away",
    "a wedge on a pink background",
    "an object crossing the screen",
    "a yellow thing sliding",
    "a big ball",
    "a shape on a teal background",
    "something rising slowly",
)


def chance() -> dict[str, float]:
    from pipeline.toyworld.world import BACKGROUND_COLORS, DIRECTIONS, OBJECT_COLORS

    return {"color": 1 / len(OBJECT_COLORS), "direction": 1 / len(DIRECTIONS), "background": 1 / len(BACKGROUND_COLORS)}


def render(pipe, spec, prompts: list[str], seeds: list[int], batch: int = 16) -> list:
    """Clips at the preset's defaults, one seed per prompt (a batch shares one generator, so go per seed group)."""
    import torch

    clips = []
    for i in range(0, len(prompts), batch):
        chunk, chunk_seeds = prompts[i : i + batch], seeds[i : i + batch]
        generators = [torch.Generator("cpu").manual_seed(s) for s in chunk_seeds]
        clips.extend(
            pipe(
                prompt=chunk,
                negative_prompt=[spec.negative_prompt] * len(chunk),
                height=spec.height,
                width=spec.width,
                num_frames=spec.num_frames,
                num_inference_steps=spec.num_inference_steps,
                guidance_scale=spec.guidance_scale,
                max_sequence_length=spec.token_limit,
                generator=generators,
                output_type="np",
            ).frames
        )
    return clips


def score(clips, expected: list[dict]) -> dict[str, tuple[int, int]]:
    """(hits, stated) per attribute: only attributes the prompt states count."""
    from pipeline.toyworld.detector import detect

    tally = {a: [0, 0] for a in ATTRIBUTES}
    for clip, want in zip(clips, expected, strict=False):
        found = detect(clip)
        got = {"color": found.color, "direction": found.direction, "background": found.background}
        for a in ATTRIBUTES:
            if want.get(a) is not None:
                tally[a][1] += 1
                tally[a][0] += got[a] == want[a]
    return {a: (h, n) for a, (h, n) in tally.items()}


def rate(hits: tuple[int, int]) -> float | None:
    return round(hits[0] / hits[1], 3) if hits[1] else None


def main(argv: list[str] | None = None) -> None:
    import torch

    from pipeline.engine import Engine, default_presets
    from pipeline.toyworld.captions import stated
    from pipeline.toyworld.train import eval_prompts

    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld_eval", description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=96, help="held-out prompts to render")
    parser.add_argument("--seed", type=int, default=2_000_000, help="first prompt seed (training used seed 0)")
    parser.add_argument(
        "--rewriter",
        default=None,
        help="rewriter preset for the vague prompts (default: the CPU default); none skips the rewrite effect",
    )
    parser.add_argument("--vague", type=int, default=len(VAGUE), help="vague prompts to rewrite")
    parser.add_argument("--vague-seeds", type=int, default=2, help="clips rendered per rewrite (and raw prompt)")
    parser.add_argument("--speed-runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict = {
        "benchmark": "toyworld_eval",
        "chance": {k: round(v, 3) for k, v in chance().items()},
        "targets": TARGETS,
    }
    rewriter = args.rewriter or default_presets("cpu")[0]

    with tempfile.TemporaryDirectory() as outputs:
        engine = Engine.load(rewriter, "toy-world", Path(outputs), device="cpu")
        pipe, spec = engine.video.pipe, engine.spec

        # 1. Held-out prompts and seeds
        held = eval_prompts(args.prompts, seed=args.seed)
        prompts = [p for p, _ in held]
        expected = [
            {"color": s.things[0].color, "direction": s.things[0].motion, "background": s.bg_color} for _, s in held
        ]
        parsed_ok = sum(stated(p) == e for p, e in zip(prompts, expected, strict=False))
        hits = score(render(pipe, spec, prompts, [args.seed + i for i in range(len(prompts))]), expected)
        report["held_out"] = {
            "prompts": len(prompts),
            "prompts_parsed_exactly": parsed_ok,
            **{a: rate(hits[a]) for a in ATTRIBUTES},
        }

        # 2. Rewrite effect on vague prompts
        if rewriter != "none" and args.vague:
            rows = []
            for i, vague in enumerate(VAGUE[: args.vague]):
                result = engine.rewrite(vague, seed=i)
                rows.append(
                    {
                        "prompt": vague,
                        "rewritten": result.rewritten,
                        "fallback": result.fallback,
                        "notes": result.notes,
                        "stated": stated(result.rewritten),
                    }
                )
            k = args.vague_seeds
            seeds = [args.seed + 10_000 + k * i + j for i in range(len(rows)) for j in range(k)]
            wants = [r["stated"] for r in rows for _ in range(k)]
            rewritten_hits = score(render(pipe, spec, [r["rewritten"] for r in rows for _ in range(k)], seeds), wants)
            raw_hits = score(render(pipe, spec, [r["prompt"] for r in rows for _ in range(k)], seeds), wants)
            report["rewrite_effect"] = {
                "rewriter": rewriter,
                "prompts": len(rows),
                "clips_per_prompt": k,
                "fallbacks": sum(r["fallback"] is not None for r in rows),
                "rewrites_stating": {a: sum(r["stated"][a] is not None for r in rows) for a in ATTRIBUTES},
                "stated": {a: rewritten_hits[a][1] for a in ATTRIBUTES},  # clips scored per attribute
                "rewritten_match": {a: rate(rewritten_hits[a]) for a in ATTRIBUTES},
                "raw_match": {a: rate(raw_hits[a]) for a in ATTRIBUTES},
                "rows": rows,
            }

        # 3. Speed at each preset's defaults, interleaved so machine noise hits both alike
        tiny = Engine.load("none", "tiny-random", Path(outputs), device="cpu")
        times: dict[str, list[float]] = {"toy-world": [], "tiny-random": []}
        for i in range(args.speed_runs + 1):
            for name, eng in (("toy-world", engine), ("tiny-random", tiny)):
                start = time.perf_counter()
                render(eng.video.pipe, eng.spec, ["a red ball moving left to right on a gray background"], [i])
                if i:  # the first round warms caches
                    times[name].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        report["speed"] = {
            "toy_world_s": round(med["toy-world"], 3),
            "tiny_random_s": round(med["tiny-random"], 3),
            "ratio": round(med["toy-world"] / med["tiny-random"], 2),
            "target_s": 5.0,
            "runs": args.speed_runs,
        }

    print(json.dumps(report))
    print(f"\n{'attribute':<12}{'held-out':>10}{'chance':>8}{'target':>8}", end="")
    effect = report.get("rewrite_effect")
    print(f"{'rewritten (clips)':>18}{'raw':>7}" if effect else "")
    for a in ATTRIBUTES:
        line = f"{a:<12}{report['held_out'][a]:>10}{report['chance'][a]:>8}{TARGETS[a]:>8}"
        if effect:
            rewritten = f"{effect['rewritten_match'][a]} ({effect['stated'][a]})"
            line += f"{rewritten:>18}{effect['raw_match'][a]!s:>7}"
        print(line)
    speed = report["speed"]
    print(
        f"\nspeed: toy-world {speed['toy_world_s']} s per clip, tiny-random {speed['tiny_random_s']} s "
        f"(ratio {speed['ratio']})"
    )


if __name__ == "__main__":
    main()
