"""Orchestration: request -> (rewrite) -> denoise -> encode -> sidecar, with progress and cancel."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.export import encode_mp4, new_stem, write_sidecar
from pipeline.images import load_reference_image
from pipeline.loading import LoadedVideo
from pipeline.request import GenerationRequest, GenerationResult, build_request
from prompts.rewriter import Cancelled, Partial, Rewriter, RewriteResult
from prompts.tokens import TokenCounter

log = logging.getLogger(__name__)

DEFAULT_PRESETS = {"cuda": ("qwen2.5-3b-instruct", "wan2.1-t2v-1.3b"), "other": ("gemma-3-270m", "tiny-random")}

RECENT_REWRITES = 256  # rewrites remembered so an unedited rewrite keeps its record when rendered

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total); stages: rewrite, denoise, encode


class Engine:
    """Loaded models plus the outputs folder; every UI, API and CLI action goes through here."""

    def __init__(self, video: LoadedVideo, rewriter: Rewriter | None, outputs: Path):
        self.video = video
        self.rewriter = rewriter
        self.outputs = Path(outputs)
        self._render_lock = threading.Lock()  # one render at a time on the accelerator
        self._counter: TokenCounter | None = None
        self._recent: dict[str, dict] = {}  # rewritten text -> its rewrite record, for the sidecar

    @classmethod
    def load(cls, rewriter: str | None, video: str | None, outputs: Path, device: str | None = None) -> Engine:
        """Load presets by name; None picks the device's default, rewriter "none" loads no LLM."""
        from pipeline.devices import pick_device
        from pipeline.loading import load_video
        from pipeline.presets import get_video_spec
        from prompts.presets import get_rewriter_spec

        device = device or pick_device()
        default_rewriter, default_video = default_presets(device)
        video_spec = get_video_spec(video or default_video)
        rewriter_name = rewriter or default_rewriter
        llm = None if rewriter_name == "none" else Rewriter.load(get_rewriter_spec(rewriter_name), device)
        return cls(load_video(video_spec, device), llm, outputs)

    @property
    def spec(self):
        return self.video.spec

    @property
    def counter(self) -> TokenCounter:
        if self._counter is None:
            self._counter = (
                self.rewriter.counter(self.spec) if self.rewriter else TokenCounter.for_target(self.spec)
            )
        return self._counter

    def status(self) -> str:
        rewriter = self.rewriter.describe() if self.rewriter else "none (prompts used as written)"
        note = " · offline test model: its output is noise" if self.spec.is_test_model else ""
        return f"Rewriter: {rewriter} · Video: {self.video.describe()}{note}"

    # -- rewriting -------------------------------------------------------------------------------
    def rewrite_stream(
        self, prompt: str, seed: int = 0, cancel: threading.Event | None = None
    ) -> Iterator[Partial | RewriteResult]:
        if self.rewriter is None:
            raise ValueError("No rewriter is loaded (started with --rewriter none).")
        for item in self.rewriter.stream(prompt, self.spec, seed, cancel):
            if isinstance(item, RewriteResult):
                self._remember(item)
            yield item

    def _remember(self, result: RewriteResult) -> None:
        if len(self._recent) >= RECENT_REWRITES:
            self._recent.pop(next(iter(self._recent)))
        self._recent[result.rewritten] = _rewrite_info(result)

    def rewrite(self, prompt: str, seed: int = 0, cancel: threading.Event | None = None, progress: ProgressFn | None = None) -> RewriteResult:
        for item in self.rewrite_stream(prompt, seed, cancel):
            if isinstance(item, RewriteResult):
                return item
            if progress:
                progress("rewrite", item.tokens, item.max_tokens)
        raise RuntimeError("rewrite ended without a result")

    # -- generation ------------------------------------------------------------------------------
    def generate(
        self,
        prompt: str,
        *,
        rewritten: str | None = None,
        use_raw: bool = False,
        rewrite_seed: int = 0,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        out: Path | None = None,
        **settings,
    ) -> GenerationResult:
        """Validate settings, rewrite when asked and needed, then render. Errors are ValueErrors."""
        # 1. Validate everything before any model runs
        request = build_request(self.spec, prompt, rewritten=None if use_raw else rewritten, **settings)
        if request.image_path:
            load_reference_image(request.image_path)

        # 2. Rewrite first when the rewritten box is empty (and a rewriter is loaded)
        if not use_raw and request.rewritten is None and self.rewriter is not None:
            result = self.rewrite(request.prompt, rewrite_seed, cancel, progress)
            request = build_request(
                self.spec, request.prompt, rewritten=result.rewritten, rewrite_info=_rewrite_info(result),
                **{**settings, "seed": request.seed},
            )
        elif request.rewritten is not None:
            known = self._recent.get(request.rewritten)
            if known is not None and known.get("prompt") == request.prompt:
                request = _with_info(request, known)
            else:
                request = _with_info(request, {"rewriter": "edited or supplied by the user"})
        else:
            request = _with_info(request, {"rewriter": None, "fallback": "used as written"})
        return self.render(request, progress, cancel, out)

    def render(
        self,
        request: GenerationRequest,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        out: Path | None = None,
    ) -> GenerationResult:
        """Denoise, encode and record one video; `out` (an .mp4 path) must not exist."""
        import torch

        if out is not None:
            out = Path(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            for path in (out, out.with_suffix(".json")):
                if path.exists():
                    raise FileExistsError(f"{path} exists; refusing to overwrite it")

        count = self.counter.count(request.prompt_used)
        if count.over:
            raise ValueError(
                f"The prompt has {count.tokens} tokens; {self.spec.name} reads at most {count.limit}. "
                "Shorten it: the model would cut the rest silently."
            )
        timings: dict[str, float] = {}
        with self._render_lock:
            # 1. Free the LLM's accelerator memory before the video model runs
            if self.rewriter is not None:
                self.rewriter.release_accelerator()

            # 2. Denoise
            def on_step(pipe, step, timestep, kwargs):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                if progress:
                    progress("denoise", step + 1, request.num_inference_steps)
                return kwargs

            start = time.perf_counter()
            frames = self.video.pipe(
                prompt=request.prompt_used,
                negative_prompt=request.negative_prompt or None,
                height=request.height,
                width=request.width,
                num_frames=request.num_frames,
                num_inference_steps=request.num_inference_steps,
                guidance_scale=request.guidance_scale,
                generator=torch.Generator("cpu").manual_seed(request.seed),  # same noise on any device
                max_sequence_length=self.spec.token_limit,
                output_type="np",
                callback_on_step_end=on_step,
            ).frames[0]
            timings["denoise_s"] = round(time.perf_counter() - start, 3)

        # 3. Encode and record
        start = time.perf_counter()
        stem = out.with_suffix("") if out is not None else new_stem(self.outputs)
        video_path = encode_mp4(
            frames, stem.with_suffix(".mp4"), self.spec.fps,
            progress=(lambda i, n: progress("encode", i, n)) if progress else None,
        )
        timings["encode_s"] = round(time.perf_counter() - start, 3)
        image = _save_reference(request.image_path, stem) if request.image_path else None
        sidecar = write_sidecar(stem.with_suffix(".json"), self._record(request, video_path, image, count, timings))
        return GenerationResult(str(video_path), str(sidecar), request.seed, request.prompt_used, timings)

    def _record(self, request: GenerationRequest, video_path: Path, image: dict | None, count, timings) -> dict:
        return {
            "video": video_path.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "raw_prompt": request.prompt,
            "rewritten_prompt": request.rewritten,
            "prompt_used": request.prompt_used,
            "prompt_tokens": {"tokens": count.tokens, "limit": count.limit, "exact": count.exact},
            "rewrite": request.rewrite_info,
            "seed": request.seed,
            "seeds": {"video": request.seed, "rewrite": request.rewrite_info.get("seed")},
            "video_preset": self.spec.name,
            "settings": {
                "height": request.height,
                "width": request.width,
                "num_frames": request.num_frames,
                "fps": self.spec.fps,
                "num_inference_steps": request.num_inference_steps,
                "guidance_scale": request.guidance_scale,
                "negative_prompt": request.negative_prompt,
            },
            "reference_image": image,
            "device": self.video.device,
            "dtype": self.video.dtype,
            "memory": list(self.video.memory),
            "timings": timings,
        }


def default_presets(device: str) -> tuple[str, str]:
    """(rewriter, video) when none is chosen: the real models on CUDA, embedded/tiny elsewhere."""
    return DEFAULT_PRESETS["cuda" if device == "cuda" else "other"]


def _rewrite_info(result: RewriteResult) -> dict:
    return {k: v for k, v in result.to_dict().items() if k != "rewritten"}


def _with_info(request: GenerationRequest, info: dict) -> GenerationRequest:
    from dataclasses import replace

    return replace(request, rewrite_info={**info, **request.rewrite_info})


def _save_reference(path: str, stem: Path) -> dict:
    """Store the processed reference image beside the video; the sidecar records it."""
    image = load_reference_image(path)
    out = stem.with_suffix(".ref.png")
    image.save(out, format="PNG")
    return {
        "path": out.name,
        "original_name": Path(path).name,
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "size": list(image.size),
        "used_by_video_model": False,  # text-only presets: the image is shown and recorded only
    }
