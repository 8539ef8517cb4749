"""Orchestration: request -> (rewrite) -> denoise -> encode -> sidecar, with progress and cancel."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from pipeline.export import encode_mp4, new_stem, write_sidecar
from pipeline.gallery import Gallery, RunStart
from pipeline.images import load_reference_image
from pipeline.loading import LoadedVideo
from pipeline.request import GenerationRequest, GenerationResult, build_request, check_prompt
from prompts.rewriter import Cancelled, Partial, Rewriter, RewriteResult
from prompts.tokens import TokenCounter

log = logging.getLogger(__name__)

DEFAULT_PRESETS = {"cuda": ("qwen2.5-3b-instruct", "wan2.1-t2v-1.3b"), "other": ("gemma-3-270m", "toy-world")}

RECENT_REWRITES = 256  # rewrites remembered so an unedited rewrite keeps its record when rendered

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total); stages: rewrite, denoise, encode
# Compare and variations name the run too: "raw:denoise", "rewritten:encode", "preview 2/4:denoise".
SETTING_NAMES = ("height", "width", "num_frames", "num_inference_steps", "guidance_scale", "negative_prompt")


class Engine:
    """Loaded models plus the outputs folder; every UI, API and CLI action goes through here."""

    def __init__(self, video: LoadedVideo, rewriter: Rewriter | None, outputs: Path):
        self.video = video
        self.rewriter = rewriter
        self.outputs = Path(outputs)
        self._render_lock = threading.Lock()  # one render at a time on the accelerator
        self._counter: TokenCounter | None = None
        self._recent: dict[str, dict] = {}  # rewritten text -> its rewrite record, for the sidecar
        self.gallery = Gallery(self.outputs)  # opening it marks runs interrupted by a crash as failed

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
        return cls(load_video(video_spec, device, rewriter=None if llm is None else rewriter_name), llm, outputs)

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
        session: str | None = None,
        **settings,
    ) -> GenerationResult:
        """Validate settings, rewrite when asked and needed, then render. Errors are ValueErrors."""
        # 1. Validate everything before any model runs
        request = build_request(self.spec, prompt, rewritten=None if use_raw else rewritten, **settings)
        if request.image_path:
            load_reference_image(request.image_path)

        # 2. Record, rewrite (when the rewritten box is empty) and render
        _, result = self.run_one(
            "generate", request, session=session, rewrite_seed=None if use_raw else rewrite_seed,
            progress=progress, cancel=cancel, out=out,
        )
        return result

    def run_one(
        self,
        kind: str,
        request: GenerationRequest,
        *,
        session: str | None = None,
        rewrite_seed: int | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        out: Path | None = None,
        parent_id: int | None = None,
        extra: dict | None = None,
    ) -> tuple[int, GenerationResult]:
        """One recorded video run: a 'running' row, the rewrite (rewrite_seed None: never), the render,
        then the row completed once the files are in place; any error marks it failed. Returns (run id, result)."""
        # 1. Record the run before any model runs
        video = Path(out) if out is not None else new_stem(self.outputs).with_suffix(".mp4")
        planned = [video, video.with_suffix(".json"), video.with_suffix(".ref.png")]
        pending = {"rewriter": None, "fallback": "used as written"} if rewrite_seed is None else {"seed": rewrite_seed}
        start = self.run_start(kind, request, session, planned, parent_id, rewrite={**pending, **request.rewrite_info})
        with self.gallery.recording(start) as run_id:
            # 2. Rewrite first when there is no rewritten text (and a rewriter is loaded)
            request = self.resolve_prompt(request, rewrite_seed, progress, cancel)

            # 3. Render, then complete the row: the files are in place by now
            result = self.render(request, progress, cancel, planned[0], extra={"run_id": run_id, **(extra or {})})
            files = {"video": result.video_path, "sidecar": result.sidecar_path}
            if request.image_path:
                files["reference_image"] = str(planned[2])
            self.gallery.complete(
                run_id, files, prompt_used=result.prompt_used, rewritten=request.rewritten,
                timings=_with_rewrite_time(result.timings, request.rewrite_info), rewrite=request.rewrite_info,
            )
        return run_id, result

    def resolve_prompt(
        self, request: GenerationRequest, rewrite_seed: int | None, progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationRequest:
        """Fill `rewritten` by rewriting when it is empty (rewrite_seed None: use the prompt as written),
        and record where the prompt sent to the video model came from."""
        if rewrite_seed is not None and request.rewritten is None and self.rewriter is not None:
            result = self.rewrite(request.prompt, rewrite_seed, cancel, progress)
            rewritten = check_prompt(result.rewritten, "rewritten prompt")
            return replace(request, rewritten=rewritten, rewrite_info=_rewrite_info(result))
        if request.rewritten is not None:
            known = self._recent.get(request.rewritten)
            if known is not None and known.get("prompt") == request.prompt:
                return _with_info(request, known)
            return _with_info(request, {"rewriter": "edited or supplied by the user"})
        return _with_info(request, {"rewriter": None, "fallback": "used as written"})

    def run_start(
        self, kind: str, request: GenerationRequest, session: str | None, planned: list[Path],
        parent_id: int | None = None, seeds: tuple[int, ...] | None = None, rewrite: dict | None = None,
        settings: dict | None = None,
    ) -> RunStart:
        """The gallery row of a run about to start."""
        return RunStart(
            kind=kind, prompt=request.prompt, video_preset=self.spec.name, seed=request.seed,
            settings=settings or self.settings(request), session=session, rewritten=request.rewritten,
            seeds=seeds or (request.seed,), rewrite=rewrite if rewrite is not None else dict(request.rewrite_info),
            planned=tuple(str(p) for p in planned), parent_id=parent_id,
        )

    def settings(self, request: GenerationRequest) -> dict:
        """The render settings as the sidecar and the gallery record them."""
        return {**{name: getattr(request, name) for name in SETTING_NAMES}, "fps": self.spec.fps}

    # -- compare, variations and re-runs -----------------------------------------------------------
    def compare(self, prompt: str, **kwargs):
        """Raw vs rewritten with one seed and the same settings: see pipeline.compare.compare."""
        from pipeline.compare import compare

        return compare(self, prompt, **kwargs)

    def variations(self, prompt: str, **kwargs):
        """N seeds at preview settings: see pipeline.variations.variations."""
        from pipeline.variations import variations

        return variations(self, prompt, **kwargs)

    def expand_variation(self, run_id: object, seed: object, **kwargs) -> GenerationResult:
        """One preview of a variations run, re-rendered at full settings."""
        from pipeline.variations import expand_variation

        return expand_variation(self, run_id, seed, **kwargs)

    def rerun(
        self, run_id: object, *, new_seed: bool = False, session: str | None = None, scope: str | None = None,
        progress: ProgressFn | None = None, cancel: threading.Event | None = None,
    ) -> int:
        """Repeat a past run (its prompts and settings) with the same seed or a new one; returns the new run's id.
        It is recorded under `session`; `scope` (when not None) is the session whose runs may be repeated."""
        # 1. Find the run; it must be visible to the caller and made with this video preset
        run = self.gallery.get(run_id, scope)
        if run.status == "running":
            raise ValueError(f"Run {run.id} is still running.")
        if run.video_preset != self.spec.name:
            raise ValueError(f"Run {run.id} was made with {run.video_preset}; this app runs {self.spec.name}.")

        # 2. Same prompts and settings; the stored rewrite is reused, a missing one is made again
        settings = {name: run.settings[name] for name in SETTING_NAMES if name in run.settings}
        seed = None if new_seed else run.seed
        rewrite_seed = run.rewrite.get("seed") or 0
        use_raw = run.rewritten is None and run.rewrite.get("fallback") == "used as written"
        common = {"session": session, "progress": progress, "cancel": cancel, "parent_id": run.id,
                  "rewrite_info": run.rewrite if run.rewritten else None, **settings}
        if run.kind == "compare":
            return self.compare(run.prompt, rewritten=run.rewritten, rewrite_seed=rewrite_seed, seed=seed, **common).run_id
        if run.kind == "variations":
            return self.variations(run.prompt, rewritten=run.rewritten, use_raw=use_raw, rewrite_seed=rewrite_seed,
                                   count=len(run.seeds), seeds=None if new_seed else run.seeds, **common).run_id
        request = build_request(self.spec, run.prompt, rewritten=run.rewritten, seed=seed,
                                rewrite_info=common["rewrite_info"], **settings)
        run_id, _ = self.run_one("generate", request, session=session, rewrite_seed=None if use_raw else rewrite_seed,
                                 progress=progress, cancel=cancel, parent_id=run.id)
        return run_id

    def render(
        self,
        request: GenerationRequest,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        out: Path | None = None,
        extra: dict | None = None,
    ) -> GenerationResult:
        """Denoise, encode and record one video; `out` (an .mp4 path) must not exist."""
        if out is not None:
            out = Path(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            for path in (out, out.with_suffix(".json")):
                if path.exists():
                    raise FileExistsError(f"{path} exists; refusing to overwrite it")
        out = out if out is not None else new_stem(self.outputs).with_suffix(".mp4")
        video_path, record = self.render_video(request, out, progress, cancel)
        image = save_reference(request.image_path, out.with_suffix(".ref.png")) if request.image_path else None
        sidecar = write_sidecar(out.with_suffix(".json"), {**record, "reference_image": image, **(extra or {})})
        return GenerationResult(str(video_path), str(sidecar), request.seed, request.prompt_used, record["timings"])

    def check_tokens(self, prompt: str):
        """The prompt's token count; a ValueError when the video model would cut it."""
        count = self.counter.count(prompt)
        if count.over:
            raise ValueError(
                f"The prompt has {count.tokens} tokens; {self.spec.name} reads at most {count.limit}. "
                "Shorten it: the model would cut the rest silently."
            )
        return count

    def render_video(
        self,
        request: GenerationRequest,
        path: Path,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[Path, dict]:
        """Denoise and encode one video to `path` (which must not exist); returns it and its record."""
        import torch

        count = self.check_tokens(request.prompt_used)
        timings: dict[str, float] = {}
        memory: dict = {}
        with self._render_lock:
            # 1. Free the LLM's accelerator memory before the video model runs (unless the plan keeps it)
            if self.rewriter is not None and (self.video.plan is None or self.video.plan.release_llm):
                self.rewriter.release_accelerator()

            # 2. Denoise; out of GPU memory: step to a more frugal plan and retry once
            def on_step(pipe, step, timestep, kwargs):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                if progress:
                    progress("denoise", step + 1, request.num_inference_steps)
                return kwargs

            start = time.perf_counter()
            if self.video.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            try:
                frames = self._denoise(request, on_step)
            except torch.OutOfMemoryError:
                memory["note"] = self.step_down_memory(request)
                try:
                    frames = self._denoise(request, on_step)
                except torch.OutOfMemoryError:
                    raise ValueError(self._out_of_memory_message(request)) from None
            timings["denoise_s"] = round(time.perf_counter() - start, 3)
            memory.update(self._memory_record(request))

        # 3. Encode
        start = time.perf_counter()
        video_path = encode_mp4(
            frames, Path(path), self.spec.fps,
            progress=(lambda i, n: progress("encode", i, n)) if progress else None,
        )
        timings["encode_s"] = round(time.perf_counter() - start, 3)
        return video_path, {**self._record(request, video_path, count, timings), **_prefixed(memory)}

    def _denoise(self, request: GenerationRequest, on_step):
        """One pipeline call; with the text encoder planned on the CPU, prompts are encoded there first."""
        import torch

        prompts: dict = {"prompt": request.prompt_used, "negative_prompt": request.negative_prompt or None}
        if self.video.text_encoder_on_cpu:
            positive, negative = self.video.pipe.encode_prompt(
                prompt=request.prompt_used, negative_prompt=request.negative_prompt or None,
                do_classifier_free_guidance=request.guidance_scale > 1.0,
                max_sequence_length=self.spec.token_limit, device=torch.device("cpu"),
            )
            prompts = {"prompt_embeds": positive.to(self.video.device),
                       "negative_prompt_embeds": None if negative is None else negative.to(self.video.device)}
        return self.video.pipe(
            **prompts,
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

    def step_down_memory(self, request: GenerationRequest) -> str:
        """After an out-of-memory error: free the GPU, reload with the next more frugal plan; says what changed."""
        from pipeline.memory_apply import step_down

        self.video, note = step_down(self.video, self._rewriter_name(), request)
        log.warning("%s", note)
        return note

    def _out_of_memory_message(self, request: GenerationRequest) -> str:
        from pipeline.memory_apply import out_of_memory_message

        return out_of_memory_message(self.video, self._rewriter_name(), request)

    def _memory_record(self, request: GenerationRequest) -> dict:
        from pipeline.memory_apply import memory_record

        return memory_record(self.video, request)

    def _rewriter_name(self) -> str | None:
        return self.rewriter.spec.name if self.rewriter is not None else None

    def _record(self, request: GenerationRequest, video_path: Path, count, timings) -> dict:
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
            "settings": self.settings(request),
            "device": self.video.device,
            "dtype": self.video.dtype,
            "memory": list(self.video.memory),
            "timings": timings,
        }


def _prefixed(memory: dict) -> dict:
    """Sidecar fields of the memory record: memory_plan, memory_estimated_peak_vram_gb, ..., memory_note."""
    return {f"memory_{key}": value for key, value in memory.items()}


def named_progress(progress: ProgressFn | None, name: str) -> ProgressFn | None:
    """Progress for one of several runs: stages become "NAME:denoise", "NAME:encode"."""
    if progress is None:
        return None
    return lambda stage, done, total: progress(f"{name}:{stage}", done, total)


def default_presets(device: str) -> tuple[str, str]:
    """(rewriter, video) when none is chosen: the real models on CUDA, embedded/tiny elsewhere."""
    return DEFAULT_PRESETS["cuda" if device == "cuda" else "other"]


def _rewrite_info(result: RewriteResult) -> dict:
    return {k: v for k, v in result.to_dict().items() if k != "rewritten"}


def _with_rewrite_time(timings: dict, rewrite_info: dict) -> dict:
    seconds = rewrite_info.get("seconds")
    return {**timings, "rewrite_s": seconds} if isinstance(seconds, (int, float)) else dict(timings)


def _with_info(request: GenerationRequest, info: dict) -> GenerationRequest:
    return replace(request, rewrite_info={**info, **request.rewrite_info})


def save_reference(path: str, out: Path) -> dict:
    """Store the processed reference image (`out`, a .png beside the video); the sidecar records it."""
    image = load_reference_image(path)
    image.save(out, format="PNG")
    return {
        "path": out.name,
        "original_name": Path(path).name,
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "size": list(image.size),
        "used_by_video_model": False,  # text-only presets: the image is shown and recorded only
    }
