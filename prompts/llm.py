"""The rewriter's model runtime: load an LLM preset, move it off the accelerator and back, and keep its caches
(the few-shot prefix's keys and values, the stop tokens). Generation is prompts.generation's; what to do with a
draft is prompts.rewriter's."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from prompts.embedded import adapter_hash, gemma_cache_path, load_gemma_270m
from prompts.presets import RewriterSpec
from prompts.templates import Template
from prompts.vocabulary import line_break_ids
from runtime.devices import bitsandbytes_supported, free_accelerator_memory, torch_dtype
from runtime.hub import cache_root, ensure_downloaded
from runtime.tiny import ensure_tiny

log = logging.getLogger(__name__)

MAX_PREFIXES = 4  # few-shot prefix KV caches kept (~25 MB each for Gemma 3 270M)


class LLM:
    """A loaded LLM preset: its model, tokenizer and caches. Use `LLM.load(spec, device)`; tests hand it tiny
    models. `loader` loads it again when it had to be dropped from the accelerator."""

    def __init__(self, spec: RewriterSpec, model, tokenizer, device: str, quantization: str,
                 loader: Callable[[RewriterSpec, str], LLM] | None = None):  # fmt: skip
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.quantization = quantization
        self.loader = loader or LLM.load
        self.lock = threading.Lock()  # one generation at a time: seeding uses torch's global RNG
        self.offloaded = False
        self.prefix_store: Path | None = None  # folder where prefix KV caches persist across runs (or None)
        self.weights = "base"  # which weights: "base", or the hash of the adapter merged in (cache keys hold it)
        self.prefixes: dict[str, tuple[list[int], object] | None] = {}  # prefix text -> (ids, KV cache)
        self.stop_ids: list[int] | None = None  # ids holding a line break, listed once

    # -- loading and offloading -----------------------------------------------------------------------
    @classmethod
    def load(cls, spec: RewriterSpec, device: str) -> LLM:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # 1. The packaged Gemma 3 270M: converted once, cached, adapter merged, shrunk for CPU decoding
        quant = spec.quantization.get(device, "none")
        if spec.source == "embedded-gguf":
            model, tokenizer = load_gemma_270m(
                cache_root(), device=device, quantize=quant, vocabulary=spec.output_vocabulary,
                adapter=spec.adapter_path,
            )  # fmt: skip
            llm = cls(spec, model, tokenizer, device, quant)
            llm.prefix_store = gemma_cache_path(cache_root())
            if spec.adapter_path is not None:
                llm.weights = f"adapter-{adapter_hash(spec.adapter_path)}"
            return llm

        # 2. A hub checkpoint (a tiny local model for tests), 4-bit nf4 where bitsandbytes runs
        folder = ensure_tiny("lm", cache_root()) if spec.source == "tiny" else ensure_downloaded(spec.hub_id, spec.download_gb)
        kwargs = {"dtype": torch_dtype(spec.dtype, device)}
        if quant == "nf4" and bitsandbytes_supported(device):
            import torch
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch.bfloat16 if device == "cuda" else torch.float32,
                bnb_4bit_use_double_quant=True,
            )
            kwargs["device_map"] = device
        else:
            quant = "none"
        if device == "cpu" and not spec.is_test_model and spec.source == "hub":
            log.warning("%s on CPU is slow; expect tens of seconds per rewrite", spec.name)
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs).eval()
        if "device_map" not in kwargs:
            model.to(device)
        return cls(spec, model, AutoTokenizer.from_pretrained(folder), device, quant)

    def release_accelerator(self) -> None:
        """Free accelerator memory before the video model runs (moved back by `ensure_on_device`)."""
        if self.device == "cpu" or self.offloaded:
            return
        self.prefixes.clear()
        try:
            self.model.to("cpu")
        except Exception as err:  # some quantized layouts refuse to move; fall back to dropping it
            log.warning("could not move %s to CPU (%s); it will be reloaded", self.spec.name, err)
            self.model = None
        self.offloaded = True
        free_accelerator_memory()

    def ensure_on_device(self) -> None:
        if not self.offloaded:
            return
        if self.model is None:
            fresh = self.loader(self.spec, self.device)
            self.model, self.tokenizer = fresh.model, fresh.tokenizer
        else:
            self.model.to(self.device)
        self.offloaded = False

    # -- stop tokens ------------------------------------------------------------------------------------
    def eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        return eos or [self.tokenizer.eos_token_id]

    def paragraph_end_ids(self) -> list[int]:
        """Token ids that contain a line break (computed once from the vocabulary, not per token).

        Ending generation on these ids, instead of transformers' stop_strings, avoids rebuilding a
        string-matching table over the whole (262k for Gemma) vocabulary on every call.
        """
        if self.stop_ids is None:
            # Saved beside the prefix caches, so a restart does not list the vocabulary again.
            self.stop_ids = line_break_ids(self.tokenizer, self.prefix_store and self.prefix_store / "paragraph-ends.json")
        return self.stop_ids

    # -- the few-shot prefix's KV cache -----------------------------------------------------------------
    def prefix_cache(self, template: Template, ids: list[int]):
        """A copy of the few-shot prefix's KV cache when `ids` starts with that prefix, else None.

        The prefix (instructions and examples, ~650 tokens for Gemma) is the same for every idea:
        prefilling it once per template saves a few seconds of CPU per rewrite.
        """
        if not self.spec.prefix_cache:
            return None
        prefix = template.completion_prefix()
        if prefix not in self.prefixes:
            bare = self.tokenizer(prefix, add_special_tokens=False)["input_ids"]
            # The prefix sits after any leading special tokens (Gemma's <bos>), with the same ids as alone.
            lead = next((k for k in range(3) if ids[k : k + len(bare)] == bare), None)
            entry = None
            if lead is not None:
                prefix_ids = ids[: lead + len(bare)]
                entry = (prefix_ids, self.prefill(prefix_ids))
            else:  # the idea's first token merged with the prefix's last: prefill everything each time
                log.warning("template %s: prefix tokens differ inside full prompts; prefix cache off", template.family)
            self.prefixes[prefix] = entry
            if len(self.prefixes) > MAX_PREFIXES:  # e.g. one per image description: keep the newest
                self.prefixes.pop(next(iter(self.prefixes)))
        entry = self.prefixes[prefix]
        if entry is None or ids[: len(entry[0])] != entry[0] or len(ids) <= len(entry[0]):
            return None
        return self.as_model_cache(entry[1])  # a new cache each time: DynamicCache copies what it is given

    def prefill(self, prefix_ids: list[int]) -> list[tuple]:
        """The keys and values of `prefix_ids`, per layer: read from `prefix_store` when an earlier run saved it, else computed.

        Every layer keeps the whole prefix (no sliding-window trimming; the attention masks still
        apply the window), so the cache can be saved and rebuilt through DynamicCache's public API.
        On a CPU an int8 prefill of Gemma's ~670-token prefix takes several seconds; reading it takes
        milliseconds, which is most of the time to the first token after a restart.
        """
        import torch
        from safetensors.torch import load_file, save_file
        from transformers import DynamicCache

        key_parts = [self.spec.name, self.quantization, self.weights, prefix_ids]
        key = hashlib.sha256(json.dumps(key_parts).encode()).hexdigest()[:20]
        file = self.prefix_store / f"prefix-{key}.safetensors" if self.prefix_store else None
        if file is not None and file.is_file():
            try:
                saved = load_file(file, device=str(self.model.device))
                return [(saved[f"k{i}"], saved[f"v{i}"]) for i in range(len(saved) // 2)]
            except Exception as err:  # a damaged file is recomputed and rewritten
                log.warning("ignoring unreadable prefix cache %s (%s)", file, err)
        cache = DynamicCache()
        with torch.inference_mode():
            self.model(
                input_ids=torch.tensor([prefix_ids], device=self.model.device),
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        if file is not None:
            tensors = {}
            for i, layer in enumerate(cache.layers):
                tensors[f"k{i}"], tensors[f"v{i}"] = layer.keys.contiguous(), layer.values.contiguous()
            staged = file.with_name(f".{file.name}.{os.getpid()}.tmp")
            save_file(tensors, staged)
            os.replace(staged, file)  # atomic: a concurrent reader never sees half a file
        return [(layer.keys, layer.values) for layer in cache.layers]

    def as_model_cache(self, layers: list[tuple]):
        """A new DynamicCache holding a copy of `layers` (whole-prefix keys and values) the way the model's config lays out
        its cache: sliding-window layers keep only their window, so decoding attends over fewer tokens."""
        import torch
        from transformers import DynamicCache

        config = self.model.config.get_text_config(decoder=True)
        types = getattr(config, "layer_types", None) or ["full_attention"] * len(layers)
        window = getattr(config, "sliding_window", None)
        return DynamicCache(
            [
                (k, v, torch.tensor(window)) if kind == "sliding_attention" and window else (k, v)
                for (k, v), kind in zip(layers, types, strict=True)
            ]
        )
