"""Int8 per-channel dynamic Linears (torch.ao) for CPU decoding, with their weights cached on disk."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import warnings
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)


def quantize_int8_dynamic(
    module: torch.nn.Module,
    targets: set,
    cache: pathlib.Path | None = None,
    tag: str = "",
    fill: Callable[[], None] | None = None,
) -> None:
    """Swap `targets` (Linear names or the Linear type) for int8 per-channel dynamic Linears, in place.

    With `cache`, the int8 weights are read from that safetensors file when it was written for these
    targets, shapes, `tag` and torch version, and written there after quantizing otherwise: quantizing
    takes seconds of a CPU load, reading the int8 weights back a fraction of that (benchmarks/RESULTS.md).

    Measured on the 2-core dev machine (benchmarks/RESULTS.md): int8 everywhere with the English output layer
    decodes ~2.5x faster than fp32 and scores the same on cleanliness and kept words. torchao's
    CPU int8 configs decoded ~5x slower than fp32 there, so this uses the older torch.ao kernels.
    """
    names = {
        n for n, m in module.named_modules() if type(m) is torch.nn.Linear and (n in targets or m.__class__ in targets)
    }
    key = json.dumps({"torch": torch.__version__, "tag": tag, "names": sorted(names)})
    if cache is not None and _load_int8(module, names, cache, key):
        return
    if fill is not None:  # the float weights were left empty in case the cache could be used
        fill()
    with _quiet_deprecation():
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        torch.ao.quantization.quantize_dynamic(module, {t: qconfig for t in targets}, inplace=True)
    if cache is not None:
        _save_int8(module, names, cache, key)


def _save_int8(module: torch.nn.Module, names: set[str], cache: pathlib.Path, key: str) -> None:
    """Write the int8 weights, per-channel scales and zero points of the quantized `names`, atomically."""
    from safetensors.torch import save_file

    tensors = {}
    for name in names:
        weight = module.get_submodule(name).weight()
        tensors[f"{name}.int8"] = weight.int_repr().contiguous()
        tensors[f"{name}.scales"] = weight.q_per_channel_scales().contiguous()
        tensors[f"{name}.zero_points"] = weight.q_per_channel_zero_points().contiguous()
    staged = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(staged), metadata={"key": key})
        os.replace(staged, cache)
    except OSError as err:  # a read-only cache costs the next start a re-quantization, nothing else
        logger.warning("could not save the int8 weights to %s: %s", cache, err)


def _load_int8(module: torch.nn.Module, names: set[str], cache: pathlib.Path, key: str) -> bool:
    """Swap in the int8 Linears saved in `cache`; False (module untouched) when it is missing or does not match."""
    from safetensors import SafetensorError, safe_open

    if not cache.is_file():
        return False
    try:
        with safe_open(str(cache), "pt") as handle:  # one open: the key first, the tensors only when it matches
            if (handle.metadata() or {}).get("key") != key:
                return False
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (OSError, SafetensorError) as err:
        logger.warning("ignoring unreadable int8 cache %s: %s", cache, err)
        return False
    linears = {name: module.get_submodule(name) for name in names}
    if any(tensors.get(f"{n}.int8", torch.empty(0)).shape != linear.weight.shape for n, linear in linears.items()):
        logger.warning("ignoring int8 cache %s: its shapes do not match the model", cache)
        return False
    for name, linear in linears.items():
        with _quiet_deprecation():
            weight = torch._make_per_channel_quantized_tensor(
                tensors[f"{name}.int8"], tensors[f"{name}.scales"], tensors[f"{name}.zero_points"], 0
            )
        # Built at 1x1 and then given its weight: a full-size constructor would first pack a zero matrix.
        quantized = torch.ao.nn.quantized.dynamic.Linear(1, 1, dtype=torch.qint8)
        quantized.set_weight_bias(weight, None if linear.bias is None else linear.bias.detach())
        quantized.in_features, quantized.out_features = linear.in_features, linear.out_features
        parent, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent), child, quantized)
    return True


@contextlib.contextmanager
def _quiet_deprecation():
    """torch.ao's int8 kernels warn that they are deprecated; benchmarks/RESULTS.md says why they are still the choice."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        yield
