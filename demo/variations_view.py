"""Variations view: N seeds at preview settings in a gallery; picking one renders it at full settings."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from demo.inputs import refused, render_settings, reporter, whole
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


def variations_handlers(engine: Engine, sessions: Sessions):
    """(variations, pick): the /variations and /variation endpoints."""
    spec = engine.spec
    sizes = spec.sizes

    def variations(
        prompt: str,
        rewritten: str = "",
        use_raw: bool = False,
        count: float = DEFAULT_COUNT,
        seed: float = -1,
        height: float = sizes["16:9"][0],
        width: float = sizes["16:9"][1],
        num_frames: float = spec.num_frames,
        num_inference_steps: float = spec.num_inference_steps,
        guidance_scale: float = spec.guidance_scale,
        negative_prompt: str = spec.negative_prompt,
        rewrite_seed: float = 0,
        request: gr.Request = None,
        progress=gr.Progress(track_tqdm=True),
    ):
        """Render `count` seeds (seed, seed+1, ... or random with -1) at preview settings.
        Returns the previews (captioned with their seeds), the seeds and the run id to pick from."""
        settings = render_settings(seed, height, width, num_frames, num_inference_steps, guidance_scale, negative_prompt)
        cancel = sessions.current(request)
        if cancel.is_set():  # stopped while it waited for the GPU, or during its rewrite
            return stopped("Variations", 3)
        try:
            result = engine.variations(
                prompt, count=whole(count, "number of variations"), rewritten=rewritten or None, use_raw=bool(use_raw),
                rewrite_seed=whole(rewrite_seed, "rewrite seed"), progress=reporter(progress), cancel=cancel,
                session=session_id(request), **settings,
            )
        except (ValueError, ModelUnavailableError) as err:
            raise refused(str(err)) from None
        except Cancelled:
            return stopped("Variations", 3)
        previews = [(p.video_path, f"seed {p.seed}") for p in result.previews]
        return previews, [p.seed for p in result.previews], result.run_id

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

    return variations, pick
