"""The typed contract between UI/CLI and the video pipeline, and its validation against a preset."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pipeline.presets import VideoSpec
from prompts.cleaning import MAX_PROMPT_CHARS, check_prompt

MAX_SEED = 2**32 - 1  # torch.Generator accepts 64-bit seeds; 32 bits keep them readable and portable
STEPS_RANGE = (1, 100)
GUIDANCE_RANGE = (0.0, 20.0)
IMAGE_FITS = ("crop", "pad")  # runtime.images.FITS
MAX_DESCRIPTION_CHARS = 500  # "describe your image": a sentence or two, read by the rewriter only


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str  # the user's prompt as typed
    video: str  # video preset name
    height: int
    width: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float
    negative_prompt: str
    seed: int
    rewritten: str | None = None  # the prompt sent to the video model when it differs from `prompt`
    image_path: str | None = None  # reference image: the first frame of an image-to-video render
    rewrite_info: dict = field(default_factory=dict)  # rewriter, template version, seed, fallback
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
    seed: int | None = None,
    height: int | None = None,
    width: int | None = None,
    num_frames: int | None = None,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    negative_prompt: str | None = None,
    image_path: str | None = None,
    rewrite_info: dict | None = None,
    image_fit: str = "crop",
    image_description: str | None = None,
) -> GenerationRequest:
    """Fill preset defaults, then validate every setting; errors name the setting and its valid values."""
    # 1. Prompts
    prompt = check_prompt(prompt)
    if rewritten is not None and rewritten.strip():
        rewritten = check_prompt(rewritten, "rewritten prompt")
    else:
        rewritten = None

    # 2. Defaults from the preset
    height = spec.height if height is None else height
    width = spec.width if width is None else width
    num_frames = spec.num_frames if num_frames is None else num_frames
    steps = spec.num_inference_steps if num_inference_steps is None else num_inference_steps
    guidance = spec.guidance_scale if guidance_scale is None else guidance_scale
    negative = spec.negative_prompt if negative_prompt is None else negative_prompt
    seed = random_seed() if seed is None or seed < 0 else seed

    # 3. Validation: reject, never round silently
    for name, value in (("height", height), ("width", width)):
        if not _is_int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}.")
        m = spec.size_multiple
        if value < m or value > spec.max_side or value % m:
            raise ValueError(
                f"{name}={value} is not valid for {spec.name}: use a multiple of {m} "
                f"between {m} and {spec.max_side}."
            )
    if not _is_int(num_frames) or num_frames < 1 or num_frames > spec.max_frames or (num_frames - 1) % spec.frame_step:
        raise ValueError(
            f"num_frames={num_frames} is not valid for {spec.name}: use {spec.frame_step}k+1 frames "
            f"(e.g. {spec.frame_step + 1}, {2 * spec.frame_step + 1}, ...) up to {spec.max_frames}."
        )
    if not _is_int(steps) or not STEPS_RANGE[0] <= steps <= STEPS_RANGE[1]:
        raise ValueError(f"num_inference_steps={steps} is out of range {STEPS_RANGE[0]}-{STEPS_RANGE[1]}.")
    if not isinstance(guidance, (int, float)) or not GUIDANCE_RANGE[0] <= guidance <= GUIDANCE_RANGE[1]:
        raise ValueError(f"guidance_scale={guidance} is out of range {GUIDANCE_RANGE[0]}-{GUIDANCE_RANGE[1]}.")
    if not _is_int(seed) or seed > MAX_SEED:
        raise ValueError(f"seed={seed} is out of range 0-{MAX_SEED} (or -1 for a random seed).")
    if not isinstance(negative, str) or len(negative) > MAX_PROMPT_CHARS:
        raise ValueError(f"The negative prompt must be text of at most {MAX_PROMPT_CHARS} characters.")
    if image_fit not in IMAGE_FITS:
        raise ValueError(f"image_fit={image_fit!r} is not valid: use one of {', '.join(IMAGE_FITS)}.")
    description = image_description.strip() if isinstance(image_description, str) else None
    if description and len(description) > MAX_DESCRIPTION_CHARS:
        raise ValueError(f"The image description has {len(description)} characters; the limit is {MAX_DESCRIPTION_CHARS}.")

    return GenerationRequest(
        prompt=prompt,
        video=spec.name,
        height=int(height),
        width=int(width),
        num_frames=int(num_frames),
        num_inference_steps=int(steps),
        guidance_scale=float(guidance),
        negative_prompt=negative.strip(),
        seed=int(seed),
        rewritten=rewritten,
        image_path=image_path,
        rewrite_info=dict(rewrite_info or {}),
        image_fit=image_fit,
        image_description=(description or None) if image_path else None,
    )


def _is_int(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int)
