"""The Gradio UI: prompt -> editable streamed rewrite -> video, compare, variations; and the run gallery."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import gradio as gr

from demo.compare_view import compare_handlers, compare_layout
from demo.config import GPU_MAX_SECONDS
from demo.gallery_tab import gallery_tab
from demo.image_panel import image_handlers
from demo.inputs import refused, render_settings, reporter, whole
from demo.sessions import GPU, Sessions, session_id, stopped
from demo.variations_view import selected_seed, variations_handlers, variations_layout
from demo.zerogpu import GpuTime, on_zerogpu
from pipeline.engine import Engine
from pipeline.gallery import private_runs
from pipeline.presets import ASPECTS
from pipeline.request import GUIDANCE_RANGE, MAX_DESCRIPTION_CHARS, MAX_PROMPT_CHARS, MAX_SEED, STEPS_RANGE, random_seed
from prompts.cleaning import word_count, words_label
from prompts.rewriter import Cancelled, RewriteResult
from runtime.hub import ModelUnavailableError

EXAMPLES = [
    "a unicorn eating spaghetti",
    "a paper boat drifting down a rainy street gutter, camera follows it",
    "two astronauts playing chess on the moon, zoom in",
    "a neon sign that says \"open late\" flickering in the rain",
    "an origami crane unfolding into a real bird, slow motion",
]


def build_demo(engine: Engine, private: bool | None = None, gpu_max_seconds: int = GPU_MAX_SECONDS) -> gr.Blocks:
    """The app's Blocks. `private`: each browser session sees only its own runs (None: RR_PRIVATE_RUNS,
    on by default on a Hugging Face Space). On ZeroGPU every GPU handler asks for at most `gpu_max_seconds`."""
    spec = engine.spec
    # On ZeroGPU the GPU handlers run in a forked worker: Stop reaches them through a file
    stop_dir = Path(tempfile.mkdtemp(prefix="rr-stop-")) if on_zerogpu() else None
    sessions = Sessions(private_runs(None) if private is None else private, stop_dir)
    sizes = spec.sizes
    gpu_time = GpuTime(spec, engine.gallery, gpu_max_seconds)
    compare, compare_details = compare_handlers(engine, sessions)
    compare = gpu_time.wrap("compare", compare)
    variations, pick_variation = variations_handlers(engine, sessions)
    variations = gpu_time.wrap("variations", variations)
    pick_variation = gpu_time.wrap("variation", pick_variation)
    images = image_handlers(engine)

    # -- handlers ----------------------------------------------------------------------------------
    def rewrite(prompt: str, rewrite_seed: float = 0, image: str | None = None, image_description: str = "",
                request: gr.Request = None, progress=gr.Progress()):
        """Rewrite a short prompt into a detailed scene description for the video model. Returns the rewrite and
        a note: why your prompt was kept as written (a fallback) and any adjustments, empty when there are none.
        With a reference `image`, the rewrite describes motion and camera starting from it; a rewriter that
        cannot see images reads `image_description` instead (without one it writes only motion and camera)."""
        if engine.rewriter is None:
            raise refused("No rewriter is loaded (the app was started with --rewriter none).")
        cancel = sessions.current(request)
        if cancel.is_set():  # stopped while it waited for the GPU
            yield stopped("Rewrite", 2)
            return
        result = None
        try:
            images.check(image, image_description)
            stream = engine.rewrite_stream(prompt, whole(rewrite_seed, "rewrite seed"), cancel, image or None,
                                           image_description or None)
            for item in stream:
                if isinstance(item, RewriteResult):
                    result = item
                else:
                    progress((item.tokens, item.max_tokens), desc="Rewriting", unit="tokens")
                    yield item.text, ""
        except ValueError as err:
            raise refused(str(err)) from None
        except Cancelled:
            yield stopped("Rewrite", 2)  # the box keeps what was written so far
            return
        notes = [f"Kept your prompt: {result.fallback}"] if result.fallback else []
        notes += result.notes
        if image and not engine.rewriter_sees_images and not (image_description or "").strip():
            notes.append("The rewriter did not see the image: it wrote motion and camera only. Describe the image "
                         "for more.")
        for note in notes:
            (gr.Warning if note.startswith("Kept") else gr.Info)(note)
        yield result.rewritten, "\n\n".join(notes)

    rewrite = gpu_time.wrap("rewrite", rewrite)

    def generate(
        prompt: str,
        rewritten: str = "",
        use_raw: bool = False,
        image: str | None = None,
        seed: float = -1,
        height: float = sizes["16:9"][0],
        width: float = sizes["16:9"][1],
        num_frames: float = spec.num_frames,
        num_inference_steps: float = spec.num_inference_steps,
        guidance_scale: float = spec.guidance_scale,
        negative_prompt: str = spec.negative_prompt,
        rewrite_seed: float = 0,
        image_fit: str = "crop",
        image_description: str = "",
        request: gr.Request = None,
        progress=gr.Progress(track_tqdm=True),
    ):
        """Render a video. Uses `rewritten` if given, else rewrites `prompt` first (unless use_raw). With a
        reference `image` the video starts from it (fitted by `image_fit`: crop or pad), on the image-capable
        preset (a text-only preset's declared partner)."""
        settings = render_settings(seed, height, width, num_frames, num_inference_steps, guidance_scale, negative_prompt)
        cancel = sessions.current(request)
        if cancel.is_set():  # stopped while it waited for the GPU, or during its rewrite
            return stopped("Generation", 4)
        try:
            result = engine.generate(
                prompt,
                rewritten=rewritten,
                use_raw=bool(use_raw),
                rewrite_seed=whole(rewrite_seed, "rewrite seed"),
                image_path=image or None,
                image_fit=image_fit,
                image_description=image_description or None,
                progress=reporter(progress),
                cancel=cancel,
                session=session_id(request),
                **settings,
            )
        except (ValueError, ModelUnavailableError) as err:
            raise refused(str(err)) from None
        except Cancelled:
            return stopped("Generation", 4)
        memory_notices(result.sidecar_path)
        return result.video_path, result.prompt_used, result.seed, result.sidecar_path

    generate = gpu_time.wrap("generate", generate)

    def fill_rewrite(prompt: str, rewritten: str, use_raw: bool, rewrite_seed: float, image: str | None = None,
                     image_description: str = "", request: gr.Request = None, progress=gr.Progress()):
        # Generate with an empty box: stream the rewrite into it first, so the user sees it (only then does
        # it ask for a GPU on ZeroGPU).
        if use_raw or (rewritten or "").strip() or engine.rewriter is None:
            yield gr.skip(), gr.skip()
            return
        yield from rewrite(prompt, rewrite_seed, image, image_description, request, progress)

    def fill_rewrite_for_compare(prompt: str, rewritten: str, rewrite_seed: float, image: str | None = None,
                                 image_description: str = "", request: gr.Request = None, progress=gr.Progress()):
        yield from fill_rewrite(prompt, rewritten, False, rewrite_seed, image, image_description, request, progress)

    def counts(text: str) -> str:
        text = text or ""
        if not text.strip():
            return f"0 words · 0 / {spec.token_limit} tokens"
        count = engine.counter.count(text)
        low, high = spec.word_range
        warn = " · **over the limit: the model would cut the rest**" if count.over else ""
        hint = "" if low <= word_count(text) <= high else f" (aim {low}-{high})"
        return f"{words_label(text)}{hint} · {count.label()}{warn}"

    def on_aspect(aspect: str):
        h, w = sizes[aspect]
        return h, w

    def on_duration(seconds: float):
        return spec.frames_for_seconds(seconds)

    def stop(request: gr.Request = None) -> None:
        """Stop this session's running jobs: each returns at its next step with no new result (gradio_client's
        job.cancel() removes a job still waiting in the queue; it cannot stop one that has started)."""
        # Only this flag, no Gradio `cancels=`: the job returns at its next step and its event completes as usual.
        # Gradio's /cancel also sends the page a "completed" message without data; the page fails on it and marks
        # the outputs "Error", which stays when that message arrives after the page has reset them (gradio 6.31).
        sessions.cancel(request)

    # -- layout ------------------------------------------------------------------------------------
    with gr.Blocks(title="Rewrite & Render") as demo:
        gr.Markdown("# Rewrite & Render\nType a short idea; an LLM rewrites it into a detailed scene "
                    "description (edit it freely), and the video model renders it.")
        status = gr.Markdown(f"**Status:** {engine.status()}", elem_id="status")
        if spec.is_test_model:
            gr.Markdown(f"⚠️ `{spec.name}` is an offline test model: its videos are noise. "
                        "Start with `--video wan2.1-t2v-1.3b` on a CUDA GPU for real videos.")
        if spec.about:
            gr.Markdown(spec.about, elem_id="model-about")
        with gr.Tabs():
            with gr.Tab("Create", id="create"):
                with gr.Row():
                    with gr.Column(scale=3):
                        prompt = gr.Textbox(label="Prompt", lines=3, max_length=MAX_PROMPT_CHARS,
                                            placeholder="a unicorn eating spaghetti", elem_id="prompt")
                        use_raw = gr.Checkbox(label="Use my prompt as written (skip the rewrite)", value=False)
                        with gr.Row():
                            rewrite_btn = gr.Button("Rewrite", elem_id="rewrite-btn")
                            generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                            compare_btn = gr.Button("Compare", elem_id="compare-btn")
                            variations_btn = gr.Button("Variations", elem_id="variations-btn")
                            stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                        gr.Examples(list(spec.examples) or EXAMPLES, inputs=[prompt], label="Examples")
                    with gr.Column(scale=2):
                        one_size = len(set(sizes.values())) == 1
                        aspect = gr.Radio(list(ASPECTS), value="16:9", label="Aspect", interactive=not one_size, elem_id="aspect",
                                          info=f"{spec.name} has one size for every aspect: {sizes['16:9'][1]}x"
                                          f"{sizes['16:9'][0]}" if one_size else None)
                        duration = gr.Slider(
                            minimum=spec.seconds_for_frames(spec.frame_step + 1),
                            maximum=spec.seconds_for_frames(spec.max_frames),
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
                with gr.Row():
                    with gr.Column():
                        rewritten = gr.Textbox(value="", label="Rewritten prompt (editable)", lines=8, max_length=MAX_PROMPT_CHARS,
                                               elem_id="rewritten")
                        count_md = gr.Markdown(counts(""), elem_id="counts")
                        rewrite_note = gr.Markdown("", elem_id="rewrite-note")
                        prompt_used = gr.Textbox(label="Prompt used for the video", interactive=False, lines=3)
                    with gr.Column():
                        video = gr.Video(label="Video", elem_id="video", autoplay=True, loop=True)
                        # hidden until a render sets it: an empty number box would read 0
                        seed_used = gr.Number(label="Seed used", precision=0, interactive=False, visible=False,
                                              elem_id="seed-used")
                        sidecar = gr.File(label="Sidecar (JSON)", interactive=False, elem_id="sidecar")
                    with gr.Column():
                        takes_image = engine.image_spec is not None
                        image = gr.File(label="Reference image (optional)" if takes_image else
                                        f"Reference image: {spec.name} has no image-to-video model",
                                        file_types=["image"], type="filepath", elem_id="image", interactive=takes_image)
                        image_fit = gr.Radio(["crop", "pad"], value="crop", label="Fit to the video",
                                             info="crop: fill the frame; pad: keep the whole image, grey bars",
                                             visible=takes_image)
                        image_description = gr.Textbox(
                            value="", label="Describe your image (optional)", lines=2, max_length=MAX_DESCRIPTION_CHARS,
                            placeholder="a red fox sitting in fresh snow at the edge of a pine forest",
                            visible=takes_image and not engine.rewriter_sees_images, elem_id="image-description")
                        image_view = gr.Image(label="Reference image, as the video model gets it", interactive=False,
                                              height=240, elem_id="image-view", visible=takes_image)
                        image_md = gr.Markdown(images.note(None, ""), elem_id="image-note", visible=takes_image)
                with gr.Accordion("Compare: your prompt as written vs rewritten, same seed and settings", open=True):
                    cv = compare_layout()
                with gr.Accordion("Variations: preview several seeds before the full render", open=True):
                    vv = variations_layout(spec)
            gallery_tab(engine, sessions, gpu_time)

        # -- events ----------------------------------------------------------------------------------
        # Each click begins its job at once (sessions.start_on), so Stop ends it even while it waits in the queue
        sessions.start_on(rewrite_btn.click).then(
            rewrite, [prompt, rewrite_seed, image, image_description], [rewritten, rewrite_note], api_name="rewrite",
            concurrency_id=GPU,
        )
        gen_inputs = [prompt, rewritten, use_raw, image, seed, height, width, frames, steps, guidance, negative, rewrite_seed,
                      image_fit, image_description]
        fill_evt = sessions.start_on(generate_btn.click).then(
            fill_rewrite, [prompt, rewritten, use_raw, rewrite_seed, image, image_description], [rewritten, rewrite_note],
            api_visibility="private", concurrency_id=GPU,
        )
        gen_evt = fill_evt.success(
            generate, gen_inputs, [video, prompt_used, seed_used, sidecar], api_name="generate", concurrency_id=GPU
        )
        gen_evt.success(images.after_render, sidecar, [status, image_view], api_visibility="private", queue=False)
        gen_evt.success(_shown, seed_used, seed_used, api_visibility="private", queue=False)
        cmp_fill = sessions.start_on(compare_btn.click).then(
            fill_rewrite_for_compare, [prompt, rewritten, rewrite_seed, image, image_description],
            [rewritten, rewrite_note], api_visibility="private", concurrency_id=GPU,
        )
        cmp_inputs = [prompt, rewritten, image, seed, height, width, frames, steps, guidance, negative, rewrite_seed,
                      image_fit, image_description]
        cmp_evt = cmp_fill.success(compare, cmp_inputs, cv.api_outputs, api_name="compare", concurrency_id=GPU)
        cmp_evt.success(images.after_render, cv.sidecar, [status, image_view], api_visibility="private", queue=False)
        cmp_evt.success(compare_details, [cv.raw_prompt, cv.rewritten_prompt, cv.sidecar], cv.detail_outputs,
                        api_visibility="private", queue=False)
        var_fill = sessions.start_on(variations_btn.click).then(
            fill_rewrite, [prompt, rewritten, use_raw, rewrite_seed], [rewritten, rewrite_note], api_visibility="private",
            concurrency_id=GPU,
        )
        var_inputs = [prompt, rewritten, use_raw, vv.count, seed, height, width, frames, steps, guidance, negative,
                      rewrite_seed]
        var_fill.success(variations, var_inputs, vv.api_outputs, api_name="variations", concurrency_id=GPU)
        gen_outputs = [video, prompt_used, seed_used, sidecar]
        picked = vv.gallery.select(selected_seed, vv.seeds, vv.pick_seed, api_visibility="private", queue=False)
        sessions.start_on(picked.success).then(
            pick_variation, [vv.run_id, vv.pick_seed], gen_outputs, api_visibility="private", concurrency_id=GPU,
        ).success(_shown, seed_used, seed_used, api_visibility="private", queue=False)
        sessions.start_on(vv.pick_btn.click).then(
            pick_variation, [vv.run_id, vv.pick_seed], gen_outputs, api_name="variation", concurrency_id=GPU,
        ).success(_shown, seed_used, seed_used, api_visibility="private", queue=False)
        stop_btn.click(stop, None, None, api_name="stop", queue=False)
        rewritten.change(counts, rewritten, count_md, api_visibility="private", show_progress="hidden",
                         queue=False, trigger_mode="always_last")
        for edited in (prompt.input, rewritten.input):  # the note was about the rewrite of an earlier text
            edited(lambda: "", None, rewrite_note, api_visibility="private", queue=False, show_progress="hidden")
        preview_inputs = [image, image_fit, height, width, image_description]
        for trigger in (image.change, image_fit.change, height.change, width.change):
            # queued (not queue=False): an unreadable file must reach the user as an error toast
            trigger(images.preview, preview_inputs, [image_view, status], api_visibility="private",
                    trigger_mode="always_last", show_progress="hidden")
        image_description.change(images.note, [image, image_description], image_md, api_visibility="private",
                                 queue=False, show_progress="hidden")
        image.change(images.note, [image, image_description], image_md, api_visibility="private", queue=False)
        aspect.change(on_aspect, aspect, [height, width], api_visibility="private", queue=False)
        duration.change(on_duration, duration, frames, api_visibility="private", queue=False)
        randomize.click(lambda: gr.Number(value=random_seed()), None, seed, api_visibility="private", queue=False)
    return demo


def _shown(seed: float | None):
    """Seed used appears once a render has set it (a stopped first render leaves it hidden)."""
    return gr.update(visible=seed is not None)


def memory_notices(sidecar_path: str) -> None:
    """After a CUDA run: the measured peak beside the plan's estimate, and any out-of-memory step-down."""
    record = json.loads(Path(sidecar_path).read_text(encoding="utf-8"))
    if record.get("memory_note"):
        gr.Warning(record["memory_note"])
    peak = record.get("memory_measured_peak_vram_gb")
    if peak is not None:
        gr.Info(f"Peak GPU memory {peak} GB (plan estimate {record.get('memory_estimated_peak_vram_gb')} GB)")
