"""Gradio values to engine arguments: whole numbers, render settings, and progress labels."""

from __future__ import annotations

import logging

import gradio as gr

from pipeline.engine import ProgressFn

log = logging.getLogger("demo")

STAGES = {"rewrite": ("Rewriting", "tokens"), "denoise": ("Denoising", "steps"), "encode": ("Encoding", "frames")}
RUN_NAMES = {"raw": "Prompt as written", "rewritten": "Rewritten prompt"}


def refused(message: str) -> gr.Error:
    """The error a user sees for a request the app refuses: a toast in the UI, an AppError through the API, and
    one line in the server's log (no traceback: nothing went wrong in the app)."""
    log.info("refused: %s", message)
    return gr.Error(message, print_exception=False)


def whole(value, name: str) -> int:
    """Gradio numbers arrive as floats (or None when a box is cleared): accept whole numbers only."""
    if value is None or value == "":
        raise refused(f"The {name} box is empty.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise refused(f"The {name} must be a number, got {value!r}.") from None
    if not number.is_integer():
        raise refused(f"The {name} must be a whole number, got {value}.")
    return int(number)


def render_settings(seed, height, width, num_frames, num_inference_steps, guidance_scale, negative_prompt) -> dict:
    """The settings inputs shared by Generate, Compare and Variations, checked and typed."""
    return {
        "seed": whole(seed, "seed"),
        "height": whole(height, "height"),
        "width": whole(width, "width"),
        "num_frames": whole(num_frames, "frames"),
        "num_inference_steps": whole(num_inference_steps, "steps"),
        "guidance_scale": float(guidance_scale),
        "negative_prompt": negative_prompt,
    }


def reporter(progress: gr.Progress) -> ProgressFn:
    """Engine progress ("denoise", or "raw:denoise" for one run of several) as a Gradio progress bar."""
    def report(stage: str, done: int, total: int):
        run, _, step = stage.rpartition(":")
        desc, unit = STAGES.get(step, (step, "steps"))
        if run:
            desc = f"{RUN_NAMES.get(run, run.capitalize())} · {desc.lower()}"
        progress((done, total) if total else None, desc=desc, unit=unit)

    return report
