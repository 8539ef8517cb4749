"""Orchestration: request -> (rewrite) -> denoise -> encode -> sidecar, with progress and cancel."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from pipeline import compare, loading, variations
from pipeline.export import encode_mp4, new_stem
from pipeline.gallery import Gallery, RunStart
from pipeline.image_to_video import image_target, partner_settings, save_reference, switch_note
from pipeline.loading import LoadedVideo, rewrite_target, step_down
from pipeline.memory_apply import memory_record, out_of_memory_message
from pipeline.presets import VideoSpec, get_video_spec
from pipeline.records import AS_WRITTEN, EDITED, GenerateSidecar, RewriteInfo, to_json, write_sidecar
from pipeline.request import SETTING_NAMES, GenerationRequest, GenerationResult, build_request
from pipeline.runner import ProgressFn
from prompts.cleaning import check_prompt
from prompts.presets import get_rewriter_spec
from prompts.rewriter import Cancelled, Partial, Rewriter, RewriteResult
from prompts.tokens import TokenCount, TokenCounter
from prompts.vision import load_rewriter
from runtime.devices import free_accelerator_memory, on_zerogpu, pick_device
from runtime.images import prepare_reference_image

log = logging.getLogger(__name__)

DEFAULT_PRESETS = {"cuda": ("qwen2.5-3b-instruct", "wan2.1-t2v-1.3b"), "other": ("gemma-3-270m", "toy-world")}

RECENT_REWRITES = 256  # rewrites remembered so an unedited rewrite keeps its record when rendered

class Engine:
    """Loaded models plus the outputs folder; every UI, API and CLI action goes through here."""

    def __init__(self, video: LoadedVideo, rewriter: Rewriter | None, outputs: Path):
        self.video = video
        self.rewriter = rewriter
        self._partner: LoadedVideo | None = None  # the image-capable partner, loaded on the first image
        self.outputs = Path(outputs)
        self._render_lock = threading.Lock()  # one render at a time on the accelerator
        self._counter: TokenCounter | None = None
        self._recent: dict[str, RewriteInfo] = {}  # rewritten text -> its rewrite record, for the sidecar
        self.gallery = Gallery(self.outputs)  # opening it marks runs interrupted by a crash as failed
        self.records_runs = True  # False (the CLI's --no-record): the gallery is a throwaway; sidecars name no run

    @classmethod
    def load(cls, rewriter: str | None, video: str | None, outputs: Path, device: str | None = None) -> Engine:
        """Load presets by name; None picks the device's default, rewriter "none" loads no LLM."""
        device = device or pick_device()
        default_rewriter, default_video = default_presets(device)
        video_spec = get_video_spec(video or default_video)
        rewriter_name = rewriter or default_rewriter
        llm = None if rewriter_name == "none" else load_rewriter(get_rewriter_spec(rewriter_name), device)
        engine = cls(loading.load_video(video_spec, device, rewriter=None if llm is None else rewriter_name), llm, outputs)
        if on_zerogpu() and engine.image_spec not in (None, engine.spec):
            # ZeroGPU: models load in the main process, once: a GPU worker cannot keep what it loads (each call
            # may get a fresh fork), and a load there would spend the visitor's GPU time. The partner shares
            # this preset's text encoder (pipeline.loading.SHARED_TEXT_ENCODER), so it adds no second umT5.
            engine.loaded(engine.image_spec.name)
        return engine

    @property
    def spec(self):
        return self.video.spec

    @property
    def counter(self) -> TokenCounter:
        if self._counter is None:
            self._counter = self.counter_for(self.spec)
        return self._counter

    def counter_for(self, spec: VideoSpec) -> TokenCounter:
        if spec.name == self.spec.name and self._counter is not None:
            return self._counter
        target = rewrite_target(spec)
        return self.rewriter.counter(target) if self.rewriter else TokenCounter.for_target(target)

    def status(self, video: str | None = None) -> str:
        """One line: rewriter and video model; `video` names the preset of the last render when it was the
        image-capable partner (the switch is shown)."""
        rewriter = self.rewriter.describe() if self.rewriter else "none (prompts used as written)"
        note = " · offline test model: its output is noise" if self.spec.is_test_model else ""
        if video is not None and video != self.spec.name:
            partner = self._partner.describe() if self._partner is not None else video
            return f"Rewriter: {rewriter} · Video: {partner} · {switch_note(self.spec, get_video_spec(video))}{note}"
        return f"Rewriter: {rewriter} · Video: {self.video.describe()}{note}"

    # -- reference images --------------------------------------------------------------------------
    @property
    def image_spec(self) -> VideoSpec | None:
        """The preset that renders requests with a reference image (None: no image-capable preset)."""
        try:
            return image_target(self.spec)
        except ValueError:
            return None

    @property
    def rewriter_sees_images(self) -> bool:
        return self.rewriter is not None and getattr(self.rewriter.spec, "vision", False)

    def build(self, prompt: str, *, image_path: str | None = None, **settings) -> GenerationRequest:
        """A validated request; with a reference image it targets the image-capable preset (the partner of a
        text-only one, with the partner's defaults for settings left at this preset's) and the image is checked."""
        spec = self.spec
        if image_path:
            spec = image_target(self.spec)
            if spec is not self.spec:
                settings = partner_settings(self.spec, spec, settings)
                if settings.get("fps") == self.spec.fps:  # left at this preset's rate: the partner's own
                    settings["fps"] = None
        request = build_request(spec, prompt, image_path=image_path or None, **settings)
        if request.image_path:
            prepare_reference_image(request.image_path, request.height, request.width, request.image_fit)
        return request

    def loaded(self, name: str) -> LoadedVideo:
        """The loaded pipeline of preset `name` (this app's, or its image partner, loaded on first use). On CUDA
        only one stays on the GPU: the other is dropped and reloaded when needed again."""
        if name == self.spec.name:
            wanted, other = self.video, self._partner
        elif self.image_spec is not None and name == self.image_spec.name:
            wanted, other = self._partner, self.video
        else:
            raise ValueError(f"This app runs {self.spec.name}; {name} is not loaded.")
        # On ZeroGPU both stay (loaded at start): each call gets a large GPU slice
        if self.video.device == "cuda" and not on_zerogpu() and other is not None and other.pipe is not None:
            other.pipe = other.image_pipe = None
            free_accelerator_memory()
        if wanted is None or wanted.pipe is None:
            spec = get_video_spec(name)
            log.info("loading %s", name)
            wanted = loading.load_video(spec, self.video.device, rewriter=self._rewriter_name(),
                                text_encoder_from=self._text_encoder_donor(name))
            if name == self.spec.name:
                self.video = wanted
            else:
                self._partner = wanted
        return wanted

    # -- rewriting -------------------------------------------------------------------------------
    def rewrite_stream(
        self, prompt: str, seed: int = 0, cancel: threading.Event | None = None, image_path: str | None = None,
        image_description: str | None = None,
    ) -> Iterator[Partial | RewriteResult]:
        """Stream a rewrite for this app's video model; with a reference image, an image-aware rewrite for the
        preset that renders it (a vision rewriter sees the image; a text rewriter reads `image_description`)."""
        if self.rewriter is None:
            raise ValueError("No rewriter is loaded (started with --rewriter none).")
        target, extra = self.spec, {}
        if image_path:
            from prompts.image_templates import load_image_template

            target = image_target(self.spec)
            seen = image_path if self.rewriter_sees_images else None
            extra["template"] = load_image_template(target.template_family, image_description, seen)
        for item in self.rewriter.stream(prompt, rewrite_target(target), seed, cancel, **extra):
            if isinstance(item, RewriteResult):
                self._remember(item)
            yield item

    def _remember(self, result: RewriteResult) -> None:
        if len(self._recent) >= RECENT_REWRITES:
            self._recent.pop(next(iter(self._recent)))
        self._recent[result.rewritten] = RewriteInfo.from_result(result)

    def rewrite(self, prompt: str, seed: int = 0, cancel: threading.Event | None = None, progress: ProgressFn | None = None,
                image_path: str | None = None, image_description: str | None = None) -> RewriteResult:
        for item in self.rewrite_stream(prompt, seed, cancel, image_path, image_description):
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
        # 1. Validate everything before any model runs (with an image: the image-capable preset, the image)
        request = self.build(prompt, rewritten=None if use_raw else rewritten, **settings)

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
        preview: dict | None = None,
    ) -> tuple[int, GenerationResult]:
        """One recorded video run: a 'running' row, the rewrite (rewrite_seed None: never), the render,
        then the row completed once the files are in place; any error marks it failed. Returns (run id, result).
        `preview` links an expanded preview to its batch in the sidecar."""
        # 1. Refuse a prompt the video model would cut before recording anything; then record the run
        if rewrite_seed is None or request.rewritten is not None or self.rewriter is None:
            self.check_tokens(request.prompt_used, get_video_spec(request.video))
        video = Path(out) if out is not None else new_stem(self.outputs).with_suffix(".mp4")
        planned = [video, video.with_suffix(".json"), video.with_suffix(".ref.png")]
        pending = RewriteInfo.as_written() if rewrite_seed is None else RewriteInfo(seed=rewrite_seed)
        start = self.run_start(kind, request, session, planned, parent_id, rewrite=pending.merged(request.rewrite_info))
        with self.gallery.recording(start) as run_id:
            # 2. Rewrite first when there is no rewritten text (and a rewriter is loaded)
            request = self.resolve_prompt(request, rewrite_seed, progress, cancel)

            # 3. Render, then complete the row: the files are in place by now
            result = self.render(request, progress, cancel, planned[0], self.recorded_id(run_id), preview)
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
            result = self.rewrite(request.prompt, rewrite_seed, cancel, progress, request.image_path,
                                  request.image_description)
            rewritten = check_prompt(result.rewritten, "rewritten prompt")
            info = RewriteInfo.from_result(result)
            if request.image_path:  # what the rewriter knew of the image
                info = replace(info, image="seen" if self.rewriter_sees_images else
                               "described" if request.image_description else "unseen")
            return replace(request, rewritten=rewritten, rewrite_info=info)
        if request.rewritten is not None:
            known = self._recent.get(request.rewritten)
            if known is not None and known.prompt == request.prompt:
                return _with_info(request, known)
            return _with_info(request, RewriteInfo(rewriter=EDITED))
        return _with_info(request, RewriteInfo.as_written())

    def recorded_id(self, run_id: int) -> int | None:
        """The sidecar's reference to its gallery run: none when runs are not recorded."""
        return run_id if self.records_runs else None

    def run_start(
        self, kind: str, request: GenerationRequest, session: str | None, planned: list[Path],
        parent_id: int | None = None, seeds: tuple[int, ...] | None = None, rewrite: RewriteInfo | None = None,
        settings: dict | None = None,
    ) -> RunStart:
        """The gallery row of a run about to start."""
        return RunStart(
            kind=kind, prompt=request.prompt, video_preset=request.video, seed=request.seed,
            settings=settings or self.settings(request), session=session, rewritten=request.rewritten,
            seeds=seeds or (request.seed,), rewrite=rewrite if rewrite is not None else request.rewrite_info,
            planned=tuple(str(p) for p in planned), parent_id=parent_id,
        )

    def settings(self, request: GenerationRequest) -> dict:
        """The render settings as the sidecar and the gallery record them."""
        image = {"image_fit": request.image_fit} if request.image_path else {}
        return {**{name: getattr(request, name) for name in SETTING_NAMES}, **image}

    # -- compare, variations and re-runs -----------------------------------------------------------
    def compare(self, prompt: str, **kwargs) -> compare.CompareResult:
        """Raw vs rewritten with one seed and the same settings: see pipeline.compare.compare."""
        return compare.compare(self, prompt, **kwargs)

    def variations(self, prompt: str, **kwargs) -> variations.VariationsResult:
        """N seeds at preview settings: see pipeline.variations.variations."""
        return variations.variations(self, prompt, **kwargs)

    def expand_variation(self, run_id: object, seed: object, **kwargs) -> GenerationResult:
        """One preview of a variations run, re-rendered at full settings."""
        return variations.expand_variation(self, run_id, seed, **kwargs)

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
        image = run.files.get("reference_image") if run.kind in ("generate", "compare") else None
        image = str(self.gallery.file(image)) if image else None
        runs_here = {self.spec.name} | ({self.image_spec.name} if image and self.image_spec else set())
        if run.video_preset not in runs_here:
            raise ValueError(f"Run {run.id} was made with {run.video_preset}; this app runs {self.spec.name}.")
        if image and not Path(image).is_file():
            raise ValueError(f"Run {run.id}'s reference image is gone ({Path(image).name}); it cannot be repeated.")

        # 2. Same prompts and settings; the stored rewrite is reused, a missing one is made again
        settings = {name: run.settings[name] for name in SETTING_NAMES if name in run.settings}
        if image:  # the stored image is the processed one: fitting it again to the same size changes nothing
            settings |= {"image_path": image, "image_fit": run.settings.get("image_fit", "crop")}
        seed = None if new_seed else run.seed
        rewrite_seed = run.rewrite.seed or 0
        use_raw = run.rewritten is None and run.rewrite.fallback == AS_WRITTEN
        common = {"session": session, "progress": progress, "cancel": cancel, "parent_id": run.id,
                  "rewrite_info": run.rewrite if run.rewritten else None, **settings}
        if run.kind == "compare":
            return self.compare(run.prompt, rewritten=run.rewritten, rewrite_seed=rewrite_seed, seed=seed, **common).run_id
        if run.kind == "variations":
            return self.variations(run.prompt, rewritten=run.rewritten, use_raw=use_raw, rewrite_seed=rewrite_seed,
                                   count=len(run.seeds), seeds=None if new_seed else run.seeds, **common).run_id
        request = self.build(run.prompt, rewritten=run.rewritten, seed=seed, rewrite_info=common["rewrite_info"],
                             **settings)
        run_id, _ = self.run_one("generate", request, session=session, rewrite_seed=None if use_raw else rewrite_seed,
                                 progress=progress, cancel=cancel, parent_id=run.id)
        return run_id

    def render(
        self,
        request: GenerationRequest,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        out: Path | None = None,
        run_id: int | None = None,
        preview: dict | None = None,
    ) -> GenerationResult:
        """Denoise, encode and record one video; `out` (an .mp4 path) must not exist. The sidecar names the gallery
        run `run_id` and, for an expanded preview, links the `preview`."""
        if out is not None:
            out = Path(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            for path in (out, out.with_suffix(".json")):
                if path.exists():
                    raise FileExistsError(f"{path} exists; refusing to overwrite it")
        out = out if out is not None else new_stem(self.outputs).with_suffix(".mp4")
        record = self.render_record(request, out, progress, cancel)
        image = save_reference(request, out.with_suffix(".ref.png")) if request.image_path else None
        record = replace(record, reference_image=image, run_id=run_id, preview=preview)
        sidecar = write_sidecar(out.with_suffix(".json"), record)
        return GenerationResult(str(out), str(sidecar), request.seed, request.prompt_used, record.timings)

    def check_tokens(self, prompt: str, spec: VideoSpec | None = None) -> TokenCount:
        """The prompt's token count; a ValueError when the video model (`spec`, default this app's) would cut it."""
        spec = spec or self.spec
        count = self.counter_for(spec).count(prompt)
        if count.over:
            raise ValueError(
                f"The prompt has {count.tokens} tokens; {spec.name} reads at most {count.limit}. "
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
        """render_record, returning the path and the record as its JSON (benchmarks.gpu_check reads memory_*)."""
        return Path(path), to_json(self.render_record(request, path, progress, cancel))

    def render_record(
        self,
        request: GenerationRequest,
        path: Path,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerateSidecar:
        """Denoise and encode one video to `path` (which must not exist); returns its record, not yet linked to a
        run (run_id, reference_image and preview are left empty)."""
        import torch

        count = self.check_tokens(request.prompt_used, get_video_spec(request.video))
        timings: dict[str, float] = {}
        memory: dict = {}
        with self._render_lock:
            video = self.loaded(request.video)  # with an image on a text-only preset: its partner
            # 1. Free the LLM's accelerator memory before the video model runs (unless the plan keeps it)
            if self.rewriter is not None and (video.plan is None or video.plan.release_llm):
                self.rewriter.release_accelerator()

            # 2. Denoise; out of GPU memory: step to a more frugal plan and retry once
            def on_step(pipe, step, timestep, kwargs):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                if progress:
                    progress("denoise", step + 1, request.num_inference_steps)
                return kwargs

            start = time.perf_counter()
            if video.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            frames = None
            try:
                frames = self._denoise(video, request, on_step)
            except torch.OutOfMemoryError:
                pass  # stepped down below: the error's traceback holds the old pipeline and its tensors
            if frames is None:
                try:
                    memory["note"] = self.step_down_memory(request)
                    frames = self._denoise(self.loaded(request.video), request, on_step)
                except torch.OutOfMemoryError:  # while the smaller plan loads, or when it runs
                    raise ValueError(self._out_of_memory_message(request)) from None
            timings["denoise_s"] = round(time.perf_counter() - start, 3)
            memory.update(self._memory_record(request))

        # 3. Encode
        start = time.perf_counter()
        video_path = encode_mp4(
            frames, Path(path), request.fps,
            progress=(lambda i, n: progress("encode", i, n)) if progress else None,
        )
        timings["encode_s"] = round(time.perf_counter() - start, 3)
        return self._record(request, video_path, count, timings, memory)

    def _denoise(self, video: LoadedVideo, request: GenerationRequest, on_step):
        """One pipeline call (image-to-video when the request has an image); with the text encoder planned on
        the CPU, prompts are encoded there first."""
        import torch

        spec, image = video.spec, bool(request.image_path)
        pipe = video.pipe_for(image)
        prompts: dict = {"prompt": request.prompt_used, "negative_prompt": request.negative_prompt or None}
        if video.text_encoder_on_cpu:
            prompts = _encode_on_cpu(pipe, request, spec.token_limit, video.device)
        extra = dict(spec.call_kwargs)
        if image:
            extra["image"] = prepare_reference_image(request.image_path, request.height, request.width, request.image_fit)
        if "frame_rate" in _call_parameters(pipe):  # LTX conditions on the frame rate
            extra["frame_rate"] = request.fps
        try:
            return pipe(
                **prompts,
                **extra,
                height=request.height,
                width=request.width,
                num_frames=request.num_frames,
                num_inference_steps=request.num_inference_steps,
                guidance_scale=request.guidance_scale,
                generator=torch.Generator("cpu").manual_seed(request.seed),  # same noise on any device
                max_sequence_length=spec.token_limit,
                output_type="np",
                callback_on_step_end=on_step,
            ).frames[0]
        finally:
            video.after_call(image)

    def _text_encoder_donor(self, name: str) -> LoadedVideo | None:
        """For the image partner: this app's preset, whose text encoder it may read (SHARED_TEXT_ENCODER)."""
        return self.video if name != self.spec.name else None

    def step_down_memory(self, request: GenerationRequest) -> str:
        """After an out-of-memory error: free the GPU, reload with the next more frugal plan; says what changed."""
        loaded, note = step_down(self.loaded(request.video), self._rewriter_name(), request,
                                 text_encoder_from=self._text_encoder_donor(request.video))
        if request.video == self.spec.name:
            self.video = loaded
        else:
            self._partner = loaded
        log.warning("%s", note)
        return note

    def _out_of_memory_message(self, request: GenerationRequest) -> str:
        """What the settings need; from the preset's plan, without loading anything (a reload may have failed)."""
        video = self.video if request.video == self.spec.name else self._partner
        return out_of_memory_message(video, self._rewriter_name(), request)

    def _memory_record(self, request: GenerationRequest) -> dict:
        return memory_record(self.loaded(request.video), request)

    def _rewriter_name(self) -> str | None:
        return self.rewriter.spec.name if self.rewriter is not None else None

    def _record(self, request: GenerationRequest, video_path: Path, count, timings: dict,
                memory: dict) -> GenerateSidecar:
        loaded = self.loaded(request.video)
        return GenerateSidecar(
            video=video_path.name,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            raw_prompt=request.prompt,
            rewritten_prompt=request.rewritten,
            prompt_used=request.prompt_used,
            prompt_tokens={"tokens": count.tokens, "limit": count.limit, "exact": count.exact},
            rewrite=request.rewrite_info,
            seed=request.seed,
            video_preset=request.video,
            switched_from=self.spec.name if request.video != self.spec.name else None,  # image partner
            settings=self.settings(request),
            device=self.video.device,
            dtype=loaded.dtype,
            memory=tuple(loaded.memory),
            timings=timings,
            memory_report=memory,
        )


def default_presets(device: str) -> tuple[str, str]:
    """(rewriter, video) when none is chosen: the real models on CUDA, embedded/tiny elsewhere."""
    return DEFAULT_PRESETS["cuda" if device == "cuda" else "other"]


def _with_rewrite_time(timings: dict, rewrite_info: RewriteInfo) -> dict:
    seconds = rewrite_info.seconds
    return {**timings, "rewrite_s": seconds} if seconds is not None else dict(timings)


def _with_info(request: GenerationRequest, info: RewriteInfo) -> GenerationRequest:
    return replace(request, rewrite_info=info.merged(request.rewrite_info))


def _encode_on_cpu(pipe, request: GenerationRequest, token_limit: int, device: str) -> dict:
    """Prompt embeddings computed by a text encoder planned on the CPU, moved to `device` (Wan returns two
    tensors; LTX also returns attention masks)."""
    import torch

    encoded = pipe.encode_prompt(
        prompt=request.prompt_used, negative_prompt=request.negative_prompt or None,
        do_classifier_free_guidance=request.guidance_scale > 1.0,
        max_sequence_length=token_limit, device=torch.device("cpu"),
    )
    names = (("prompt_embeds", "prompt_attention_mask", "negative_prompt_embeds", "negative_prompt_attention_mask")
             if len(encoded) == 4 else ("prompt_embeds", "negative_prompt_embeds"))
    return {name: None if value is None else value.to(device) for name, value in zip(names, encoded, strict=True)}


def _call_parameters(pipe) -> set[str]:
    import inspect

    return set(inspect.signature(type(pipe).__call__).parameters)

