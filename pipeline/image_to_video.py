"""Which preset renders a request with a reference image, the settings it gets when the app switches, and
the processed image stored beside the video."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.presets import VideoSpec, get_video_spec
from pipeline.request import GenerationRequest
from runtime.images import fit_image, load_reference_image

# Settings that follow the preset when they were left at the text preset's defaults (the UI and the API
# always send values; a value that equals the text preset's default for the aspect means "not chosen").
_FOLLOW = ("num_frames", "num_inference_steps", "guidance_scale", "negative_prompt")


def image_target(spec: VideoSpec) -> VideoSpec:
    """The preset that renders with a reference image: `spec` itself if it takes one, else its declared
    image-capable partner. A ValueError when there is neither."""
    if spec.takes_image:
        return spec
    if spec.image_partner is None:
        raise ValueError(f"{spec.name} is a text-to-video model with no image-capable partner: remove the image.")
    partner = get_video_spec(spec.image_partner)
    if not partner.takes_image:
        raise ValueError(f"{spec.name}'s image partner {partner.name} cannot take an image either.")
    return partner


def partner_settings(primary: VideoSpec, partner: VideoSpec, settings: dict) -> dict:
    """`settings` for `partner` when the app switched from `primary`: a size that is one of the primary's
    aspect sizes becomes the partner's size for that aspect, and frames, steps, guidance and negative prompt
    left at the primary's defaults become the partner's. Anything else is kept (and validated as given)."""
    out = dict(settings)
    size = (settings.get("height"), settings.get("width"))
    for aspect, hw in primary.sizes.items():
        if size == hw or size == (None, None):
            out["height"], out["width"] = partner.sizes[aspect if size == hw else "16:9"]
            break
    defaults = {
        "num_frames": primary.num_frames,
        "num_inference_steps": primary.num_inference_steps,
        "guidance_scale": primary.guidance_scale,
        "negative_prompt": primary.negative_prompt,
    }
    for name in _FOLLOW:
        if settings.get(name) is None or settings.get(name) == defaults[name]:
            out[name] = getattr(partner, name)
    return out


def switch_note(primary: VideoSpec, partner: VideoSpec) -> str:
    """The status line's words when a reference image moves a render to the image-capable partner."""
    return (
        f"Reference image: rendering with {partner.name} (image-to-video) instead of {primary.name}, "
        f"which is text-only."
    )


def save_reference(request: GenerationRequest, out: Path) -> dict:
    """Store the processed reference image, the frame the video starts from (`out`, a .png beside the
    video); the sidecar records it with the original's name, hash and size."""
    path = Path(request.image_path)
    original = load_reference_image(path)
    image = fit_image(original, request.height, request.width, request.image_fit)
    image.save(out, format="PNG")
    return {
        "path": out.name,
        "original_name": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),  # of the file as given
        "processed_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "size": list(image.size),  # width, height: the video's
        "original_size": list(original.size),  # upright (EXIF orientation applied)
        "fit": request.image_fit,
        "description": request.image_description,
        "used_by_video_model": True,  # the first frame of an image-to-video render
    }
