"""Variations: several seeds of one prompt at the preset's cheap preview settings, then one at full settings."""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, replace

from pipeline.export import new_stem
from pipeline.presets import VideoSpec
from pipeline.records import GenerateSidecar, RewriteInfo, VariationPreview, VariationsSidecar, write_sidecar
from pipeline.request import MAX_SEED, SETTING_NAMES, GenerationResult, build_request
from pipeline.runner import ProgressFn, Runner, named_progress

DEFAULT_COUNT = 4
MAX_COUNT = 8  # each preview costs roughly a tenth of a full render; eight still cost less than one


@dataclass(frozen=True)
class Preview:
    seed: int
    video_path: str


@dataclass(frozen=True)
class VariationsResult:
    previews: tuple[Preview, ...]
    prompt_used: str
    sidecar_path: str  # one sidecar for the batch
    run_id: int  # pick a preview with Engine.expand_variation(run_id, seed)
    preview_settings: dict
    rewrite: RewriteInfo


def preview_settings(spec: VideoSpec, height: int, width: int, num_frames: int, num_inference_steps: int) -> dict:
    """The preset's preview size for the aspect closest to the full size, never more than the full render."""
    def distance(aspect: str) -> float:
        h, w = spec.sizes[aspect]
        return abs(math.log((h / w) / (height / width)))

    preview_height, preview_width = spec.preview_sizes[min(spec.preview_sizes, key=distance)]
    if preview_height > height or preview_width > width:
        preview_height, preview_width = height, width
    return {
        "height": preview_height,
        "width": preview_width,
        "num_frames": min(spec.preview_num_frames, num_frames),
        "num_inference_steps": min(spec.preview_num_inference_steps, num_inference_steps),
    }


def variation_seeds(count: object, seed: int | None = None) -> tuple[int, ...]:
    """`count` distinct seeds: seed, seed+1, ... when a seed is given, else drawn at random."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        raise ValueError(f"The number of variations must be a whole number from 1 to {MAX_COUNT}, got {count!r}.")
    if seed is not None and seed >= 0:
        if seed > MAX_SEED:
            raise ValueError(f"seed={seed} is out of range 0-{MAX_SEED} (or -1 for random seeds).")
        return tuple((seed + i) % (MAX_SEED + 1) for i in range(count))
    rng = random.SystemRandom()
    seeds: list[int] = []
    while len(seeds) < count:
        drawn = rng.randint(0, MAX_SEED)
        if drawn not in seeds:
            seeds.append(drawn)
    return tuple(seeds)


def variations(
    engine: Runner,
    prompt: str,
    *,
    count: int = DEFAULT_COUNT,
    seeds: tuple[int, ...] | None = None,
    rewritten: str | None = None,
    use_raw: bool = False,
    rewrite_seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    session: str | None = None,
    parent_id: int | None = None,
    **settings,
) -> VariationsResult:
    """Render `count` seeds (or the given `seeds`) of one prompt at preview settings, rewriting once first."""
    # 1. Validate the full settings and the preview requests derived from them
    seed = settings.pop("seed", None)
    seeds = tuple(seeds) if seeds else variation_seeds(count, seed)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"Variation seeds must differ, got {list(seeds)}.")
    full = build_request(engine.spec, prompt, rewritten=None if use_raw else rewritten, seed=seeds[0], **settings)
    preview = preview_settings(engine.spec, full.height, full.width, full.num_frames, full.num_inference_steps)
    requests = [replace(full, seed=seed, **preview).resolved(engine.spec) for seed in seeds]  # checked again
    engine.check_tokens(full.prompt_used)
    stem = new_stem(engine.outputs)
    paths = {seed: stem.with_name(f"{stem.name}.preview-{seed}.mp4") for seed in seeds}
    sidecar_path = stem.with_name(f"{stem.name}.json")

    # 2. Record the batch before any model runs
    pending = RewriteInfo.as_written() if use_raw else RewriteInfo(seed=rewrite_seed)
    start = engine.run_start(
        "variations", full, session, [*paths.values(), sidecar_path], parent_id, seeds=seeds,
        rewrite=pending.merged(full.rewrite_info), settings={**engine.settings(full), "preview": preview},
    )
    with engine.gallery.recording(start) as run_id:
        # 3. Rewrite once; every preview reads the same prompt
        full = engine.resolve_prompt(full, None if use_raw else rewrite_seed, progress, cancel)
        engine.check_tokens(full.prompt_used)

        # 4. Render each seed at preview settings
        renders = {}
        for i, (seed, request) in enumerate(zip(seeds, requests, strict=True)):
            request = replace(request, rewritten=full.rewritten, rewrite_info=full.rewrite_info)
            name = f"preview {i + 1}/{len(seeds)}"
            renders[seed] = engine.render_record(request, paths[seed], named_progress(progress, name), cancel)

        # 5. One sidecar for the batch; then the row is completed
        sidecar = write_sidecar(sidecar_path, _sidecar(run_id, full, engine.settings(full), preview, renders))
        files = {f"preview-{seed}": str(path) for seed, path in paths.items()} | {"sidecar": str(sidecar)}
        timings = {f"preview_{seed}_{k}": v for seed in seeds for k, v in renders[seed].timings.items()}
        engine.gallery.complete(run_id, files, prompt_used=full.prompt_used, rewritten=full.rewritten,
                                timings=timings, rewrite=full.rewrite_info)
    previews = tuple(Preview(seed, str(paths[seed])) for seed in seeds)
    return VariationsResult(previews, full.prompt_used, str(sidecar), run_id, preview, full.rewrite_info)


def expand_variation(
    engine: Runner,
    run_id: object,
    seed: object,
    *,
    session: str | None = None,
    scope: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> GenerationResult:
    """Re-render one preview of a variations run at its full settings; the sidecar links the preview.

    `session` is recorded with the new run; `scope` (when not None) is the session whose runs may be used."""
    # 1. Find the batch and the preview
    batch = engine.gallery.get(run_id, scope)
    if batch.kind != "variations":
        raise ValueError(f"Run {batch.id} is a {batch.kind} run, not a set of variations.")
    if batch.status != "completed":
        raise ValueError(f"Run {batch.id} is {batch.status}; pick from completed variations.")
    if batch.video_preset != engine.spec.name:
        raise ValueError(f"Run {batch.id} was made with {batch.video_preset}; this app runs {engine.spec.name}.")
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)
    if seed not in batch.seeds or isinstance(seed, bool):
        raise ValueError(f"Seed {seed!r} is not one of run {batch.id}'s variations ({', '.join(map(str, batch.seeds))}).")

    # 2. Render it at full settings, recorded as a 'variation' whose parent is the batch
    settings = {name: batch.settings[name] for name in SETTING_NAMES if name in batch.settings}
    request = build_request(engine.spec, batch.prompt, rewritten=batch.rewritten, seed=seed, rewrite_info=batch.rewrite, **settings)
    link = {
        "run_id": batch.id,
        "video": str(engine.gallery.file(batch.files[f"preview-{seed}"])),
        "sidecar": str(engine.gallery.file(batch.files["sidecar"])),
        "settings": batch.settings.get("preview"),
    }
    _, result = engine.run_one("variation", request, session=session, progress=progress, cancel=cancel,
                               parent_id=batch.id, preview=link)
    return result


def _sidecar(
    run_id: int, full, settings: dict, preview: dict, renders: dict[int, GenerateSidecar]
) -> VariationsSidecar:
    first = next(iter(renders.values()))
    return VariationsSidecar(
        run_id=run_id,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        raw_prompt=full.prompt,
        rewritten_prompt=full.rewritten,
        prompt_used=full.prompt_used,
        prompt_tokens=first.prompt_tokens,
        rewrite=full.rewrite_info,
        video_preset=first.video_preset,
        settings=settings,
        preview_settings=preview,
        previews=tuple(VariationPreview(seed, r.video, r.timings) for seed, r in renders.items()),
        device=first.device,
        dtype=first.dtype,
        memory=first.memory,
    )
