"""Compare: the prompt as written and its rewrite, rendered with the same seed and settings."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.export import new_stem
from pipeline.image_to_video import save_reference
from pipeline.presets import get_video_spec
from pipeline.records import CompareSide, CompareSidecar, GenerateSidecar, RewriteInfo, write_sidecar
from pipeline.request import GenerationResult
from pipeline.runner import ProgressFn, Runner, named_progress
from prompts.cleaning import check_prompt

SIDES = ("raw", "rewritten")


@dataclass(frozen=True)
class CompareResult:
    raw: GenerationResult  # the prompt as written; sidecar_path is the shared sidecar
    rewritten: GenerationResult
    seed: int  # shared by both videos
    sidecar_path: str  # one sidecar naming both videos
    run_id: int
    rewrite: RewriteInfo  # where the rewritten side's prompt came from


def compare_paths(stem: Path) -> dict[str, Path]:
    """STEM.raw.mp4, STEM.rewritten.mp4, STEM.json and STEM.ref.png (a stem may contain dots)."""
    stem = Path(stem)
    names = {"raw": "raw.mp4", "rewritten": "rewritten.mp4", "sidecar": "json", "image": "ref.png"}
    return {role: stem.with_name(f"{stem.name}.{suffix}") for role, suffix in names.items()}


def compare(
    engine: Runner,
    prompt: str,
    *,
    rewritten: str | None = None,
    rewrite_seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    out: Path | None = None,
    session: str | None = None,
    parent_id: int | None = None,
    **settings,
) -> CompareResult:
    """Render `prompt` as written and rewritten (rewriting first when `rewritten` is empty) with one seed.

    `out` is a path stem: STEM.raw.mp4, STEM.rewritten.mp4 and STEM.json must not exist. With a reference
    image both sides start from the same processed image, on the image-capable preset."""
    # 1. Validate everything that can be checked before any model runs; the seed is drawn once here
    raw = engine.build(prompt, **settings)
    target = get_video_spec(raw.video)
    engine.check_tokens(raw.prompt, target)
    given = check_prompt(rewritten, "rewritten prompt") if rewritten is not None and rewritten.strip() else None
    if given is None and engine.rewriter is None:
        raise ValueError("Compare needs a rewritten prompt: no rewriter is loaded, so type the rewritten prompt.")
    if given is not None:
        _check_differs(raw.prompt, given, None)
        engine.check_tokens(given, target)
    stem = Path(out) if out is not None else new_stem(engine.outputs)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = compare_paths(stem)
    planned = list(paths.values())

    # 2. Record the run before any model runs
    pending = RewriteInfo(seed=rewrite_seed) if given is None else RewriteInfo()
    start = engine.run_start("compare", replace(raw, rewritten=given), session, planned, parent_id, rewrite=pending)
    with engine.gallery.recording(start) as run_id:
        # 3. Rewrite when no rewritten text was given
        second = engine.resolve_prompt(replace(raw, rewritten=given), rewrite_seed, progress, cancel)
        _check_differs(raw.prompt, second.prompt_used, second.rewrite_info.fallback)
        engine.check_tokens(second.prompt_used, target)  # before the first render, not after it
        first = replace(raw, rewrite_info=RewriteInfo.as_written())

        # 4. Render both with the same seed and settings on the models already loaded
        renders = {}
        for side, request in zip(SIDES, (first, second), strict=True):
            renders[side] = engine.render_record(request, paths[side], named_progress(progress, side), cancel)

        # 5. One sidecar naming both videos and the shared seed; then the row is completed
        image = save_reference(raw, paths["image"]) if raw.image_path else None
        sidecar = write_sidecar(paths["sidecar"], _sidecar(engine.recorded_id(run_id), renders, image))
        files = {side: str(paths[side]) for side in SIDES} | {"sidecar": str(sidecar)}
        if image:
            files["reference_image"] = str(paths["image"])
        timings = {f"{side}_{k}": v for side in SIDES for k, v in renders[side].timings.items()}
        if second.rewrite_info.seconds is not None:
            timings["rewrite_s"] = second.rewrite_info.seconds
        engine.gallery.complete(run_id, files, prompt_used=second.prompt_used, rewritten=second.rewritten,
                                timings=timings, rewrite=second.rewrite_info)
    results = {
        side: GenerationResult(str(paths[side]), str(sidecar), raw.seed, request.prompt_used, renders[side].timings)
        for side, request in zip(SIDES, (first, second), strict=True)
    }
    return CompareResult(results["raw"], results["rewritten"], raw.seed, str(sidecar), run_id, second.rewrite_info)


def _check_differs(prompt: str, rewritten: str, fallback: str | None) -> None:
    if rewritten.strip() == prompt.strip():
        why = f" (the rewriter kept it: {fallback})" if fallback else ""
        raise ValueError(f"The rewritten prompt is the same as your prompt{why}; edit it to have something to compare.")


def _sidecar(run_id: int | None, renders: dict[str, GenerateSidecar], image: dict | None) -> CompareSidecar:
    """What both renders share once (settings, preset, device, the raw side's seed and memory); per side: video,
    prompt, tokens, timings."""
    raw, rewritten = renders["raw"], renders["rewritten"]
    return CompareSidecar(
        run_id=run_id,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        raw_prompt=raw.raw_prompt,
        seed=raw.seed,
        video_preset=raw.video_preset,
        switched_from=raw.switched_from,
        settings=raw.settings,
        device=raw.device,
        dtype=raw.dtype,
        memory=raw.memory,
        memory_report=raw.memory_report,
        rewritten_prompt=rewritten.prompt_used,
        rewrite=rewritten.rewrite,
        raw=CompareSide.of(raw),
        rewritten=CompareSide.of(rewritten),
        reference_image=image,
    )
