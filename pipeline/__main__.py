"""CLI: `python -m pipeline generate|compare PROMPT [...]` (prints the sidecar's path last), and `plan`."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "plan":
        return plan_command(args, parser)

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
        from runtime.images import load_reference_image

        try:
            load_reference_image(args.image)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    # 2. Load and run; the run is recorded in the app's gallery (the configured outputs folder), or nowhere
    from pipeline.engine import Engine
    from pipeline.export import new_stem
    from prompts.rewriter import Cancelled
    from runtime.hub import ModelUnavailableError

    outputs = args.outputs or Path(os.environ.get("RR_OUTPUTS") or "outputs")
    gallery_folder = outputs
    if args.no_record:  # the engine's gallery lives in a folder removed on exit; the files go where asked
        gallery_folder = Path(tempfile.mkdtemp(prefix="rr-unrecorded-"))
        atexit.register(shutil.rmtree, gallery_folder, True)
        if args.out is None:
            stem = new_stem(outputs)
            args.out = stem.with_suffix(".mp4") if args.command == "generate" else stem

    def report(stage: str, done: int, total: int):
        if total and done == total:
            print(f"{stage}: done ({total})", file=sys.stderr)

    settings = {
        "rewrite_seed": args.rewrite_seed,
        "image_path": str(args.image) if args.image else None,
        "image_fit": args.image_fit,
        "image_description": args.image_description,
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
        engine = Engine.load(args.rewriter, args.video, gallery_folder)
        engine.records_runs = not args.no_record
        if args.image is not None:
            image_notices(engine, args.image_description)
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


def image_notices(engine, description: str | None) -> None:
    """On stderr: the switch to the image-capable preset, and whether the rewriter sees the image."""
    from pipeline.image_to_video import switch_note

    target = engine.image_spec
    if target is not None and target is not engine.spec:
        print(f"note: {switch_note(engine.spec, target)}", file=sys.stderr)
    if engine.rewriter is not None and not engine.rewriter_sees_images and not (description or "").strip():
        print("note: the rewriter does not see the image, so the rewrite covers motion and camera only; "
              "--image-description TEXT tells it what the image shows", file=sys.stderr)


def plan_command(args, parser) -> int:
    """Print the memory plan for a preset pair and settings (one JSON object with --json)."""
    import json

    import psutil

    from pipeline.memory_apply import detect_budget, plan_for, settings_for
    from pipeline.memory_plan import GB, Budget
    from pipeline.presets import get_video_spec
    from runtime.devices import pick_device

    detected = detect_budget(pick_device()) if args.vram_gb is None else None
    if args.vram_gb is None and detected is None:
        if not os.environ.get("RR_VRAM_GB"):
            parser.error("no CUDA GPU here: give --vram-gb (or RR_VRAM_GB)")
        detected = Budget(float(os.environ["RR_VRAM_GB"]), psutil.virtual_memory().available / GB)
    vram = args.vram_gb if args.vram_gb is not None else detected.vram_gb
    ram = args.ram_gb if args.ram_gb is not None else round(psutil.virtual_memory().available / GB, 1)
    budget = Budget(vram, ram, zerogpu=bool(detected and detected.zerogpu))
    spec = get_video_spec(args.video)
    rewriter = None if args.rewriter == "none" else args.rewriter
    try:
        settings = settings_for(spec, args.height, args.width, args.frames, args.steps)
        plan = plan_for(spec, rewriter, budget, settings)
    except KeyError:
        parser.error(f"no component configs for {args.video!r} or {args.rewriter!r}")
    if args.json:
        print(json.dumps(plan.to_dict()))
        return 0 if plan.fits else 1
    print(plan.describe())
    for name, component in plan.components.items():
        print(f"  {name:13} {component.placement:32} {component.quantization:12} {component.weights_gb:6.2f} GB weights")
    print(f"  VAE: {plan.vae}; order: {' -> '.join(plan.order)}")
    print(f"  estimated phase peaks (GB): {plan.phases_gb}; estimated host RAM {plan.estimated_ram_gb} GB")
    if plan.reason:
        print(f"  {'does not fit' if not plan.fits else 'note'}: {plan.reason}")
    return 0 if plan.fits else 1


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
        cmd.add_argument("--image", type=Path, default=None,
                         help="reference image: the video starts from it (a text-only --video switches to its image partner)")
        cmd.add_argument("--image-fit", choices=["crop", "pad"], default="crop",
                         help="fit the image to the video size by center-cropping (default) or padding")
        cmd.add_argument("--image-description", default=None, metavar="TEXT",
                         help="what the image shows, for a rewriter that cannot see images")
        cmd.add_argument("--outputs", type=Path, default=None,
                         help="outputs folder holding the app's run gallery (default: RR_OUTPUTS, else ./outputs); "
                              "runs are recorded there even when --out writes the files elsewhere")
        cmd.add_argument("--no-record", action="store_true", help="record the run in no gallery")
    plan = sub.add_parser("plan", help="the memory plan (placement, quantization, estimated peak) for a GPU")
    plan.add_argument("--video", choices=list(VIDEO_PRESETS), default="wan2.1-t2v-1.3b")
    plan.add_argument("--rewriter", choices=[*REWRITER_PRESETS, "none"], default="qwen2.5-3b-instruct")
    plan.add_argument("--vram-gb", type=float, default=None, help="GPU memory to plan for (default: detected, or RR_VRAM_GB)")
    plan.add_argument("--ram-gb", type=float, default=None, help="host RAM to plan for (default: available now)")
    plan.add_argument("--height", type=int, default=None)
    plan.add_argument("--width", type=int, default=None)
    plan.add_argument("--frames", type=int, default=None)
    plan.add_argument("--steps", type=int, default=None)
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    gen.add_argument("--out", type=Path, default=None, help="output .mp4 path (must not exist)")
    cmp.add_argument("--out", type=Path, default=None, metavar="STEM",
                     help="writes STEM.raw.mp4, STEM.rewritten.mp4 and STEM.json (none may exist)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
