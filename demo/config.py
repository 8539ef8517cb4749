"""App configuration: command-line flags override RR_* environment variables, which override defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.presets import VIDEO_PRESETS
from prompts.presets import REWRITER_PRESETS


@dataclass(frozen=True)
class AppConfig:
    rewriter: str | None  # None: pick by device (pipeline.engine.default_presets); "none": no rewriter
    video: str | None
    host: str = "127.0.0.1"
    port: int = 7860
    outputs: Path = Path("outputs")
    share: bool = False


def from_env(environ: Mapping[str, str] | None = None) -> AppConfig:
    env = os.environ if environ is None else environ
    port = env.get("RR_PORT", "7860")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"RR_PORT must be a port number 1-65535, got {port!r}")
    config = AppConfig(
        rewriter=env.get("RR_REWRITER") or None,
        video=env.get("RR_VIDEO") or None,
        host=env.get("RR_HOST") or "127.0.0.1",
        port=int(port),
        outputs=Path(env.get("RR_OUTPUTS") or "outputs"),
        share=False,
    )
    _check_names(config)
    return config


def parse_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> AppConfig:
    """Flags (only parsed under __main__) on top of the environment."""
    base = from_env(environ)
    parser = argparse.ArgumentParser(prog="app.py", description="Rewrite & Render: prompt rewriting + video generation")
    parser.add_argument("--rewriter", default=base.rewriter, help=f"one of {', '.join(REWRITER_PRESETS)}, or none")
    parser.add_argument("--video", default=base.video, help=f"one of {', '.join(VIDEO_PRESETS)}")
    parser.add_argument("--host", default=base.host)
    parser.add_argument("--port", type=int, default=base.port)
    parser.add_argument("--outputs", type=Path, default=base.outputs, help="folder for videos and sidecars")
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    args = parser.parse_args(argv)
    config = AppConfig(args.rewriter, args.video, args.host, args.port, args.outputs, args.share)
    try:
        _check_names(config)
    except ValueError as err:
        parser.error(str(err))
    return config


def _check_names(config: AppConfig) -> None:
    if config.rewriter is not None and config.rewriter != "none" and config.rewriter not in REWRITER_PRESETS:
        raise ValueError(f"unknown rewriter {config.rewriter!r}; choose one of {', '.join(REWRITER_PRESETS)}, none")
    if config.video is not None and config.video not in VIDEO_PRESETS:
        raise ValueError(f"unknown video preset {config.video!r}; choose one of {', '.join(VIDEO_PRESETS)}")
