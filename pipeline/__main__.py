"""CLI: `python -m pipeline generate PROMPT [...]`; prints the sidecar's path as its last line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from pipeline.presets import VIDEO_PRESETS
    from prompts.presets import REWRITER_PRESETS

    parser = argparse.ArgumentParser(prog="python -m pipeline", description="Generate a video from a prompt.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="rewrite (optional) and render one video")
    gen.add_argument("prompt", metavar="PROMPT")
    gen.add_argument("--rewriter", choices=[*REWRITER_PRESETS, "none"], default=None,
                     help="default: by device; 'none' uses the prompt as written")
    gen.add_argument("--video", choices=list(VIDEO_PRESETS), default=None, help="default: by device")
    gen.add_argument("--seed", type=int, default=None, help="default: random")
    gen.add_argument("--rewrite-seed", type=int, default=0)
    gen.add_argument("--steps", type=int, default=None)
    gen.add_argument("--frames", type=int, default=None)
    gen.add_argument("--height", type=int, default=None)
    gen.add_argument("--width", type=int, default=None)
    gen.add_argument("--guidance", type=float, default=None)
    gen.add_argument("--negative-prompt", default=None)
    gen.add_argument("--image", type=Path, default=None, help="reference image (recorded; text-only presets ignore it)")
    gen.add_argument("--out", type=Path, default=None, help="output .mp4 path (must not exist)")
    gen.add_argument("--outputs", type=Path, default=Path("outputs"), help="folder for outputs when --out is not given")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    # 1. Check what can be checked before loading any model
    if args.out is not None:
        if args.out.suffix.lower() != ".mp4":
            parser.error(f"--out must end in .mp4, got {args.out}")
        for path in (args.out, args.out.with_suffix(".json")):
            if path.exists():
                parser.error(f"{path} exists; refusing to overwrite it")
    if args.image is not None:
        from pipeline.images import load_reference_image

        try:
            load_reference_image(args.image)
        except ValueError as err:
            parser.error(str(err))

    # 2. Load and run
    from pipeline.engine import Engine
    from pipeline.hub import ModelUnavailableError
    from prompts.rewriter import Cancelled

    outputs = args.out.parent if args.out is not None else args.outputs

    def report(stage: str, done: int, total: int):
        if total and done == total:
            print(f"{stage}: done ({total})", file=sys.stderr)

    try:
        engine = Engine.load(args.rewriter, args.video, outputs)
        result = engine.generate(
            args.prompt,
            use_raw=args.rewriter == "none",
            rewrite_seed=args.rewrite_seed,
            image_path=str(args.image) if args.image else None,
            seed=args.seed,
            height=args.height,
            width=args.width,
            num_frames=args.frames,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            negative_prompt=args.negative_prompt,
            progress=report,
            out=args.out,
        )
    except (ValueError, ModelUnavailableError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("stopped", file=sys.stderr)
        return 130
    print(f"video: {result.video_path}", file=sys.stderr)
    print(result.sidecar_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
