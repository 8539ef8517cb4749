"""One loading path for every video preset: resolve a local folder, from_pretrained, apply offload."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.devices import torch_dtype
from pipeline.hub import cache_root, ensure_downloaded
from pipeline.presets import VideoSpec

log = logging.getLogger(__name__)


@dataclass
class LoadedVideo:
    spec: VideoSpec
    pipe: object  # a diffusers pipeline
    device: str
    dtype: str
    memory: tuple[str, ...]  # offload and tiling measures applied

    def describe(self) -> str:
        memory = ", ".join(self.memory) or "fully resident"
        return f"{self.spec.name} on {self.device} ({self.dtype}; {memory})"


def weights_folder(spec: VideoSpec) -> Path:
    """The local folder `from_pretrained` reads: built for tiny presets, downloaded for hub presets."""
    if spec.hub_id is None:
        from pipeline.tiny import ensure_tiny

        return ensure_tiny("wan", cache_root())
    return Path(ensure_downloaded(spec.hub_id, spec.download_gb))


def load_video(spec: VideoSpec, device: str) -> LoadedVideo:
    import diffusers

    # 1. Weights on disk
    folder = weights_folder(spec)
    if device == "cpu" and not spec.is_test_model:
        log.warning("%s on CPU will be very slow (minutes per step); a CUDA GPU is recommended", spec.name)

    # 2. Build the pipeline through the library's own loader
    dtype = torch_dtype(spec.dtype, device)
    pipeline_class = getattr(diffusers, spec.pipeline_class)
    pipe = pipeline_class.from_pretrained(folder, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)

    # 3. Memory: on CUDA, components visit the GPU only while they run; not on ZeroGPU, where each call
    #    gets a large GPU slice and moving weights back and forth only spends the visitor's GPU quota
    memory: list[str] = []
    if device == "cuda" and "model_cpu_offload" in spec.offload and not on_zerogpu():
        pipe.enable_model_cpu_offload()
        memory.append("model CPU offload")
    else:
        pipe.to(device)
    if device != "cpu" and "vae_tiling" in spec.offload:
        pipe.vae.enable_tiling()
        memory.append("VAE tiling")
    return LoadedVideo(spec, pipe, device, str(dtype).removeprefix("torch."), tuple(memory))


def on_zerogpu(environ: Mapping[str, str] | None = None) -> bool:
    """True on a ZeroGPU Space: SPACES_ZERO_GPU is set to 1/t/true there (read the way `spaces` reads it)."""
    env = os.environ if environ is None else environ
    return (env.get("SPACES_ZERO_GPU") or "").strip().lower() in ("1", "t", "true")


def local_tokenizer(spec: VideoSpec):
    """The target's own tokenizer if it is on this machine, else None (callers then estimate)."""
    from transformers import AutoTokenizer

    try:
        if spec.hub_id is None:
            from pipeline.tiny import ensure_tiny

            return AutoTokenizer.from_pretrained(ensure_tiny("wan", cache_root()) / "tokenizer")
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
