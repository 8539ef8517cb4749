"""Compare view: the prompt as written and its rewrite, rendered with one seed, side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from demo.actions import Action, Call, settings_of
from demo.inputs import RenderJob
from pipeline.engine import Engine
from prompts.cleaning import words_label
from prompts.preservation import content_words, stems

ADDED = "added"  # the HighlightedText label of words the rewrite added


@dataclass(frozen=True)
class CompareView:
    """The compare outputs: /compare returns the first six, the rest are filled from them."""

    raw_video: gr.Video
    rewritten_video: gr.Video
    raw_prompt: gr.Textbox
    rewritten_prompt: gr.Textbox
    seed: gr.Number
    sidecar: gr.File
    raw_text: gr.HighlightedText
    rewritten_text: gr.HighlightedText
    raw_info: gr.Markdown
    rewritten_info: gr.Markdown

    @property
    def api_outputs(self) -> list:
        return [self.raw_video, self.rewritten_video, self.raw_prompt, self.rewritten_prompt, self.seed, self.sidecar]

    @property
    def detail_outputs(self) -> list:
        return [self.raw_text, self.rewritten_text, self.raw_info, self.rewritten_info]


def compare_layout() -> CompareView:
    """Two columns, each a prompt over its video, then the shared seed and sidecar."""
    with gr.Row(equal_height=False):
        with gr.Column():
            raw_text = gr.HighlightedText(label="Prompt as written", combine_adjacent=True, elem_id="compare-raw-text")
            raw_video = gr.Video(label="Prompt as written", elem_id="compare-raw", autoplay=True, loop=True)
            raw_info = gr.Markdown(elem_id="compare-raw-info")
        with gr.Column():
            rewritten_text = gr.HighlightedText(
                label="Rewritten prompt (words it added are highlighted)", combine_adjacent=True,
                color_map={ADDED: "green"}, elem_id="compare-rewritten-text",
            )
            rewritten_video = gr.Video(label="Rewritten prompt", elem_id="compare-rewritten", autoplay=True, loop=True)
            rewritten_info = gr.Markdown(elem_id="compare-rewritten-info")
    with gr.Row():
        seed = gr.Number(label="Shared seed", precision=0, interactive=False)
        sidecar = gr.File(label="Compare sidecar (JSON)", interactive=False)
        raw_prompt = gr.Textbox(label="Raw prompt", visible=False)
        rewritten_prompt = gr.Textbox(label="Rewritten prompt used", visible=False)
    return CompareView(raw_video, rewritten_video, raw_prompt, rewritten_prompt, seed, sidecar,
                       raw_text, rewritten_text, raw_info, rewritten_info)


def added_words(raw: str, rewritten: str) -> list[tuple[str, str | None]]:
    """`rewritten` as (text, label) spans: content words whose stem is not in `raw` are labelled 'added'."""
    have = set(stems(raw or ""))
    spans: list[tuple[str, str | None]] = []
    for word in (rewritten or "").split():
        new = [s for s in stems(" ".join(content_words(word))) if s not in have]
        spans.append((word + " ", ADDED if new else None))
    return spans


def side_info(engine: Engine, text: str, timings: dict) -> str:
    """Word and token counts of one side's prompt, and its render timings."""
    count = engine.counter.count(text or "")
    spent = " · ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in timings.items())
    return f"{words_label(text or '')} · {count.label()}" + (f" · {spent}" if spent else "")


def compare(engine: Engine, job: RenderJob, call: Call) -> tuple:
    """Render the prompt as written and rewritten with one seed and the same settings (rewriting first
    when `rewritten` is empty); with a reference `image`, both start from it. Returns both videos, both
    prompts, the seed and the sidecar."""
    result = engine.compare(
        job.prompt, rewritten=job.rewritten or None, rewrite_seed=job.rewrite_seed, image_path=job.image or None,
        image_fit=job.image_fit, image_description=job.image_description or None, progress=call.progress,
        cancel=call.cancel, session=call.session, **settings_of(job),
    )
    if result.rewrite.fallback:
        gr.Warning(f"The rewriter kept part of your prompt: {result.rewrite.fallback}")
    return (result.raw.video_path, result.rewritten.video_path, result.raw.prompt_used,
            result.rewritten.prompt_used, result.seed, result.sidecar_path)


COMPARE = Action("compare", "Compare", 6, compare, skips=("use_raw", "count"))


def compare_details(engine: Engine):
    """The private filler of the highlights and counts, from the prompts and the sidecar /compare returned."""

    def details(raw: str, rewritten: str, sidecar: str | None):
        runs = json.loads(Path(sidecar).read_text()).get("runs", {}) if sidecar else {}
        return (
            [(raw or "", None)],
            added_words(raw, rewritten),
            side_info(engine, raw, runs.get("raw", {}).get("timings", {})),
            side_info(engine, rewritten, runs.get("rewritten", {}).get("timings", {})),
        )

    return details
