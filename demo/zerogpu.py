"""ZeroGPU on Hugging Face Spaces: GPU handlers run under `spaces.GPU(duration=...)`, with the duration estimated
from the steps, frames and size asked for and capped; without `spaces` (or off ZeroGPU) they run unchanged."""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TypeVar

from demo.config import GPU_MAX_SECONDS
from demo.inputs import refused
from pipeline.gallery import Gallery
from pipeline.presets import VideoSpec
from pipeline.records import AS_WRITTEN
from pipeline.variations import preview_settings
from runtime.devices import on_zerogpu

__all__ = ["GpuTime", "gpu", "on_zerogpu", "spaces_module"]

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable)

# GPU time model, Wan 2.1 1.3B in bf16 on one ZeroGPU slice (half an H200), no CPU offload. An estimate with room
# to spare: a call that outlives its requested duration is cut off, one that asks for too much waits longer.
STEP_SECONDS_PER_MEGAVOXEL = 0.08  # one denoising step per million output voxels (height x width x frames)
REWRITE_SECONDS = 15  # the LLM writes up to ~250 tokens (a 3B model in 4 bits)
OVERHEAD_SECONDS = 20  # weights onto a fresh worker's GPU, text encoding, VAE decoding, mp4 encoding
MARGIN = 1.3
MIN_SECONDS = 10  # too-small requests are refused or cut off by queueing jitter


def spaces_module() -> ModuleType | None:
    """The `spaces` package (preinstalled on Spaces), or None where it is not installed."""
    try:
        return importlib.import_module("spaces")
    except ImportError:
        return None


def gpu(duration: Callable[..., float]) -> Callable[[F], F]:
    """`spaces.GPU(duration=duration)`: on ZeroGPU the function runs in a GPU worker for about that many seconds.
    `spaces` makes it a no-op elsewhere; without `spaces` the function is returned as it is."""
    spaces = spaces_module()
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


@dataclass(frozen=True)
class GpuTime:
    """Seconds of GPU time each GPU action asks for, from its settings, between MIN_SECONDS and `cap`."""

    spec: VideoSpec
    gallery: Gallery | None = None  # re-runs and picked variations take their settings from their run
    cap: int = GPU_MAX_SECONDS

    def wrap(self, action: str, fn: F) -> F:
        """`fn` (a Gradio handler) under `spaces.GPU`, its duration computed from the same arguments. On ZeroGPU a
        call whose estimate is over the cap is refused with the estimate before it asks for a GPU (the cap would
        cut it off part way, the visitor's quota spent)."""
        signature = inspect.signature(fn)

        def arguments(args: tuple, kwargs: dict) -> Mapping | None:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return None
            bound.apply_defaults()
            return bound.arguments

        def duration(*args, **kwargs) -> int:
            bound = arguments(args, kwargs)
            return self.cap if bound is None else self.seconds(action, bound)

        def refuse_over_cap(args: tuple, kwargs: dict) -> None:
            bound = arguments(args, kwargs)
            needed = 0 if bound is None else self.needed(action, bound)
            if needed > self.cap:
                raise refused(f"This {action} needs about {needed} s of GPU time; a ZeroGPU call gets at most "
                               f"{self.cap} s. Use fewer steps or frames, or a smaller size.")

        duration.__name__ = f"{action}_gpu_seconds"
        on_gpu = gpu(duration)(fn)
        if on_gpu is fn:  # no ZeroGPU: no cap to keep
            return fn
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(on_gpu)
            def guarded_stream(*args, **kwargs):
                refuse_over_cap(args, kwargs)
                yield from on_gpu(*args, **kwargs)

            return guarded_stream  # type: ignore[return-value]

        @functools.wraps(on_gpu)
        def guarded(*args, **kwargs):
            refuse_over_cap(args, kwargs)
            return on_gpu(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    def seconds(self, action: str, args: Mapping) -> int:
        """GPU seconds one call of `action` (rewrite, generate, compare, variations, variation, rerun) asks for:
        the estimate with its margin, capped."""
        estimate = OVERHEAD_SECONDS + self.work(action, args)
        return int(min(self.cap, max(MIN_SECONDS, math.ceil(estimate * MARGIN))))

    def needed(self, action: str, args: Mapping) -> int:
        """The estimate without margin or cap: a call needing more than the cap would be cut off."""
        return math.ceil(OVERHEAD_SECONDS + self.work(action, args))

    def work(self, action: str, args: Mapping) -> float:
        spec = self.spec
        size = (_number(args.get("height"), spec.height), _number(args.get("width"), spec.width),
                _number(args.get("num_frames"), spec.num_frames), _number(args.get("num_inference_steps"),
                                                                           spec.num_inference_steps))
        if args.get("image") and action in ("generate", "compare") and not spec.takes_image and spec.image_partner:
            size = _partner_size(spec, size)  # a reference image renders on the image-capable partner
        rewrite = REWRITE_SECONDS if not (args.get("rewritten") or "").strip() and not args.get("use_raw") else 0
        if action == "rewrite":
            return REWRITE_SECONDS
        if action == "generate":
            return rewrite + render_seconds(*size)
        if action == "compare":
            return rewrite + 2 * render_seconds(*size)  # the prompt as written, then the rewrite
        if action == "variations":
            count = _number(args.get("count"), 4)
            preview = preview_settings(spec, *(max(1, v) for v in size))
            return rewrite + count * render_seconds(*preview.values())
        if action in ("variation", "rerun"):
            return self.from_run(args.get("run_id"), whole_run=action == "rerun")
        raise ValueError(f"unknown GPU action {action!r}")

    def from_run(self, run_id: object, whole_run: bool) -> float:
        """A picked variation renders once at its batch's full settings; a re-run repeats the whole run."""
        default = render_seconds(self.spec.height, self.spec.width, self.spec.num_frames, self.spec.num_inference_steps)
        if self.gallery is None:
            return default
        try:
            run = self.gallery.get(run_id)
        except ValueError:
            return 0  # no such run: the handler says so at once
        s = run.settings
        size = [_number(s.get(k), d) for k, d in (("height", self.spec.height), ("width", self.spec.width),
                                                   ("num_frames", self.spec.num_frames),
                                                   ("num_inference_steps", self.spec.num_inference_steps))]
        rewrite = REWRITE_SECONDS if run.rewritten is None and run.rewrite.fallback != AS_WRITTEN else 0
        if not whole_run:
            return render_seconds(*size)
        if run.kind == "compare":
            return rewrite + 2 * render_seconds(*size)
        if run.kind == "variations":
            return rewrite + len(run.seeds) * render_seconds(*preview_settings(self.spec, *size).values())
        return rewrite + render_seconds(*size)


def _partner_size(spec: VideoSpec, size: tuple) -> tuple:
    """(height, width, frames, steps) as the image partner gets them (pipeline.image_to_video.partner_settings)."""
    from pipeline.image_to_video import image_target, partner_settings

    names = ("height", "width", "num_frames", "num_inference_steps")
    mapped = partner_settings(spec, image_target(spec), dict(zip(names, (int(v) for v in size), strict=True)))
    return tuple(mapped[name] for name in names)


def render_seconds(height: float, width: float, num_frames: float, num_inference_steps: float) -> float:
    """Denoising time of one video: steps x voxels (attention grows faster, the margin covers the preset sizes)."""
    return num_inference_steps * height * width * num_frames / 1e6 * STEP_SECONDS_PER_MEGAVOXEL


def _number(value: object, default: float) -> float:
    """A Gradio number (float, int or text) as a positive number; the default when it is not one (the handler
    then refuses the value itself, with its own message)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) and number > 0 else default
