"""CLI: `python -m prompts rewrite [PROMPT ...] [--rewriter NAME] [--target VIDEO_PRESET] [--seed N] [--jsonl]`."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from pipeline.presets import VIDEO_PRESETS
    from prompts.presets import REWRITER_PRESETS

    parser = argparse.ArgumentParser(prog="python -m prompts", description="Rewrite short video prompts.")
    sub = parser.add_subparsers(dest="command", required=True)
    rw = sub.add_parser("rewrite", help="rewrite prompts given as arguments, or one per line on stdin")
    rw.add_argument("prompts", nargs="*", metavar="PROMPT")
    rw.add_argument("--rewriter", choices=list(REWRITER_PRESETS), default=None, help="default: by device")
    rw.add_argument("--target", choices=list(VIDEO_PRESETS), default=None, help="video preset to write for")
    rw.add_argument("--seed", type=int, default=0)
    rw.add_argument("--jsonl", action="store_true", help="one JSON object per prompt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    prompts = args.prompts or [line.strip() for line in sys.stdin if line.strip()]
    if not prompts:
        parser.error("no prompts: pass them as arguments or one per line on stdin")

    # imported once the arguments are read: `--help` and usage errors answer without loading torch
    from pipeline.engine import default_presets
    from pipeline.loading import rewrite_target
    from pipeline.presets import get_video_spec
    from prompts.presets import get_rewriter_spec
    from prompts.vision import load_rewriter
    from runtime.devices import pick_device
    from runtime.hub import ModelUnavailableError

    device = pick_device()
    default_rewriter, default_video = default_presets(device)
    target = rewrite_target(get_video_spec(args.target or default_video))
    try:
        rewriter = load_rewriter(get_rewriter_spec(args.rewriter or default_rewriter), device)
    except ModelUnavailableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    status = 0
    for prompt in prompts:
        try:
            result = rewriter.rewrite(prompt, target, seed=args.seed)
        except ValueError as err:  # bad input: report it and go on with the other prompts
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        if args.jsonl:
            record = {
                "prompt": result.prompt,
                "rewritten": result.rewritten,
                "rewriter": result.rewriter,
                "target": result.target,
                "seed": result.seed,
                "tokens": result.tokens,
                "tokens_exact": result.tokens_exact,
                "words": result.words,
                "seconds": result.seconds,
                "fallback": result.fallback,
                "template_version": result.template_version,
                "notes": list(result.notes),
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            if result.fallback:
                print(f"(kept as written: {result.fallback})", file=sys.stderr)
            print(result.rewritten, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
