"""Progress reporting, and the engine as compare and variations use it: a Protocol, so that they need not import
pipeline.engine (which imports them)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pipeline.gallery import Gallery, RunStart
    from pipeline.presets import VideoSpec
    from pipeline.records import GenerateSidecar
    from pipeline.request import GenerationRequest, GenerationResult
    from prompts.rewriter import Rewriter
    from prompts.tokens import TokenCount

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total); stages: rewrite, denoise, encode
# Compare and variations name the run too: "raw:denoise", "rewritten:encode", "preview 2/4:denoise".


def named_progress(progress: ProgressFn | None, name: str) -> ProgressFn | None:
    """Progress for one of several runs: stages become "NAME:denoise", "NAME:encode"."""
    if progress is None:
        return None
    return lambda stage, done, total: progress(f"{name}:{stage}", done, total)


class Runner(Protocol):
    """What compare and variations use of pipeline.engine.Engine: its models, outputs folder and gallery, and the
    steps of a recorded run."""

    rewriter: Rewriter | None
    outputs: Path
    gallery: Gallery
    run_start: Callable[..., RunStart]  # Engine.run_start: the gallery row of a run about to start
    run_one: Callable[..., tuple[int, GenerationResult]]  # Engine.run_one: one recorded video run

    @property
    def spec(self) -> VideoSpec: ...

    def build(self, prompt: str, *, image_path: str | None = None, **settings) -> GenerationRequest: ...

    def check_tokens(self, prompt: str, spec: VideoSpec | None = None) -> TokenCount: ...

    def settings(self, request: GenerationRequest) -> dict: ...

    def resolve_prompt(
        self, request: GenerationRequest, rewrite_seed: int | None, progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationRequest: ...

    def render_record(
        self, request: GenerationRequest, path: Path, progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerateSidecar: ...

    def recorded_id(self, run_id: int) -> int | None: ...
