"""Rewriter presets: a registry of frozen specs, one per selectable prompt-rewriting LLM."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

ADAPTERS = Path(__file__).resolve().parent / "adapters"  # committed LoRA adapters of the embedded model


@dataclass(frozen=True)
class RewriterSpec:
    name: str
    source: str  # "hub" | "embedded-gguf" (PyPI package) | "tiny" (built locally)
    hub_id: str | None
    style: str  # "completion": few-shot text for base models | "chat": system prompt + chat turns
    dtype: str
    quantization: dict[str, str]  # device -> method ("nf4", "int8-dynamic", "none")
    max_new_tokens: int  # 150 words are ~200 tokens for these tokenizers; leaves room to finish
    min_new_tokens: int  # no paragraph end before this: ~45 words, so the rewrite reaches 50+
    temperature: float
    top_k: int  # sampling from the top-k only: cheap over a 262k vocabulary, and no rare junk
    repetition_penalty: float
    download_gb: float = 0.0
    is_test_model: bool = False
    cpu_threads: int | None = None  # torch threads while decoding on CPU; None keeps torch's default
    output_vocabulary: str = "full"  # "english": score only English tokens (embedded model; prompts.vocabulary)
    prefix_cache: bool = True  # completion style: compute the few-shot prefix's KV cache once, reuse it
    fast_sampling: bool = True  # prompts.decoding; False: transformers' own sampling (the benchmark's baseline)
    vision: bool = False  # a vision-language model: it sees the reference image (prompts.vision)
    # Completion style: write sentence by sentence and draw a sentence again when prompts.topic finds
    # it faulty (talking to a reader, web-page text, repeats); False writes the paragraph in one go.
    sentence_by_sentence: bool = False
    # Sentence by sentence: fault-free drafts of each sentence, of which the one that best predicts the idea
    # is kept (Rewriter._channel); 1 keeps the first draft that passes.
    sentence_candidates: int = 1
    # Embedded model: a LoRA adapter folder under prompts/adapters/, merged into the weights at load (None: base)
    adapter: str | None = None
    # Embedded model: template family -> the adapter trained to rewrite for it. A target of that family is
    # rewritten by the base model with the adapter merged in, in the training format ("tuned" style, one go,
    # no few-shot text, openers or forced opening); other families keep the base model and their rules.
    tuned: dict[str, str] = field(default_factory=dict)
    # Tuned style: a rewrite that loses a content word of the prompt is written again from the next seed,
    # up to `attempts` tries; then the prompt is kept as written. False: the first rewrite as it is.
    words_check: bool = True
    attempts: int = 2
    # Tuned style: logits added to the tokens of the prompt's content words the rewrite has not used yet
    # (prompts.decoding.KeepWords); 0 turns it off.
    keep_bias: float = 0.0
    keep_ramp: int = 0  # new tokens over which that bias rises from 0 (0: the full bias from the first token)
    keep_bias_step: float = 0.0  # added to that bias on each retry after a rewrite that lost words
    # Tuned style: the sampling temperature (None: `temperature`); the rewrite's template_version records it.
    tuned_temperature: float | None = None

    def tuned_spec(self, adapter: str) -> RewriterSpec:
        """This spec as the tuned path runs it with `adapter` merged: one go in the training format, no few-shot
        prefix, at the tuned temperature."""
        temperature = self.temperature if self.tuned_temperature is None else self.tuned_temperature
        return replace(
            self,
            style="tuned",
            adapter=adapter,
            tuned={},
            sentence_by_sentence=False,
            prefix_cache=False,
            temperature=temperature,
        )

    @property
    def adapter_path(self) -> Path | None:
        return None if self.adapter is None else ADAPTERS / self.adapter


GEMMA_3_270M = RewriterSpec(
    name="gemma-3-270m",
    source="embedded-gguf",
    hub_id=None,
    style="completion",
    dtype="bfloat16",
    # fp32 on CPU: int8 dynamic quantization decodes ~3x faster; on the tuned (Wan) path it scores the same
    # fault rates (ref_f1 0.255 against 0.270 at 0.5), on the rule-based path its rewrites drifted (sim_ref 0.59
    # against 0.69; benchmarks/RESULTS.md). gemma-3-270m-int8 below is that fast path.
    quantization={"cpu": "none", "cuda": "none", "mps": "none"},
    max_new_tokens=240,
    min_new_tokens=70,
    temperature=0.7,
    top_k=40,
    repetition_penalty=1.1,
    # Token-by-token decode of a 270M model is too small to split across cores: on the
    # 2-core dev machine 1 thread decoded 8-12 tokens/s and 2 threads 1.6-2 (benchmarks/RESULTS.md).
    cpu_threads=1,
    output_vocabulary="english",
    sentence_by_sentence=True,
    # One draft of each sentence: two (the better kept) cost ~2x the time for a gain within noise (benchmarks/RESULTS.md).
    sentence_candidates=1,
    # Wan's text-to-video family: the LoRA adapter learned from reference rewrites (prompts/training/lora.py),
    # then a preference step against sentences that add people, sounds or camera moves (training/preference.py).
    tuned={"wan": "gemma-3-270m-wan-dpo"},
    # Chosen on training-split prompts the adapter never saw (not the validation split, not the 40 prompts;
    # benchmarks/RESULTS.md): the first draft kept every word in 0.03 of 30 without the bias, 0.27 at 2.5,
    # 0.77 at 5; ramped biases kept fewer. Of 40 more, 1 was kept as written after three tries at 5, none
    # when each retry adds 2.5.
    keep_bias=5.0,
    keep_bias_step=2.5,
    attempts=3,
    # Chosen the same way, read blind on 40 tuning prompts at 0.7, 0.5, 0.3 and 0.15: 0.5 had the fewest faults
    # a reader counts (90 against 105 at 0.7) and the fewest sent-raw verdicts (10 against 17), a lead within a
    # single reader's noise; on 60 held-out prompts, read blind after the choice, readers preferred it 34 to 23.
    # Lower temperatures raised ref_f1 (0.265 at 0.15) but not the reading (benchmarks/RESULTS.md).
    tuned_temperature=0.5,
)

REWRITER_PRESETS: dict[str, RewriterSpec] = {
    spec.name: spec
    for spec in (
        GEMMA_3_270M,
        # The fast CPU path: int8 weights, the paragraph in one go (the speed figures in benchmarks/RESULTS.md).
        replace(
            GEMMA_3_270M,
            name="gemma-3-270m-int8",
            quantization={**GEMMA_3_270M.quantization, "cpu": "int8-dynamic"},
            sentence_by_sentence=False,
        ),
        RewriterSpec(
            name="qwen2.5-3b-instruct",
            source="hub",
            hub_id="Qwen/Qwen2.5-3B-Instruct",
            style="chat",
            dtype="bfloat16",
            quantization={"cuda": "nf4", "cpu": "nf4", "mps": "none"},
            max_new_tokens=240,
            min_new_tokens=70,
            temperature=0.7,
            top_k=40,
            repetition_penalty=1.05,
            download_gb=6.2,
        ),
        RewriterSpec(
            # Sees the reference image; its language model is Qwen2.5-3B, so it rewrites text prompts too.
            name="qwen2.5-vl-3b-instruct",
            source="hub",
            hub_id="Qwen/Qwen2.5-VL-3B-Instruct",
            style="chat",
            dtype="bfloat16",
            quantization={"cuda": "nf4", "cpu": "none", "mps": "none"},
            max_new_tokens=240,
            min_new_tokens=70,
            temperature=0.7,
            top_k=40,
            repetition_penalty=1.05,
            download_gb=7.5,
            vision=True,
        ),
        RewriterSpec(
            name="tiny-random",
            source="tiny",
            hub_id=None,
            style="chat",
            dtype="float32",
            quantization={"cpu": "none", "cuda": "none", "mps": "none"},
            max_new_tokens=48,
            min_new_tokens=0,
            temperature=0.7,
            top_k=40,
            repetition_penalty=1.0,
            is_test_model=True,
        ),
    )
}


def get_rewriter_spec(name: str) -> RewriterSpec:
    try:
        return REWRITER_PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown rewriter {name!r}; choose one of {', '.join(REWRITER_PRESETS)} (or 'none')"
        ) from None
