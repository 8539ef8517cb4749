"""Variations view: N seeds at preview settings in a gallery; picking one renders it at full settings."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from demo.actions import Action, Call, settings_of
from demo.inputs import RenderJob, refused, reporter, whole
from demo.sessions import Sessions, session_id, stopped
from pipeline.engine import Engine
from pipeline.presets import VideoSpec
from pipeline.variations import DEFAULT_COUNT, MAX_COUNT
from prompts.rewriter import Cancelled
from runtime.hub import ModelUnavailableError


@dataclass(frozen=True)
class VariationsView:
    count: gr.Slider
    gallery: gr.Gallery
    seeds: gr.JSON
    run_id: gr.Number
    pick_seed: gr.Number
    pick_btn: gr.Button

    @property
    def api_outputs(self) -> list:
        return [self.gallery, self.seeds, self.run_id]


def variations_layout(spec: VideoSpec) -> VariationsView:
    sizes = ", ".join(f"{w}x{h}" for h, w in spec.preview_sizes.values())
    gr.Markdown(f"Previews use `{spec.name}`'s preview settings ({sizes}, up to {spec.preview_num_frames} frames, "
                f"{spec.preview_num_inference_steps} steps). **Click one** to render its seed at full settings "
                "(the video appears above, its sidecar links the preview).")
    count = gr.Slider(1, MAX_COUNT, value=DEFAULT_COUNT, step=1, label="Number of variations")
    gallery = gr.Gallery(label="Variations", columns=4, height="auto", elem_id="variations", allow_preview=False)
    with gr.Row():
        run_id = gr.Number(label="Variations run", precision=0)
        pick_seed = gr.Number(label="Seed to render at full settings", precision=0)
        pick_btn = gr.Button("Render at full settings")
        seeds = gr.JSON(label="Seeds", visible=False)
    return VariationsView(count, gallery, seeds, run_id, pick_seed, pick_btn)


def selected_seed(seeds: list | None, evt: gr.SelectData) -> int:
    """The seed of the clicked preview."""
    if not seeds or not isinstance(evt.index, int) or not 0 <= evt.index < len(seeds):
        raise refused("Pick one of the variations first.")
    return seeds[evt.index]


def variations(engine: Engine, job: RenderJob, call: Call) -> tuple:
    """Render `count` seeds (seed, seed+1, ... or random with -1) at preview settings.
    Returns the previews (captioned with their seeds), the seeds and the run id to pick from."""
    result = engine.variations(
        job.prompt, count=job.count, rewritten=job.rewritten or None, use_raw=job.use_raw,
        rewrite_seed=job.rewrite_seed, progress=call.progress, cancel=call.cancel, session=call.session,
        **settings_of(job),
    )
    previews = [(p.video_path, f"seed {p.seed}") for p in result.previews]
    return previews, [p.seed for p in result.previews], result.run_id


VARIATIONS = Action("variations", "Variations", 3, variations, skips=("image", "image_fit", "image_description"))


def pick_handler(engine: Engine, sessions: Sessions):
    """The /variation endpoint: one preview of a variations run at full settings."""

    def pick(run_id: float, seed: float, request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        """Render one seed of a variations run at full settings; its sidecar links the preview.
        Returns the video, the prompt used, the seed and the sidecar, like /generate."""
        cancel = sessions.current(request)
        if cancel.is_set():  # stopped while it waited for the GPU
            return stopped("Generation", 4)
        try:
            result = engine.expand_variation(
                whole(run_id, "run id"), whole(seed, "seed"), session=session_id(request),
                scope=sessions.scope(request),
                progress=reporter(progress), cancel=cancel,
            )
        except (ValueError, ModelUnavailableError) as err:
            raise refused(str(err)) from None
        except Cancelled:
            return stopped("Generation", 4)
        return result.video_path, result.prompt_used, result.seed, result.sidecar_path

    return pick
