"""Device choice (CUDA, then Apple MPS, then CPU) and what each device supports."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)


def on_zerogpu(environ: Mapping[str, str] | None = None) -> bool:
    """True on a ZeroGPU Space: SPACES_ZERO_GPU is set to 1/t/true there (read the way `spaces` reads it)."""
    env = os.environ if environ is None else environ
    return (env.get("SPACES_ZERO_GPU") or "").strip().lower() in ("1", "t", "true")


def pick_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def torch_dtype(name: str, device: str):
    """The preset's dtype on accelerators; float32 on CPU, where bf16 kernels are slow or missing."""
    import torch

    return torch.float32 if device == "cpu" else getattr(torch, name)


def bitsandbytes_supported(device: str) -> bool:
    """bitsandbytes runs 4-bit on CUDA (fast) and CPU (slow); not on MPS."""
    if device == "mps":
        return False
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()
