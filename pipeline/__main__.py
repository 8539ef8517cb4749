"""CLI: `python -m pipeline generate|compare PROMPT [...]`; prints the sidecar's path as its last line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    # 1. Check what can be checked before loading any model
    if args.command == "generate":
        if args.out is not None and args.out.suffix.lower() != ".mp4":
            parser.error(f"--out must end in .mp4, got {args.out}")
        written = [args.out, args.out.with_suffix(".json")] if args.out is not None else []
    else:
        from pipeline.compare import compare_paths

        if args.out is not None and args.out.suffix.lower() in (".mp4", ".json"):
            parser.error(f"--out takes a stem (clip writes clip.raw.mp4, clip.rewritten.mp4, clip.json), got {args.out}")
        if args.rewriter == "none" and not args.rewritten:
            parser.error("compare needs a rewrite: pick a --rewriter or give --rewritten TEXT")
        written = list(compare_paths(args.out).values())[:3] if args.out is not None else []
    for path in written:
        if path.exists():
            parser.error(f"{path} exists; refusing to overwrite it")
    if args.image is not None:
        from pipeline.images import load_reference_image

        try:
            load_reference_image(args.image)
        except ValueError as err:
            parser.error(str(err))

    # 2. Load and run; the run is recorded in the gallery of the outputs folder
    from pipeline.engine import Engine
    from pipeline.hub import ModelUnavailableError
    from prompts.rewriter import Cancelled

    outputs = args.outputs or (args.out.parent if args.out is not None else Path("outputs"))

    def report(stage: str, done: int, total: int):
        if total and done == total:
            print(f"{stage}: done ({total})", file=sys.stderr)

    settings = {
        "rewrite_seed": args.rewrite_seed,
        "image_path": str(args.image) if args.image else None,
        "seed": args.seed,
        "height": args.height,
        "width": args.width,
        "num_frames": args.frames,
        "num_inference_steps": args.steps,
        "guidance_scale": args.guidance,
        "negative_prompt": args.negative_prompt,
        "progress": report,
        "out": args.out,
        "session": "cli",
    }
    try:
        engine = Engine.load(args.rewriter, args.video, outputs)
        if args.command == "generate":
            result = engine.generate(args.prompt, rewritten=args.rewritten, use_raw=args.rewriter == "none", **settings)
            print(f"video: {result.video_path}", file=sys.stderr)
        else:
            result = engine.compare(args.prompt, rewritten=args.rewritten, **settings)
            print(f"raw video: {result.raw.video_path}", file=sys.stderr)
            print(f"rewritten video: {result.rewritten.video_path}", file=sys.stderr)
            print(f"seed: {result.seed}", file=sys.stderr)
    except (ValueError, ModelUnavailableError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("stopped", file=sys.stderr)
        return 130
    print(result.sidecar_path)
    return 0


def _parser() -> argparse.ArgumentParser:
    from pipeline.presets import VIDEO_PRESETS
    from prompts.presets import REWRITER_PRESETS

    parser = argparse.ArgumentParser(prog="python -m pipeline", description="Generate a video from a prompt.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="rewrite (optional) and render one video")
    cmp = sub.add_parser("compare", help="render the prompt as written and rewritten, with one seed")
    for cmd in (gen, cmp):
        cmd.add_argument("prompt", metavar="PROMPT")
        cmd.add_argument("--rewriter", choices=[*REWRITER_PRESETS, "none"], default=None,
                         help="default: by device; 'none' uses the prompt as written")
        cmd.add_argument("--rewritten", default=None, help="use this rewritten prompt instead of rewriting")
        cmd.add_argument("--video", choices=list(VIDEO_PRESETS), default=None, help="default: by device")
        cmd.add_argument("--seed", type=int, default=None, help="default: random")
        cmd.add_argument("--rewrite-seed", type=int, default=0)
        cmd.add_argument("--steps", type=int, default=None)
        cmd.add_argument("--frames", type=int, default=None)
        cmd.add_argument("--height", type=int, default=None)
        cmd.add_argument("--width", type=int, default=None)
        cmd.add_argument("--guidance", type=float, default=None)
        cmd.add_argument("--negative-prompt", default=None)
        cmd.add_argument("--image", type=Path, default=None, help="reference image (recorded; text-only presets ignore it)")
        cmd.add_argument("--outputs", type=Path, default=None,
                         help="outputs folder holding the run gallery (default: the folder of --out, else ./outputs)")
    gen.add_argument("--out", type=Path, default=None, help="output .mp4 path (must not exist)")
    cmp.add_argument("--out", type=Path, default=None, metavar="STEM",
                     help="writes STEM.raw.mp4, STEM.rewritten.mp4 and STEM.json (none may exist)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
