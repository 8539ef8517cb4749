"""The typed contract between UI/CLI and the video pipeline, and its validation against a preset."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields, replace
from typing import TypeVar

from pipeline.presets import VideoSpec
from pipeline.records import RewriteInfo
from prompts.cleaning import MAX_PROMPT_CHARS, check_prompt

MAX_SEED = 2**32 - 1  # torch.Generator accepts 64-bit seeds; 32 bits keep them readable and portable
STEPS_RANGE = (1, 100)
GUIDANCE_RANGE = (0.0, 20.0)
FPS_RANGE = (1, 60)  # frames per second of the exported video
IMAGE_FITS = ("crop", "pad")  # runtime.images.FITS
MAX_DESCRIPTION_CHARS = 500  # "describe your image": a sentence or two, read by the rewriter only

S = TypeVar("S", bound="RenderSettings")


@dataclass(frozen=True, kw_only=True)
class RenderSettings:
    """How a video is rendered, besides its prompts and image. None: the preset's value of the same name (a
    VideoSpec field); a seed of None or below 0: a random one. These names are the settings' names everywhere:
    the engine's keywords, the UI's and the API's inputs, and `settings` in the sidecar and the gallery."""

    seed: int | None = None
    height: int | None = None
    width: int | None = None
    num_frames: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    negative_prompt: str | None = None
    fps: int | None = None  # the MP4's frame rate: the same frames play faster or slower

    def resolved(self: S, spec: VideoSpec) -> S:
        """These settings for `spec`: its defaults filled in, then every value checked and typed; an invalid
        value is rejected, never rounded, with a ValueError naming the setting and its valid values."""
        # 1. Defaults from the preset
        s = replace(self, **{name: getattr(spec, name) for name in SETTING_NAMES if getattr(self, name) is None})
        seed = random_seed() if s.seed is None or (_is_number(s.seed) and s.seed < 0) else s.seed

        # 2. Validation: reject, never round silently
        return replace(
            s,
            height=_side("height", s.height, spec),
            width=_side("width", s.width, spec),
            num_frames=_frames(s.num_frames, spec),
            num_inference_steps=_whole_in("num_inference_steps", s.num_inference_steps, STEPS_RANGE),
            guidance_scale=_guidance(s.guidance_scale),
            seed=_seed(seed),
            negative_prompt=_negative(s.negative_prompt),
            fps=_whole_in("fps", s.fps, FPS_RANGE),
        )


SETTING_NAMES = tuple(f.name for f in fields(RenderSettings) if f.name != "seed")  # the sidecar's `settings`


@dataclass(frozen=True, kw_only=True)
class GenerationRequest(RenderSettings):
    """One render for one preset (`video`), as build_request made it: every setting filled in and valid."""

    prompt: str  # the user's prompt as typed
    video: str  # video preset name
    rewritten: str | None = None  # the prompt sent to the video model when it differs from `prompt`
    image_path: str | None = None  # reference image: the first frame of an image-to-video render
    rewrite_info: RewriteInfo = field(default_factory=RewriteInfo)  # where `rewritten` came from
    image_fit: str = "crop"  # how the image meets the video's size: "crop" (fill) or "pad" (letterbox)
    image_description: str | None = None  # the user's words for the image, for a rewriter that cannot see it

    @property
    def prompt_used(self) -> str:
        return self.rewritten or self.prompt


@dataclass(frozen=True)
class GenerationResult:
    video_path: str
    sidecar_path: str
    seed: int
    prompt_used: str
    timings: dict[str, float]


def random_seed() -> int:
    return random.SystemRandom().randint(0, MAX_SEED)


def build_request(
    spec: VideoSpec,
    prompt: str,
    *,
    rewritten: str | None = None,
    image_path: str | None = None,
    image_fit: str = "crop",
    image_description: str | None = None,
    rewrite_info: RewriteInfo | None = None,
    **settings,
) -> GenerationRequest:
    """A validated request for `spec`; `settings` are RenderSettings fields by name (None or left out: the
    preset's default). Errors name the setting and its valid values."""
    # 1. Prompts
    prompt = check_prompt(prompt)
    if rewritten is not None and rewritten.strip():
        rewritten = check_prompt(rewritten, "rewritten prompt")
    else:
        rewritten = None

    # 2. Settings: the preset's defaults, then reject, never round silently
    request = GenerationRequest(prompt=prompt, video=spec.name, rewritten=rewritten, **settings).resolved(spec)

    # 3. The reference image
    if image_fit not in IMAGE_FITS:
        raise ValueError(f"image_fit={image_fit!r} is not valid: use one of {', '.join(IMAGE_FITS)}.")
    description = image_description.strip() if isinstance(image_description, str) else None
    if description and len(description) > MAX_DESCRIPTION_CHARS:
        raise ValueError(f"The image description has {len(description)} characters; the limit is {MAX_DESCRIPTION_CHARS}.")
    return replace(request, image_path=image_path, rewrite_info=rewrite_info or RewriteInfo(), image_fit=image_fit,
                   image_description=(description or None) if image_path else None)


def _side(name: str, value: object, spec: VideoSpec) -> int:
    if not _is_int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    m = spec.size_multiple
    if value < m or value > spec.max_side or value % m:
        raise ValueError(
            f"{name}={value} is not valid for {spec.name}: use a multiple of {m} between {m} and {spec.max_side}."
        )
    return int(value)


def _frames(value: object, spec: VideoSpec) -> int:
    if not _is_int(value) or value < 1 or value > spec.max_frames or (value - 1) % spec.frame_step:
        raise ValueError(
            f"num_frames={value} is not valid for {spec.name}: use {spec.frame_step}k+1 frames "
            f"(e.g. {spec.frame_step + 1}, {2 * spec.frame_step + 1}, ...) up to {spec.max_frames}."
        )
    return int(value)


def _whole_in(name: str, value: object, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"{name}={value} is out of range: use a whole number from {low} to {high}.")
    return int(value)


def _guidance(value: object) -> float:
    if not _is_number(value) or not GUIDANCE_RANGE[0] <= value <= GUIDANCE_RANGE[1]:
        raise ValueError(f"guidance_scale={value} is out of range {GUIDANCE_RANGE[0]}-{GUIDANCE_RANGE[1]}.")
    return float(value)


def _seed(value: object) -> int:
    if not _is_int(value) or value > MAX_SEED:
        raise ValueError(f"seed={value} is out of range 0-{MAX_SEED} (or -1 for a random seed).")
    return int(value)


def _negative(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_PROMPT_CHARS:
        raise ValueError(f"The negative prompt must be text of at most {MAX_PROMPT_CHARS} characters.")
    return value.strip()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int)
