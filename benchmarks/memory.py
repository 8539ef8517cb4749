"""Memory plans for a grid of GPU sizes: `python -m benchmarks.memory` prints a Markdown table of estimates."""

from __future__ import annotations

import argparse
import json

BUDGETS_GB = (2, 4, 6, 8, 12, 16, 24, 48, 80)


def plan_table(video: str, rewriter: str | None, ram_gb: float, height: int, width: int, frames: int) -> list[dict]:
    from pipeline.memory_apply import plan_for, settings_for
    from pipeline.memory_plan import Budget
    from pipeline.presets import get_video_spec

    spec = get_video_spec(video)
    settings = settings_for(spec, height, width, frames)
    rows = []
    for vram in BUDGETS_GB:
        plan = plan_for(spec, rewriter, Budget(vram, ram_gb), settings)
        rows.append({"vram_gb": vram, **plan.to_dict()})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| GPU | fits | plan | text encoder | transformer | LLM | VAE | est. peak | est. slowdown |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["components"]
        te = c["text_encoder"]["placement"] + (
            "" if c["text_encoder"]["quantization"] == "none" else f" {c['text_encoder']['quantization']}"
        )
        dit = c["transformer"]["placement"] + (
            "" if c["transformer"]["quantization"] == "none" else f" {c['transformer']['quantization']}"
        )
        llm = f"{c['llm']['quantization']}, " + ("freed first" if r["release_llm"] else "stays") if "llm" in c else "-"
        lines.append(
            f"| {r['vram_gb']} GB | {'yes' if r['fits'] else 'no'} | {r['rung']} | {te} | {dit} | {llm} | "
            f"{r['vae']} | {r['estimated_peak_vram_gb']:.1f} GB | {r['estimated_slowdown']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--video", default="wan2.1-t2v-1.3b")
    parser.add_argument("--rewriter", default="qwen2.5-3b-instruct", help="a rewriter preset or 'none'")
    parser.add_argument("--ram-gb", type=float, default=64.0)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--json", action="store_true", help="one JSON object per GPU size instead of the table")
    args = parser.parse_args(argv)
    rewriter = None if args.rewriter == "none" else args.rewriter
    rows = plan_table(args.video, rewriter, args.ram_gb, args.height, args.width, args.frames)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(
        f"{args.video} at {args.width}x{args.height}, {args.frames} frames; rewriter {args.rewriter}; "
        f"{args.ram_gb:g} GB RAM (all figures are estimates)"
    )
    print(markdown(rows))
    for row in rows:
        if not row["fits"]:
            print(f"{row['vram_gb']} GB: {row['reason']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
