"""The Create tab's layout: the prompt and its buttons, the settings, the rewrite and the video, the reference
image, compare and variations; and the render form, every render input in API order."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.components import Component

from demo.compare_view import CompareView, compare_layout
from demo.image_panel import ImageHandlers
from demo.inputs import Form
from demo.variations_view import VariationsView, variations_layout
from pipeline.engine import Engine
from pipeline.presets import ASPECTS, VideoSpec
from pipeline.request import FPS_RANGE, GUIDANCE_RANGE, MAX_DESCRIPTION_CHARS, MAX_PROMPT_CHARS, MAX_SEED, STEPS_RANGE
from prompts.cleaning import word_count, words_label

EXAMPLES = [
    "a unicorn eating spaghetti",
    "a paper boat drifting down a rainy street gutter, camera follows it",
    "two astronauts playing chess on the moon, zoom in",
    "a neon sign that says \"open late\" flickering in the rain",
    "an origami crane unfolding into a real bird, slow motion",
]


@dataclass(frozen=True)
class PromptPanel:
    prompt: gr.Textbox
    use_raw: gr.Checkbox
    rewrite_btn: gr.Button
    generate_btn: gr.Button
    compare_btn: gr.Button
    variations_btn: gr.Button
    stop_btn: gr.Button


@dataclass(frozen=True)
class SettingsPanel:
    aspect: gr.Radio
    duration: gr.Slider
    seed: gr.Number
    randomize: gr.Button
    steps: gr.Slider
    guidance: gr.Slider
    negative: gr.Textbox
    height: gr.Number
    width: gr.Number
    frames: gr.Number
    rewrite_seed: gr.Number
    added: tuple[tuple[str, Component], ...]  # settings added since the API's first version: (name, input)


@dataclass(frozen=True)
class ResultPanel:
    rewritten: gr.Textbox
    counts: gr.Markdown
    rewrite_note: gr.Markdown
    prompt_used: gr.Textbox
    video: gr.Video
    seed_used: gr.Number
    sidecar: gr.File

    @property
    def outputs(self) -> list:
        """What /generate and /variation return."""
        return [self.video, self.prompt_used, self.seed_used, self.sidecar]


@dataclass(frozen=True)
class ImageInputs:
    image: gr.File
    fit: gr.Radio
    description: gr.Textbox
    view: gr.Image
    note: gr.Markdown


@dataclass(frozen=True)
class CreateTab:
    prompt: PromptPanel
    settings: SettingsPanel
    result: ResultPanel
    image: ImageInputs
    compare: CompareView
    variations: VariationsView

    def form(self) -> Form:
        """Every render input in API order. API clients may pass them by position, so settings added since the
        first version come last."""
        p, s, r, i = self.prompt, self.settings, self.result, self.image
        return Form((
            ("prompt", p.prompt), ("rewritten", r.rewritten), ("use_raw", p.use_raw), ("image", i.image),
            ("count", self.variations.count), ("seed", s.seed), ("height", s.height), ("width", s.width),
            ("num_frames", s.frames), ("num_inference_steps", s.steps), ("guidance_scale", s.guidance),
            ("negative_prompt", s.negative), ("rewrite_seed", s.rewrite_seed), ("image_fit", i.fit),
            ("image_description", i.description), *s.added,
        ))


def create_tab(engine: Engine, images: ImageHandlers) -> CreateTab:
    """Prompt and settings; the rewrite, the video and the reference image; then compare and variations."""
    with gr.Row():
        with gr.Column(scale=3):
            prompt = prompt_panel(engine.spec)
        with gr.Column(scale=2):
            settings = settings_panel(engine.spec)
    with gr.Row():
        result = result_panel(engine)
        with gr.Column():
            image = image_inputs(engine, images)
    with gr.Accordion("Compare: your prompt as written vs rewritten, same seed and settings", open=True):
        compare = compare_layout()
    with gr.Accordion("Variations: preview several seeds before the full render", open=True):
        variations = variations_layout(engine.spec)
    return CreateTab(prompt, settings, result, image, compare, variations)


def prompt_panel(spec: VideoSpec) -> PromptPanel:
    prompt = gr.Textbox(label="Prompt", lines=3, max_length=MAX_PROMPT_CHARS, placeholder="a unicorn eating spaghetti",
                        elem_id="prompt")
    use_raw = gr.Checkbox(label="Use my prompt as written (skip the rewrite)", value=False)
    with gr.Row():
        buttons = (gr.Button("Rewrite", elem_id="rewrite-btn"),
                   gr.Button("Generate", variant="primary", elem_id="generate-btn"),
                   gr.Button("Compare", elem_id="compare-btn"),
                   gr.Button("Variations", elem_id="variations-btn"),
                   gr.Button("Stop", variant="stop", elem_id="stop-btn"))
    gr.Examples(list(spec.examples) or EXAMPLES, inputs=[prompt], label="Examples")
    return PromptPanel(prompt, use_raw, *buttons)


def settings_panel(spec: VideoSpec) -> SettingsPanel:
    """Aspect, duration and seed; size, frames, steps, guidance and the rest under "Advanced settings"."""
    sizes = spec.sizes
    one_size = len(set(sizes.values())) == 1
    aspect = gr.Radio(list(ASPECTS), value="16:9", label="Aspect", interactive=not one_size, elem_id="aspect",
                      info=f"{spec.name} has one size for every aspect: {sizes['16:9'][1]}x"
                      f"{sizes['16:9'][0]}" if one_size else None)
    duration = gr.Slider(
        minimum=spec.seconds_for_frames(spec.frame_step + 1), maximum=spec.seconds_for_frames(spec.max_frames),
        value=spec.seconds_for_frames(spec.num_frames), step=0.25, label="Duration (seconds)",
    )
    with gr.Row():
        seed = gr.Number(value=-1, label="Seed (-1: random)", minimum=-1, maximum=MAX_SEED)
        randomize = gr.Button("Randomize seed", size="sm")
    with gr.Accordion("Advanced settings", open=False):
        steps = gr.Slider(*STEPS_RANGE, value=spec.num_inference_steps, step=1, label="Steps")
        guidance = gr.Slider(*GUIDANCE_RANGE, value=spec.guidance_scale, step=0.5, label="Guidance scale")
        negative = gr.Textbox(value=spec.negative_prompt, lines=2, label="Negative prompt")
        with gr.Row():
            height = gr.Number(value=sizes["16:9"][0], step=spec.size_multiple,
                               label=f"Height (multiple of {spec.size_multiple})")
            width = gr.Number(value=sizes["16:9"][1], step=spec.size_multiple,
                              label=f"Width (multiple of {spec.size_multiple})")
            frames = gr.Number(value=spec.num_frames, step=spec.frame_step,
                               label=f"Frames ({spec.frame_step}k+1, max {spec.max_frames})")
        rewrite_seed = gr.Number(value=0, label="Rewrite seed", minimum=0, maximum=MAX_SEED)
        # Settings added since the API's first version, as (RenderSettings field, input): the form puts them last
        added: tuple[tuple[str, Component], ...] = (
            ("fps", gr.Slider(*FPS_RANGE, value=spec.fps, step=1, label="Frames per second",
                              info=f"{spec.name}'s own: {spec.fps}; Duration counts frames at that rate")),
        )
    return SettingsPanel(aspect, duration, seed, randomize, steps, guidance, negative, height, width, frames,
                         rewrite_seed, added)


def result_panel(engine: Engine) -> ResultPanel:
    """Two columns: the editable rewrite with its counts and note; the video, its seed and sidecar."""
    with gr.Column():
        rewritten = gr.Textbox(value="", label="Rewritten prompt (editable)", lines=8, max_length=MAX_PROMPT_CHARS,
                               elem_id="rewritten")
        counts = gr.Markdown(counts_handler(engine)(""), elem_id="counts")
        rewrite_note = gr.Markdown("", elem_id="rewrite-note")
        prompt_used = gr.Textbox(label="Prompt used for the video", interactive=False, lines=3)
    with gr.Column():
        video = gr.Video(label="Video", elem_id="video", autoplay=True, loop=True)
        # hidden until a render sets it: an empty number box would read 0
        seed_used = gr.Number(label="Seed used", precision=0, interactive=False, visible=False, elem_id="seed-used")
        sidecar = gr.File(label="Sidecar (JSON)", interactive=False, elem_id="sidecar")
    return ResultPanel(rewritten, counts, rewrite_note, prompt_used, video, seed_used, sidecar)


def image_inputs(engine: Engine, images: ImageHandlers) -> ImageInputs:
    """The reference image, how it is fitted, its description, and the image as the video model gets it."""
    spec, takes_image = engine.spec, engine.image_spec is not None
    image = gr.File(label="Reference image (optional)" if takes_image else
                    f"Reference image: {spec.name} has no image-to-video model",
                    file_types=["image"], type="filepath", elem_id="image", interactive=takes_image)
    fit = gr.Radio(["crop", "pad"], value="crop", label="Fit to the video",
                   info="crop: fill the frame; pad: keep the whole image, grey bars", visible=takes_image)
    description = gr.Textbox(
        value="", label="Describe your image (optional)", lines=2, max_length=MAX_DESCRIPTION_CHARS,
        placeholder="a red fox sitting in fresh snow at the edge of a pine forest",
        visible=takes_image and not engine.rewriter_sees_images, elem_id="image-description")
    view = gr.Image(label="Reference image, as the video model gets it", interactive=False, height=240,
                    elem_id="image-view", visible=takes_image)
    note = gr.Markdown(images.note(None, ""), elem_id="image-note", visible=takes_image)
    return ImageInputs(image, fit, description, view, note)


def counts_handler(engine: Engine):
    """Words and tokens of a prompt, with the preset's word range and token limit."""
    spec = engine.spec

    def counts(text: str) -> str:
        text = text or ""
        if not text.strip():
            return f"0 words · 0 / {spec.token_limit} tokens"
        count = engine.counter.count(text)
        low, high = spec.word_range
        warn = " · **over the limit: the model would cut the rest**" if count.over else ""
        hint = "" if low <= word_count(text) <= high else f" (aim {low}-{high})"
        return f"{words_label(text)}{hint} · {count.label()}{warn}"

    return counts
