"""App configuration: command-line flags override RR_* environment variables, which override defaults."""

from __future__ import annotations

import argparse
import errno
import math
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.presets import VIDEO_PRESETS
from prompts.presets import REWRITER_PRESETS

GPU_MAX_SECONDS = 300  # ZeroGPU: the most GPU time one call may ask for (a visitor's daily quota is minutes)
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class AppConfig:
    rewriter: str | None  # None: pick by device (pipeline.engine.default_presets); "none": no rewriter
    video: str | None
    host: str = "127.0.0.1"
    port: int = 7860
    outputs: Path = Path("outputs")
    share: bool = False
    mcp: bool = False  # also serve the API as MCP tools (needs gradio[mcp])
    cleanup_hours: float | None = None  # remove output files older than this (None: keep everything)
    gpu_max_seconds: int = GPU_MAX_SECONDS  # ZeroGPU: cap on the GPU time one call requests


def from_env(environ: Mapping[str, str] | None = None) -> AppConfig:
    env = os.environ if environ is None else environ
    # On a Space the platform sets GRADIO_SERVER_NAME/PORT (0.0.0.0:7860); launch() arguments would override them.
    port = env.get("RR_PORT") or env.get("GRADIO_SERVER_PORT") or "7860"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"RR_PORT must be a port number 1-65535, got {port!r}")
    on_space = bool(env.get("SPACE_ID"))
    config = AppConfig(
        rewriter=env.get("RR_REWRITER") or None,
        video=env.get("RR_VIDEO") or None,
        host=env.get("RR_HOST") or env.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space else "127.0.0.1"),
        port=int(port),
        outputs=Path(env.get("RR_OUTPUTS") or "outputs"),
        share=False,
        mcp=_switch(env, "RR_MCP", default=_switch(env, "GRADIO_MCP_SERVER")),
        cleanup_hours=_hours(env.get("RR_CLEANUP_HOURS") or None, "RR_CLEANUP_HOURS"),
        gpu_max_seconds=_seconds(env.get("RR_GPU_MAX_SECONDS") or str(GPU_MAX_SECONDS), "RR_GPU_MAX_SECONDS"),
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
    parser.add_argument("--mcp", action=argparse.BooleanOptionalAction, default=base.mcp,
                        help="also start Gradio's MCP server (needs gradio[mcp]); env RR_MCP=1")
    parser.add_argument("--cleanup-hours", type=str, default=base.cleanup_hours,
                        help="remove output files (and expire their gallery runs) older than this; env RR_CLEANUP_HOURS")
    parser.add_argument("--gpu-max-seconds", type=str, default=base.gpu_max_seconds,
                        help=f"ZeroGPU: most GPU seconds one call requests (default {GPU_MAX_SECONDS}); env RR_GPU_MAX_SECONDS")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be a port number 1-65535, got {args.port}")
    try:
        config = AppConfig(
            args.rewriter, args.video, args.host, args.port, args.outputs, args.share, mcp=args.mcp,
            cleanup_hours=_hours(args.cleanup_hours, "--cleanup-hours"),
            gpu_max_seconds=_seconds(args.gpu_max_seconds, "--gpu-max-seconds"),
        )
        _check_names(config)
    except ValueError as err:
        parser.error(str(err))
    return config


def check_port(host: str, port: int) -> None:
    """A ValueError when the server could not listen on host:port (checked before any model loads)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as err:
            reason = "it is in use; stop what uses it or pick another --port" if err.errno == errno.EADDRINUSE else err.strerror
            raise ValueError(f"cannot listen on {host}:{port}: {reason}") from None


def _check_names(config: AppConfig) -> None:
    if config.rewriter is not None and config.rewriter != "none" and config.rewriter not in REWRITER_PRESETS:
        raise ValueError(f"unknown rewriter {config.rewriter!r}; choose one of {', '.join(REWRITER_PRESETS)}, none")
    if config.video is not None and config.video not in VIDEO_PRESETS:
        raise ValueError(f"unknown video preset {config.video!r}; choose one of {', '.join(VIDEO_PRESETS)}")


def _switch(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = (env.get(name) or "").strip().lower()
    if not value:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"{name} must be 1 or 0, got {value!r}")


def _hours(value: object, name: str) -> float | None:
    """A positive number of hours, or None (cleanup off)."""
    if value is None:
        return None
    try:
        hours = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of hours, got {value!r}") from None
    if not math.isfinite(hours) or hours <= 0:
        raise ValueError(f"{name} must be more than 0 hours, got {value!r}")
    return hours


def _seconds(value: object, name: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a whole number of seconds (1 or more), got {value!r}")
    return int(text)
