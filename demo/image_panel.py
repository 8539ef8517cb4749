"""The reference image panel: what the UI says about the image, its processed preview, and the status line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from demo.inputs import refused
from pipeline.engine import Engine
from pipeline.image_to_video import partner_settings, switch_note
from pipeline.request import MAX_DESCRIPTION_CHARS
from runtime.images import prepare_reference_image


@dataclass(frozen=True)
class ImageHandlers:
    """The panel's handlers over one engine (no state of their own)."""

    engine: Engine

    def check(self, image: str | None, description: str | None) -> None:
        """A ValueError for an unreadable image or an over-long description (the handlers turn it into gr.Error)."""
        if description and len(description.strip()) > MAX_DESCRIPTION_CHARS:
            raise ValueError(
                f"The image description has {len(description.strip())} characters; "
                f"the limit is {MAX_DESCRIPTION_CHARS}."
            )
        if image:
            spec = self.engine.image_spec or self.engine.spec
            prepare_reference_image(image, *spec.sizes["16:9"])

    def note(self, image: str | None, description: str | None) -> str:
        """Which model the image goes to, and whether the rewriter sees it."""
        engine, spec, target = self.engine, self.engine.spec, self.engine.image_spec
        if target is None:
            return f"`{spec.name}` cannot take a reference image."
        model = f"Generate starts the video from it with `{target.name}` (image-to-video)" + (
            f" instead of `{spec.name}`, which is text-only." if target is not spec else "."
        )
        if not image:
            return f"Optional. With an image, {model[0].lower()}{model[1:]}"
        if engine.rewriter is None:
            seen = "No rewriter is loaded: your prompt is used as written."
        elif engine.rewriter_sees_images:
            seen = f"The rewriter (`{engine.rewriter.spec.name}`) sees the image."
        elif (description or "").strip():
            seen = "The rewriter does not see images: it reads your description of this one."
        else:
            seen = (
                "**The rewriter does not see the image**: the rewrite describes only motion and camera. "
                "Describe the image above so it can start from what the image shows."
            )
        return f"{model} {seen} Variations preview without the image."

    def preview(self, image: str | None, fit: str, height: float, width: float, description: str | None = None):
        """(the image as the video model will get it, the status line): fitted to the size the render will use."""
        engine = self.engine
        status = f"**Status:** {engine.status()}"
        if not image:
            return None, status
        target = engine.image_spec
        if target is None:
            raise refused(f"{engine.spec.name} cannot take a reference image.")
        size = {"height": _int(height), "width": _int(width)}
        if target is not engine.spec:
            size = partner_settings(engine.spec, target, size)
        h, w = size["height"], size["width"]
        if not _valid_size(target, h, w):
            h, w = target.sizes["16:9"]
        if target is not engine.spec:
            status += f" · {switch_note(engine.spec, target)} Size {w}x{h}."
        try:
            return prepare_reference_image(image, h, w, fit), status
        except ValueError as err:
            raise refused(str(err)) from None

    def after_render(self, sidecar: str | None):
        """After a render: the status line naming the preset that rendered, and the stored processed image."""
        if not sidecar:
            return gr.skip(), gr.skip()
        record = json.loads(Path(sidecar).read_text(encoding="utf-8"))
        status = f"**Status:** {self.engine.status(record.get('video_preset'))}"
        ref = record.get("reference_image")
        return status, (str(Path(sidecar).with_name(ref["path"])) if ref else gr.skip())


def image_handlers(engine: Engine) -> ImageHandlers:
    return ImageHandlers(engine)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _valid_size(spec, height: int | None, width: int | None) -> bool:
    m = spec.size_multiple
    return all(isinstance(v, int) and m <= v <= spec.max_side and v % m == 0 for v in (height, width))
