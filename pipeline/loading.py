"""One loading path for every video preset: resolve a local folder, from_pretrained, apply the memory plan."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from pipeline.memory_apply import (
    apply_plan,
    detect_budget,
    out_of_memory_message,
    plan_for,
    quantization_config,
    request_settings,
)
from pipeline.memory_plan import MemoryPlan
from pipeline.presets import VideoSpec
from prompts.target import RewriteTarget
from runtime.devices import free_accelerator_memory, torch_dtype
from runtime.hub import cache_root, ensure_downloaded

log = logging.getLogger(__name__)

# Image partners that read prompts with the same text encoder checkpoint as the preset they partner: Wan 2.1 and
# Wan 2.2 TI2V both ship Google's umT5-XXL encoder (`models_t5_umt5-xxl-enc-bf16.pth` in Wan's own releases; the
# tiny pair is built from one seed). The partner reads the app preset's copy: its own (5.7B parameters, ~23 GB in
# the diffusers repo's float32, 11 GB in bf16) is neither downloaded nor held twice. partner -> preset.
SHARED_TEXT_ENCODER = {"wan2.2-ti2v-5b": "wan2.1-t2v-1.3b", "tiny-random-i2v": "tiny-random"}


@dataclass
class LoadedVideo:
    spec: VideoSpec
    pipe: object  # a diffusers pipeline
    device: str
    dtype: str
    memory: tuple[str, ...]  # offload and tiling measures applied
    plan: MemoryPlan | None = None  # CUDA only: the memory plan these measures come from
    image_pipe: object | None = None  # image-capable presets: the image-to-video pipeline (shares `pipe`'s models)

    def describe(self) -> str:
        memory = ", ".join(self.memory) or "fully resident"
        plan = f"; {self.plan.describe()}" if self.plan is not None else ""
        return f"{self.spec.name} on {self.device} ({self.dtype}; {memory}{plan})"

    def pipe_for(self, image: bool):
        """The pipeline for a request with or without a reference image."""
        if image and self.image_pipe is None:
            raise ValueError(f"{self.spec.name} is a text-to-video model: it cannot take a reference image.")
        return self.image_pipe if image else self.pipe

    def after_call(self, image: bool) -> None:
        """Model CPU offload hooks belong to the loaded pipeline: let it offload after the other one ran."""
        if self.image_pipe is not None and not image and hasattr(self.image_pipe, "maybe_free_model_hooks"):
            self.image_pipe.maybe_free_model_hooks()

    @property
    def text_encoder_on_cpu(self) -> bool:
        return self.plan is not None and self.plan.components["text_encoder"].placement == "cpu"


def weights_folder(spec: VideoSpec) -> Path:
    """The local folder `from_pretrained` reads: built for tiny presets, downloaded for hub presets."""
    if spec.name == "toy-world":
        from pipeline.toyworld.model import ensure_toyworld

        return ensure_toyworld(cache_root())
    if spec.hub_id is None:
        from runtime.tiny import ensure_tiny

        return ensure_tiny(spec.tiny_kind, cache_root())
    return Path(ensure_downloaded(spec.hub_id, spec.download_gb))


def shared_text_encoder_folder(spec: VideoSpec, donor: VideoSpec) -> Path:
    """A folder of links that `from_pretrained` reads as `spec`'s checkpoint: its own files (downloaded without
    its text encoder) with `donor`'s text encoder. Rebuilt on each load: snapshot paths change with revisions."""
    if spec.hub_id is None:
        own = weights_folder(spec)
    else:
        import inspect

        import diffusers

        pipeline_class = getattr(diffusers, spec.image_pipeline_class or spec.pipeline_class)
        names = sorted(set(inspect.signature(pipeline_class.__init__).parameters) - {"self", "text_encoder"})
        own_gb = round(spec.download_gb - _text_encoder_gb(spec), 1)
        own = Path(ensure_downloaded(spec.hub_id, own_gb, allow_patterns=["model_index.json",
                                                                           *(f"{n}/*" for n in names)]))
    text_encoder = (weights_folder(donor) / "text_encoder").absolute()
    folder = cache_root() / "shared" / f"{spec.name}+text-encoder-of-{donor.name}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    for entry in Path(own).iterdir():
        if entry.name != "text_encoder":
            (tmp / entry.name).symlink_to(entry.absolute())
    (tmp / "text_encoder").symlink_to(text_encoder)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def _text_encoder_gb(spec: VideoSpec) -> float:
    """The text encoder's share of a hub download (the diffusers Wan repos store umT5 in float32)."""
    from pipeline.memory_models import count_component

    return count_component(spec.name, "text_encoder").params * 4 / 1e9


def _reusable_text_encoder(donor: LoadedVideo | None, plan: MemoryPlan | None):
    """The donor's loaded text encoder when this pipeline can hold the very same module: both resident and
    unquantized (ZeroGPU) or both without a plan (CPU, MPS). Offload hooks and quantization belong to one plan."""
    if donor is None or donor.pipe is None:
        return None

    def plain(p: MemoryPlan | None) -> bool:
        return p is None or (p.components["text_encoder"].placement == "gpu"
                             and p.components["text_encoder"].quantization == "none")

    same = (donor.plan is None) == (plan is None)
    return donor.pipe.text_encoder if same and plain(donor.plan) and plain(plan) else None


def load_video(spec: VideoSpec, device: str, plan: MemoryPlan | None = None, rewriter: str | None = None,
               text_encoder_from: LoadedVideo | None = None) -> LoadedVideo:
    """Load a preset; on CUDA apply `plan`, or the plan for the detected memory (and `rewriter`) when None.
    `text_encoder_from`: the loaded preset whose text encoder this one reads when SHARED_TEXT_ENCODER says so (its
    module when it can be shared, else its files)."""
    import diffusers

    # 1. Weights on disk (a partner's without the text encoder it shares)
    donor = text_encoder_from if text_encoder_from is not None and \
        SHARED_TEXT_ENCODER.get(spec.name) == text_encoder_from.spec.name else None
    folder = shared_text_encoder_folder(spec, donor.spec) if donor is not None else weights_folder(spec)
    if device == "cpu" and spec.hub_id is not None:
        log.warning("%s on CPU will be very slow (minutes per step); a CUDA GPU is recommended", spec.name)

    # 2. The memory plan (CUDA): the fastest placement that fits; on ZeroGPU everything resident, since each
    #    call gets a large GPU slice and moving weights back and forth only spends the visitor's GPU quota
    if device == "cuda" and plan is None and spec.offload:  # toy-world declares no offload: tiny, resident
        plan = plan_for(spec, rewriter, detect_budget(device))
        log.info("%s", plan.describe())
    if plan is not None and not plan.fits:
        log.warning("%s: %s", plan.describe(), plan.reason)

    # 3. Build the pipeline through the library's own loader (text encoder quantized when planned); an
    #    image-capable preset loads its image-to-video class, and text-to-video reuses the same models
    dtype = load_dtypes(spec, device)
    pipeline_class = getattr(diffusers, spec.image_pipeline_class or spec.pipeline_class)
    quantization = quantization_config(plan) if plan is not None else None
    extra = {"quantization_config": quantization} if quantization is not None else {}
    shared = _reusable_text_encoder(donor, plan)
    if shared is not None:
        extra["text_encoder"] = shared
    pipe = pipeline_class.from_pretrained(folder, dtype=dtype, **spec.pipeline_config, **extra)
    pipe.set_progress_bar_config(disable=True)

    # 4. Apply the plan through diffusers' offload APIs; CPU and MPS run resident (MPS: VAE tiling)
    if plan is not None:
        memory = apply_plan(pipe, plan, device)
    else:
        pipe.to(device)
        memory = ()
        if device != "cpu" and "vae_tiling" in spec.offload:
            pipe.vae.enable_tiling()
            memory = ("VAE tiling",)
    image_pipe = None
    if spec.takes_image:  # after the plan: the offload hooks sit on the shared models
        image_pipe = pipe
        pipe = sharing_pipeline(getattr(diffusers, spec.pipeline_class), image_pipe, spec.pipeline_config)
        pipe.set_progress_bar_config(disable=True)
    if shared is not None:
        memory = (*memory, f"text encoder shared with {donor.spec.name}")
    return LoadedVideo(spec, pipe, device, _dtype_words(dtype), tuple(memory), plan, image_pipe)


def _dtype_words(dtype) -> str:
    """"float32", or "bfloat16, VAE float32" when a component loads in another dtype."""
    if not isinstance(dtype, dict):
        return str(dtype).removeprefix("torch.")
    names = {"vae": "VAE", "text_encoder": "text encoder"}
    other = [f"{names.get(name, name)} {str(d).removeprefix('torch.')}" for name, d in dtype.items() if name != "default"]
    return ", ".join([str(dtype["default"]).removeprefix("torch."), *other])


def load_dtypes(spec: VideoSpec, device: str):
    """The `dtype` for `from_pretrained`: the preset's (float32 on CPU), or per component when one of them loads
    wider, e.g. {"default": torch.bfloat16, "vae": torch.float32} for Wan (see memory_models.FLOAT32_CLASSES)."""
    import torch

    from pipeline.memory_models import component_dtypes

    base = torch_dtype(spec.dtype, device)
    wider = {name: getattr(torch, d) for name, d in component_dtypes(spec.name, spec.dtype).items()
             if getattr(torch, d) != base and d == "float32"}
    return {"default": base, **wider} if wider else base


def sharing_pipeline(pipeline_class, pipe, config: Mapping):
    """A `pipeline_class` over `pipe`'s own models, scheduler and tokenizer, each left as it is. Not diffusers'
    `from_pipe`: that casts every model to one dtype (float32 unless told), which would double bf16 weights, and
    even with the dtype given would undo the float32 VAE, the float32-kept layers and fp8 storage."""
    import inspect

    accepted = set(inspect.signature(pipeline_class.__init__).parameters) - {"self"}
    parts = {name: module for name, module in pipe.components.items() if name in accepted}
    settings = {name: value for name, value in pipe.config.items() if name in accepted and name not in parts}
    return pipeline_class(**parts, **{**settings, **config})


def step_down(video, rewriter: str | None, request, text_encoder_from=None):
    """Free the GPU and reload `video` (a LoadedVideo) with the next more frugal plan; (new video, note).
    A ValueError saying what the settings need when there is no more frugal plan. `text_encoder_from`: as for
    load_video (an image partner reads the app preset's text encoder)."""
    old = video.plan
    if old is None:
        raise ValueError(out_of_memory_message(video, rewriter, request))
    new = plan_for(video.spec, rewriter, old.budget, request_settings(video.spec, request),
                   below_gb=old.estimated_peak_vram_gb)
    if new.estimated_peak_vram_gb >= old.estimated_peak_vram_gb:
        raise ValueError(out_of_memory_message(video, rewriter, request))
    note = (f"Out of GPU memory with plan '{old.rung}'; retried with '{new.rung}' (estimated peak "
            f"{new.estimated_peak_vram_gb:.1f} GB instead of {old.estimated_peak_vram_gb:.1f} GB, "
            f"estimated {new.estimated_slowdown:.2f}x the resident time).")
    video.pipe = video.image_pipe = None  # drop the old pipeline's GPU tensors before loading the new one
    free_accelerator_memory()
    return load_video(video.spec, video.device, plan=replace(new, changes=(note,)),
                      text_encoder_from=text_encoder_from), note


def rewrite_target(spec: VideoSpec) -> RewriteTarget:
    """What the rewriter needs of `spec`: its text encoder's limits and tokenizer, its template family, its
    rules of what it can draw."""
    return RewriteTarget(
        name=spec.name,
        template_family=spec.template_family,
        token_limit=spec.token_limit,
        word_target=spec.word_target,
        word_range=spec.word_range,
        tokenizer=partial(local_tokenizer, spec),
        repair=spec.rewrite_repair,
        check=spec.rewrite_check,
        attempts=spec.rewrite_attempts,
    )


def local_tokenizer(spec: VideoSpec):
    """The target's own tokenizer if it is on this machine, else None (callers then estimate)."""
    from transformers import AutoTokenizer

    try:
        if spec.hub_id is None:
            return AutoTokenizer.from_pretrained(weights_folder(spec) / "tokenizer")
        from huggingface_hub import snapshot_download

        folder = snapshot_download(spec.hub_id, allow_patterns=["tokenizer/*"], local_files_only=True)
        return AutoTokenizer.from_pretrained(Path(folder) / "tokenizer")
    except Exception:  # not cached: any failure here only means "estimate instead"
        pass
    if spec.tokenizer_id:
        try:
            return AutoTokenizer.from_pretrained(spec.tokenizer_id, local_files_only=True)
        except Exception:
            pass
    return None
