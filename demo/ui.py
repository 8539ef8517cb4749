"""The Gradio UI: prompt -> editable streamed rewrite -> video, compare, variations; and the run gallery."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio.events import Dependency

from demo.actions import Action, Call, action_body, settings_of
from demo.compare_view import COMPARE, compare_details
from demo.config import GPU_MAX_SECONDS
from demo.create_tab import CreateTab, counts_handler, create_tab
from demo.gallery_tab import gallery_tab
from demo.image_panel import ImageHandlers, image_handlers
from demo.inputs import RenderJob, refused, whole
from demo.sessions import GPU, Sessions, stopped
from demo.variations_view import VARIATIONS, pick_handler, selected_seed
from demo.zerogpu import GpuTime, on_zerogpu
from pipeline.engine import Engine
from pipeline.gallery import private_runs
from pipeline.request import random_seed
from prompts.rewriter import Cancelled, RewriteResult

FILL_INPUTS = ("prompt", "rewritten", "use_raw", "rewrite_seed", "image", "image_description")  # what a rewrite reads


def build_demo(engine: Engine, private: bool | None = None, gpu_max_seconds: int = GPU_MAX_SECONDS) -> gr.Blocks:
    """The app's Blocks. `private`: each browser session sees only its own runs (None: RR_PRIVATE_RUNS,
    on by default on a Hugging Face Space). On ZeroGPU every GPU handler asks for at most `gpu_max_seconds`."""
    # On ZeroGPU the GPU handlers run in a forked worker: Stop reaches them through a file
    stop_dir = Path(tempfile.mkdtemp(prefix="rr-stop-")) if on_zerogpu() else None
    sessions = Sessions(private_runs(None) if private is None else private, stop_dir)
    gpu_time = GpuTime(engine.spec, engine.gallery, gpu_max_seconds)
    images = image_handlers(engine)
    rewrite = gpu_time.wrap("rewrite", rewrite_handler(engine, sessions, images))
    with gr.Blocks(title="Rewrite & Render") as demo:
        status = header(engine)
        with gr.Tabs():
            with gr.Tab("Create", id="create"):
                tab = create_tab(engine, images)
            gallery_tab(engine, sessions, gpu_time)

        # Each click begins its job at once (sessions.start_on), so Stop ends it even while it waits in the queue
        p, r, i, cv, vv = tab.prompt, tab.result, tab.image, tab.compare, tab.variations
        sessions.start_on(p.rewrite_btn.click).then(
            rewrite, [p.prompt, tab.settings.rewrite_seed, i.image, i.description], [r.rewritten, r.rewrite_note],
            api_name="rewrite", concurrency_id=GPU,
        )
        wired = Wiring(engine, sessions, gpu_time, fill_handler(engine, rewrite), tab)
        generated = wired.action(GENERATE, p.generate_btn, r.outputs)
        generated.success(images.after_render, r.sidecar, [status, i.view], api_visibility="private", queue=False)
        generated.success(_shown, r.seed_used, r.seed_used, api_visibility="private", queue=False)
        compared = wired.action(COMPARE, p.compare_btn, cv.api_outputs)
        compared.success(images.after_render, cv.sidecar, [status, i.view], api_visibility="private", queue=False)
        compared.success(compare_details(engine), [cv.raw_prompt, cv.rewritten_prompt, cv.sidecar], cv.detail_outputs,
                         api_visibility="private", queue=False)
        wired.action(VARIATIONS, p.variations_btn, vv.api_outputs)
        pick = gpu_time.wrap("variation", pick_handler(engine, sessions))
        picked = vv.gallery.select(selected_seed, vv.seeds, vv.pick_seed, api_visibility="private", queue=False)
        sessions.start_on(picked.success).then(
            pick, [vv.run_id, vv.pick_seed], r.outputs, api_visibility="private", concurrency_id=GPU,
        ).success(_shown, r.seed_used, r.seed_used, api_visibility="private", queue=False)
        sessions.start_on(vv.pick_btn.click).then(
            pick, [vv.run_id, vv.pick_seed], r.outputs, api_name="variation", concurrency_id=GPU,
        ).success(_shown, r.seed_used, r.seed_used, api_visibility="private", queue=False)
        p.stop_btn.click(stop_handler(sessions), None, None, api_name="stop", queue=False)
        wire_helpers(engine, images, tab, status)
    return demo


# -- layout and events ----------------------------------------------------------------------------
def header(engine: Engine) -> gr.Markdown:
    """The title, the status line (returned), and notes on the video model."""
    spec = engine.spec
    gr.Markdown("# Rewrite & Render\nType a short idea; an LLM rewrites it into a detailed scene "
                "description (edit it freely), and the video model renders it.")
    status = gr.Markdown(f"**Status:** {engine.status()}", elem_id="status")
    if spec.is_test_model:
        gr.Markdown(f"⚠️ `{spec.name}` is an offline test model: its videos are noise. "
                    "Start with `--video wan2.1-t2v-1.3b` on a CUDA GPU for real videos.")
    if spec.about:
        gr.Markdown(spec.about, elem_id="model-about")
    return status


@dataclass(frozen=True)
class Wiring:
    """What wiring a render action needs: the engine and sessions, GPU time, the rewrite filler, the tab."""

    engine: Engine
    sessions: Sessions
    gpu_time: GpuTime
    fill: Callable  # fill_handler's body
    tab: CreateTab

    def action(self, action: Action, button: gr.Button, outputs: list) -> Dependency:
        """`button` fills an empty rewrite box first (streamed, so the user sees it; only then does it ask for a
        GPU on ZeroGPU), then runs `action` (the endpoint /NAME) on the form's inputs it takes."""
        form = self.tab.form().without(*action.skips)
        fill = form.only(*FILL_INPUTS)
        result = self.tab.result
        filled = self.sessions.start_on(button.click).then(
            fill.handler(f"fill_rewrite_for_{action.name}", self.fill, "Fill an empty rewrite box."), fill.components,
            [result.rewritten, result.rewrite_note], api_visibility="private", concurrency_id=GPU,
        )
        handler = form.handler(action.name, action_body(self.engine, self.sessions, action), action.run.__doc__)
        return filled.success(self.gpu_time.wrap(action.name, handler), form.components, outputs,
                              api_name=action.name, concurrency_id=GPU)


def wire_helpers(engine: Engine, images: ImageHandlers, tab: CreateTab, status: gr.Markdown) -> None:
    """The private helpers: word counts, notes, the image preview, aspect and duration to size and frames, the
    seed button."""
    p, s, r, i = tab.prompt, tab.settings, tab.result, tab.image
    r.rewritten.change(counts_handler(engine), r.rewritten, r.counts, api_visibility="private", show_progress="hidden",
                       queue=False, trigger_mode="always_last")
    for edited in (p.prompt.input, r.rewritten.input):  # the note was about the rewrite of an earlier text
        edited(lambda: "", None, r.rewrite_note, api_visibility="private", queue=False, show_progress="hidden")
    preview_inputs = [i.image, i.fit, s.height, s.width, i.description]
    for trigger in (i.image.change, i.fit.change, s.height.change, s.width.change):
        # queued (not queue=False): an unreadable file must reach the user as an error toast
        trigger(images.preview, preview_inputs, [i.view, status], api_visibility="private",
                trigger_mode="always_last", show_progress="hidden")
    i.description.change(images.note, [i.image, i.description], i.note, api_visibility="private", queue=False,
                         show_progress="hidden")
    i.image.change(images.note, [i.image, i.description], i.note, api_visibility="private", queue=False)
    s.aspect.change(lambda aspect: engine.spec.sizes[aspect], s.aspect, [s.height, s.width], api_visibility="private",
                    queue=False)
    s.duration.change(engine.spec.frames_for_seconds, s.duration, s.frames, api_visibility="private", queue=False)
    s.randomize.click(lambda: gr.Number(value=random_seed()), None, s.seed, api_visibility="private", queue=False)


# -- handlers --------------------------------------------------------------------------------------
def generate(engine: Engine, job: RenderJob, call: Call) -> tuple:
    """Render a video. Uses `rewritten` if given, else rewrites `prompt` first (unless use_raw). With a
    reference `image` the video starts from it (fitted by `image_fit`: crop or pad), on the image-capable
    preset (a text-only preset's declared partner)."""
    result = engine.generate(
        job.prompt, rewritten=job.rewritten or None, use_raw=job.use_raw, rewrite_seed=job.rewrite_seed,
        image_path=job.image or None, image_fit=job.image_fit, image_description=job.image_description or None,
        progress=call.progress, cancel=call.cancel, session=call.session, **settings_of(job),
    )
    memory_notices(result.sidecar_path)
    return result.video_path, result.prompt_used, result.seed, result.sidecar_path


GENERATE = Action("generate", "Generation", 4, generate, skips=("count",))


def rewrite_handler(engine: Engine, sessions: Sessions, images: ImageHandlers):
    """The /rewrite endpoint: the rewrite streamed into the box, with a note on why the prompt was kept."""

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

    return rewrite


def fill_handler(engine: Engine, rewrite):
    """The body that fills an empty rewrite box before a render: `rewrite`, streamed, unless the job renders the
    prompt as written, already has a rewrite, or no rewriter is loaded."""

    def fill(job: RenderJob, request: gr.Request | None, progress: gr.Progress):
        if job.use_raw or (job.rewritten or "").strip() or engine.rewriter is None:
            yield gr.skip(), gr.skip()
            return
        yield from rewrite(job.prompt, job.rewrite_seed, job.image, job.image_description, request, progress)

    return fill


def stop_handler(sessions: Sessions):
    def stop(request: gr.Request = None) -> None:
        """Stop this session's running jobs: each returns at its next step with no new result (gradio_client's
        job.cancel() removes a job still waiting in the queue; it cannot stop one that has started)."""
        # Only this flag, no Gradio `cancels=`: the job returns at its next step and its event completes as usual.
        # Gradio's /cancel also sends the page a "completed" message without data; the page fails on it and marks
        # the outputs "Error", which stays when that message arrives after the page has reset them (gradio 6.31).
        sessions.cancel(request)

    return stop


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
