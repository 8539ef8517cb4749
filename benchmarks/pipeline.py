"""Benchmark: the project's generate path vs a bare diffusers call on the same tiny pipeline.

`python -m benchmarks.pipeline [--runs N]` prints one JSON line: median seconds of both (encoding
excluded from ours) and their ratio, from interleaved runs so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    import torch

    from pipeline.engine import Engine

    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--height", type=int, default=144)
    parser.add_argument("--width", type=int, default=256)
    args = parser.parse_args(argv)

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as outputs:
        engine = Engine.load("none", "tiny-random", Path(outputs), device="cpu")
        pipe, spec = engine.video.pipe, engine.spec
        settings = dict(
            height=args.height,
            width=args.width,
            num_frames=args.frames,
            num_inference_steps=args.steps,
            guidance_scale=spec.guidance_scale,
        )
        prompt = "a red ball bouncing on a wooden floor"

        def ours() -> float:
            start = time.perf_counter()
            result = engine.generate(prompt, use_raw=True, seed=0, negative_prompt=spec.negative_prompt, **settings)
            return time.perf_counter() - start - result.timings["encode_s"]

        def bare() -> float:
            start = time.perf_counter()
            pipe(
                prompt=prompt,
                negative_prompt=spec.negative_prompt,
                generator=torch.Generator("cpu").manual_seed(0),
                output_type="np",
                **settings,
            )
            return time.perf_counter() - start

        ours(), bare()  # warm-up: first calls pay for lazy initialisation
        times = {"ours": [], "bare": []}
        for _ in range(args.runs):
            times["ours"].append(ours())
            times["bare"].append(bare())
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "benchmark": "pipeline",
                "runs": args.runs,
                "settings": settings,
                "ours_median_s": round(med["ours"], 4),
                "bare_median_s": round(med["bare"], 4),
                "ratio": round(med["ours"] / med["bare"], 4),
                "target_ratio": 1.05,
            }
        )
    )


if __name__ == "__main__":
    main()
