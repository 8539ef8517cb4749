"""The prompt rewriter: load an LLM preset, stream a seeded rewrite, return a structured result."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple

from prompts.cleaning import check_prompt, clean, has_loop, trim_to_sentence, word_count, words_label
from prompts.decoding import HoldStops, KeepWords, TopKSampler
from prompts.language import looks_english
from prompts.preservation import missing_words
from prompts.presets import RewriterSpec
from prompts.target import RewriteTarget
from prompts.templates import Template, load_template, opening_from_idea, tuned_prompt
from prompts.tokens import TokenCounter
from prompts.topic import shown_as_text
from runtime.devices import bitsandbytes_supported, free_accelerator_memory, torch_dtype
from runtime.hub import cache_root, ensure_downloaded
from runtime.tiny import ensure_tiny

log = logging.getLogger(__name__)

MAX_PREFIXES = 4  # few-shot prefix KV caches kept (~25 MB each for Gemma 3 270M)
MAX_ATTEMPTS = 2  # a second seed when the first output is unusable; more costs too much on CPU
MAX_SENTENCE_DRAWS = 4  # tries of one sentence before the description ends without it
MAX_SENTENCE_TOKENS = 60  # a sentence still going after this many tokens is a run-on: drawn again


class Cancelled(Exception):
    """The user pressed Stop."""


@dataclass(frozen=True)
class RewriteResult:
    prompt: str  # the user's prompt
    rewritten: str  # what the video model will read (the user's prompt on fallback)
    rewriter: str
    target: str
    template_version: str
    seed: int
    tokens: int  # target text-encoder tokens of `rewritten`
    tokens_exact: bool
    token_limit: int
    words: int
    new_tokens: int  # tokens the LLM generated
    seconds: float
    fallback: str | None  # why the user's prompt was kept; None when the rewrite is used
    notes: tuple[str, ...] = ()  # visible adjustments, e.g. sentences dropped to fit the limit

    def to_dict(self) -> dict:
        return asdict(self)


class Partial(NamedTuple):
    """The rewrite so far, while the model writes."""

    text: str
    tokens: int  # tokens generated so far
    max_tokens: int


class _Watch:
    """A stopping criterion: counts tokens, stops when the user cancels or a sentence ends past `max_words`."""

    def __init__(self, cancel: threading.Event | None, tokenizer=None, prompt_length: int = 0, max_words: int = 0):
        self.cancel = cancel
        self.tokens = 0
        self.stopped = False
        self.tokenizer, self.prompt_length, self.max_words = tokenizer, prompt_length, max_words

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        self.tokens += 1
        stop = self.cancel is not None and self.cancel.is_set()
        if not stop and self.max_words and self.tokenizer is not None:
            last = self.tokenizer.decode(input_ids[0, -1:])
            if last.rstrip().endswith((".", "!", "?")):  # only then is the whole text decoded and counted
                text = self.tokenizer.decode(input_ids[0, self.prompt_length :], skip_special_tokens=True)
                stop = len(text.split()) >= self.max_words
        self.stopped = stop
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class _SentenceEnd:
    """A stopping criterion: the last token closes a sentence or the paragraph."""

    def __init__(self, tokenizer, stops: list[int]):
        self.tokenizer, self.stops = tokenizer, set(stops)
        self._closes: dict[int, bool] = {}

    def closes(self, token: int) -> bool:
        if token not in self._closes:
            text = self.tokenizer.decode([token]).rstrip()
            self._closes[token] = token in self.stops or text.endswith((".", "!", "?"))
        return self._closes[token]

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        ended = [self.closes(int(t)) for t in input_ids[:, -1]]
        return torch.tensor(ended, dtype=torch.bool, device=input_ids.device)


class Rewriter:
    """A loaded rewriting LLM. Use `Rewriter.load(spec, device)`; tests hand it tiny models."""

    def __init__(self, spec: RewriterSpec, model, tokenizer, device: str, quantization: str):
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.quantization = quantization
        self._lock = threading.Lock()  # one generation at a time: seeding uses torch's global RNG
        self._counters: dict[str, TokenCounter] = {}
        self._offloaded = False
        self._stop_ids: list[int] | None = None
        self.prefix_store: Path | None = None  # folder where prefix KV caches persist across runs (or None)
        self.weights = "base"  # which weights: "base", or the hash of the adapter merged in (cache keys hold it)
        self._prefixes: dict[str, tuple[list[int], object] | None] = {}  # prefix text -> (ids, KV cache)
        self._tuned: dict[str, Rewriter] = {}  # adapter name -> this model with it merged (spec.tuned), loaded on first use
        self._tuned_lock = threading.Lock()
        self._keep: tuple[str, float] | None = None  # tuned style: (the prompt whose words KeepWords favours, its bias)
        self._prompt_ids: list[int] = []  # and its tokens, which the output layer may then write

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: RewriterSpec, device: str) -> Rewriter:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quant = spec.quantization.get(device, "none")
        if spec.source == "embedded-gguf":
            from prompts.embedded import adapter_hash, gemma_cache_path, load_gemma_270m

            model, tokenizer = load_gemma_270m(
                cache_root(), device=device, quantize=quant, vocabulary=spec.output_vocabulary,
                adapter=spec.adapter_path,
            )
            rewriter = cls(spec, model, tokenizer, device, quant)
            rewriter.prefix_store = gemma_cache_path(cache_root())
            if spec.adapter_path is not None:
                rewriter.weights = f"adapter-{adapter_hash(spec.adapter_path)}"
            return rewriter
        if spec.source == "tiny":
            folder = ensure_tiny("lm", cache_root())
        else:
            folder = ensure_downloaded(spec.hub_id, spec.download_gb)
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

    def describe(self) -> str:
        tuned = "".join(f", {adapter} for {family} targets" for family, adapter in self.spec.tuned.items())
        return (
            f"{self.spec.name} on {self.device} ({self.quantization if self.quantization != 'none' else 'unquantized'}"
            f"{tuned})"
        )

    def version_for(self, target: RewriteTarget) -> str:
        """The template_version its rewrites for `target` record (what reproduces them)."""
        tuned = self.tuned_for(target.template_family)
        return (tuned or self)._version(load_template(target.template_family))

    def _version(self, template: Template) -> str:
        # a tuned rewrite is reproduced by the adapter (its hash), not by a template's text
        return f"{self.spec.adapter} ({self.weights})" if self.spec.style == "tuned" else template.version

    def tuned_for(self, family: str) -> Rewriter | None:
        """The rewriter that serves template `family` with the adapter the spec names for it (loaded on first
        use: a second copy of the model, with the adapter merged in), or None when the family has none."""
        adapter = self.spec.tuned.get(family)
        if adapter is None:
            return None
        with self._tuned_lock:
            if adapter not in self._tuned:
                spec = replace(
                    self.spec, style="tuned", adapter=adapter, tuned={}, sentence_by_sentence=False, prefix_cache=False
                )
                self._tuned[adapter] = Rewriter.load(spec, self.device)
            return self._tuned[adapter]

    def release_accelerator(self) -> None:
        """Free accelerator memory before the video model runs (moved back on the next rewrite)."""
        for tuned in self._tuned.values():
            tuned.release_accelerator()
        if self.device == "cpu" or self._offloaded:
            return
        self._prefixes.clear()
        try:
            self.model.to("cpu")
        except Exception as err:  # some quantized layouts refuse to move; fall back to dropping it
            log.warning("could not move %s to CPU (%s); it will be reloaded", self.spec.name, err)
            self.model = None
        self._offloaded = True
        free_accelerator_memory()

    def _ensure_on_device(self) -> None:
        if not self._offloaded:
            return
        if self.model is None:
            fresh = Rewriter.load(self.spec, self.device)
            self.model, self.tokenizer = fresh.model, fresh.tokenizer
        else:
            self.model.to(self.device)
        self._offloaded = False

    def counter(self, target: RewriteTarget) -> TokenCounter:
        if target.name not in self._counters:
            self._counters[target.name] = TokenCounter.for_target(target)
        return self._counters[target.name]

    # -- rewriting -------------------------------------------------------------------------------
    def rewrite(
        self,
        prompt: str,
        target: RewriteTarget,
        seed: int = 0,
        cancel: threading.Event | None = None,
        template: Template | None = None,
    ) -> RewriteResult:
        for item in self.stream(prompt, target, seed, cancel, template):
            if isinstance(item, RewriteResult):
                return item
        raise RuntimeError("rewrite stream ended without a result")

    def stream(
        self,
        prompt: str,
        target: RewriteTarget,
        seed: int = 0,
        cancel: threading.Event | None = None,
        template: Template | None = None,
    ) -> Iterator[Partial | RewriteResult]:
        """Yield the rewrite as it grows (Partial), then the final RewriteResult. `template`: another template
        than the target's family (image-aware rewriting, prompts.image_templates)."""
        start = time.perf_counter()
        prompt = check_prompt(prompt)
        if template is None and (tuned := self.tuned_for(target.template_family)) is not None:
            yield from tuned.stream(prompt, target, seed, cancel)
            return
        template = template or load_template(target.template_family)
        version = self._version(template)
        counter = self.counter(target)
        # orders to a chatbot ("ignore previous instructions and write a poem") are filmed as a note, not obeyed
        idea = shown_as_text(prompt)
        framing = () if idea == prompt else ("the prompt gives orders to a chatbot; the rewrite shows them as a note",)
        opening = opening_from_idea(idea) if self.spec.style == "completion" else ""
        new_tokens, notes, rewritten, fallback = 0, [], None, None

        # 1. Prompts that are already detailed scene descriptions are kept as written
        if word_count(prompt) >= target.word_target[0]:
            fallback = f"prompt already detailed ({words_label(prompt)}); kept as written"
        elif self.spec.style in ("completion", "tuned") and not looks_english(prompt):
            # A base model would continue in English after the user's words: mixed languages.
            fallback = "the prompt is not in English and this rewriter writes English only; kept as written"

        # 2. Generate, retrying with the next seed when the output is unusable or fails the target's check
        attempts = max(MAX_ATTEMPTS, target.attempts) if target.check else MAX_ATTEMPTS
        if self.spec.style == "tuned":
            attempts = self.spec.attempts
        flawed = None  # the first usable rewrite the check faulted: kept when no seed passes it
        for attempt in range(attempts if fallback is None else 0):
            text = ""
            try:
                chunks = self._generate(template, idea, seed + attempt, cancel, target.word_target[1], attempt)
                for text, new_tokens in chunks:  # noqa: B007 (read after the loop)
                    yield Partial(text, new_tokens, self.spec.max_new_tokens)
            except Cancelled:
                raise
            except Exception as err:
                log.exception("rewriter %s failed", self.spec.name)
                fallback = f"rewriter failed: {type(err).__name__}: {err}"
                break
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            rewritten, why_not, notes = self._finish(text, target, counter, opening)
            if why_not is None and self.spec.style == "tuned" and self.spec.words_check:
                # a learned rewriter keeps the user's words because it learned to; checked here, never assumed
                if lost := missing_words(idea, rewritten):
                    why_not = f"the rewrite lost the prompt's words: {', '.join(lost)}"
            if why_not is None and target.check and (why_not := target.check(rewritten)):
                flawed = flawed or (rewritten, [*notes, f"{why_not}; no better in {attempts} tries"])
            if why_not is None:
                fallback = None
                break
            fallback, rewritten = why_not, None
        if rewritten is None and flawed is not None:
            (rewritten, notes), fallback = flawed, None

        # 3. Result; on fallback the user's prompt goes to the video model unchanged
        final = rewritten if rewritten is not None else prompt
        count = counter.count(final)
        yield RewriteResult(
            prompt=prompt,
            rewritten=final,
            rewriter=self.spec.name,
            target=target.name,
            template_version=version,
            seed=seed,
            tokens=count.tokens,
            tokens_exact=count.exact,
            token_limit=count.limit,
            words=word_count(final),
            new_tokens=new_tokens,
            seconds=round(time.perf_counter() - start, 3),
            fallback=fallback,
            notes=(*framing, *notes) if rewritten is not None else tuple(notes),
        )

    def _finish(
        self, text: str, target: RewriteTarget, counter: TokenCounter, opening: str = ""
    ) -> tuple[str, str | None, list[str]]:
        """Clean and check one output. Returns (text, reason it is unusable or None, notes)."""
        notes = []
        low, high = target.word_range
        text = clean(text, opening)
        if has_loop(text):
            return text, "the rewriter repeated itself", notes
        text = trim_to_sentence(text, max_words=high)
        if target.repair:
            text, note = target.repair(text, opening)
            notes += [note] if note else []
        if not text:
            return text, "the rewriter returned nothing usable", notes
        if counter.count(text).over:
            text = counter.fit(text)
            notes.append(f"last sentences dropped to fit the {counter.limit}-token limit")
        if not looks_english(text):
            return text, "the rewrite was not in English", notes
        if word_count(text) < low:
            return text, f"the rewrite was too short ({words_label(text)}; {low}-{high} expected)", notes
        if not text.endswith((".", "!", "?", '"', "”")):
            text += "."
        return text, None, notes

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        return eos or [self.tokenizer.eos_token_id]

    def _paragraph_end_ids(self) -> list[int]:
        """Token ids that contain a line break (computed once from the vocabulary, not per token).

        Ending generation on these ids, instead of transformers' stop_strings, avoids rebuilding a
        string-matching table over the whole (262k for Gemma) vocabulary on every call.
        """
        if self._stop_ids is None:
            from prompts.vocabulary import line_break_ids

            # Saved beside the prefix caches, so a restart does not list the vocabulary again.
            self._stop_ids = line_break_ids(
                self.tokenizer, self.prefix_store and self.prefix_store / "paragraph-ends.json"
            )
        return self._stop_ids

    def _prefix_cache(self, template: Template, ids: list[int]):
        """A copy of the few-shot prefix's KV cache when `ids` starts with that prefix, else None.

        The prefix (instructions and examples, ~650 tokens for Gemma) is the same for every idea:
        prefilling it once per template saves a few seconds of CPU per rewrite.
        """
        if not self.spec.prefix_cache:
            return None
        prefix = template.completion_prefix()
        if prefix not in self._prefixes:
            bare = self.tokenizer(prefix, add_special_tokens=False)["input_ids"]
            # The prefix sits after any leading special tokens (Gemma's <bos>), with the same ids as alone.
            lead = next((k for k in range(3) if ids[k : k + len(bare)] == bare), None)
            entry = None
            if lead is not None:
                prefix_ids = ids[: lead + len(bare)]
                entry = (prefix_ids, self._prefill(prefix_ids))
            else:  # the idea's first token merged with the prefix's last: prefill everything each time
                log.warning("template %s: prefix tokens differ inside full prompts; prefix cache off", template.family)
            self._prefixes[prefix] = entry
            if len(self._prefixes) > MAX_PREFIXES:  # e.g. one per image description: keep the newest
                self._prefixes.pop(next(iter(self._prefixes)))
        entry = self._prefixes[prefix]
        if entry is None or ids[: len(entry[0])] != entry[0] or len(ids) <= len(entry[0]):
            return None
        return self._as_model_cache(entry[1])  # a new cache each time: DynamicCache copies what it is given

    def _sampling(self, stops: list[int], prompt_length: int) -> dict:
        """generate() arguments for seeded top-k sampling that holds the stop tokens for min_new_tokens."""
        spec = self.spec
        keep, allowed = [], []
        if self._keep is not None:  # the tuned path: the user's words
            words = KeepWords(self.tokenizer, self._keep[0], prompt_length, self._keep[1], spec.keep_ramp)
            keep = [words] if self._keep[1] else []
            allowed = words.token_ids() + self._prompt_ids
        head = self.model.get_output_embeddings()
        if hasattr(head, "allow"):  # an English-only output layer (prompts.vocabulary.SubsetHead)
            # every token of the user's words can be written, in the subset or not
            head.allow(allowed, self.model.get_input_embeddings().weight)
        if not spec.fast_sampling:
            return dict(
                do_sample=True,
                temperature=spec.temperature,
                top_k=spec.top_k,
                top_p=1.0,
                min_new_tokens=spec.min_new_tokens,
                logits_processor=keep,
            )
        return dict(
            do_sample=False,  # TopKSampler samples; greedy selection then takes its one finite logit
            logits_processor=[
                HoldStops(stops, prompt_length, spec.min_new_tokens),
                *keep,
                # with an English output layer, the top-k search covers only the tokens it can score
                TopKSampler(spec.top_k, spec.temperature, head.candidates() if hasattr(head, "candidates") else None),
            ],
        )

    def _prefill(self, prefix_ids: list[int]) -> list[tuple]:
        """The keys and values of `prefix_ids`, per layer: read from `prefix_store` when an earlier run saved it, else computed.

        Every layer keeps the whole prefix (no sliding-window trimming; the attention masks still
        apply the window), so the cache can be saved and rebuilt through DynamicCache's public API.
        On a CPU an int8 prefill of Gemma's ~670-token prefix takes several seconds; reading it takes
        milliseconds, which is most of the time to the first token after a restart.
        """
        import hashlib

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

    def _as_model_cache(self, layers: list[tuple]):
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

    def _generate(
        self, template: Template, prompt: str, seed: int, cancel: threading.Event | None, max_words: int = 0, attempt: int = 0
    ):
        """Yield (cleaned text so far, tokens generated) while the model writes.

        With `max_words`, writing stops at the first sentence end past that many words (counting the
        forced opening): the rewrite reaches its target length without tokens that would be trimmed.
        With the spec's `sentence_by_sentence` (completion style), a sentence prompts.topic finds
        faulty is drawn again (`_write`); the text shown shrinks back meanwhile.
        """
        import queue

        import torch

        with self._lock:
            self._ensure_on_device()
            tok = self.tokenizer
            idea = None
            self._keep, self._prompt_ids = None, []  # set per generation, under the lock
            if self.spec.style == "tuned":  # the adapter's own format: the rewrite in one go, no prefix to cache
                opening, past, stop_ids = "", None, self._paragraph_end_ids()
                inputs = tok(tuned_prompt(prompt), return_tensors="pt")
                # each retry presses harder on the words the last try lost (RewriterSpec.keep_bias_step)
                self._keep = (prompt, self.spec.keep_bias + attempt * self.spec.keep_bias_step)
                self._prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            elif self.spec.style == "completion":
                text, opening = template.completion_prompt(prompt)
                inputs = tok(text, return_tensors="pt")
                past = self._prefix_cache(template, inputs["input_ids"][0].tolist())
                # One paragraph: a newline ends it (and would start the next few-shot block).
                stop_ids = self._paragraph_end_ids()
                idea = prompt if self.spec.sentence_by_sentence else None
            else:
                opening = ""
                inputs = tok.apply_chat_template(
                    template.chat_messages(prompt), add_generation_prompt=True, return_tensors="pt", return_dict=True
                )
                stop_ids = []
                past = None
            extra = {k: v.to(self.model.device) for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
            ids = inputs["input_ids"].to(self.model.device)  # extra: e.g. a vision model's pixel values
            opening_words = len(opening.split())
            watch = _Watch(cancel, tok, ids.shape[-1], max(0, max_words - opening_words) if max_words else 0)
            events: queue.Queue = queue.Queue()

            stops = [*self._eos_ids(), *stop_ids]

            def run():
                threads = torch.get_num_threads()
                try:
                    if self.device == "cpu" and self.spec.cpu_threads:
                        torch.set_num_threads(self.spec.cpu_threads)
                    torch.manual_seed(seed)
                    with torch.inference_mode():
                        self._write(ids, past, stops, watch, idea, events.put, opening, extra)
                except BaseException as err:  # re-raised in the caller's thread below
                    events.put(err)
                finally:
                    torch.set_num_threads(threads)
                    events.put(None)

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            while (event := events.get()) is not None:
                if isinstance(event, BaseException):
                    worker.join()
                    raise event
                yield opening + event, watch.tokens
            worker.join()
            if cancel is not None and cancel.is_set():
                raise Cancelled()

    def _write(
        self,
        ids,
        past,
        stops: list[int],
        watch: _Watch,
        idea: str | None,
        emit,
        opening: str = "",
        extra=None,
    ) -> None:
        """Generate after `ids`, calling `emit` with the new text as it grows.

        Without an `idea`: one generate() call. With one (the spec's `sentence_by_sentence`): a call per
        sentence, each judged by prompts.topic.fault before the next starts. A faulty sentence, or one
        still going after MAX_SENTENCE_TOKENS, is drawn again from the same point, up to
        MAX_SENTENCE_DRAWS times; then the description ends before it (the checks after generation
        still apply: too short is a fallback). With the spec's `sentence_candidates` N, up to N drafts
        that pass are drawn (within the same MAX_SENTENCE_DRAWS refusals) and `_channel` picks one.
        """
        import torch

        spec, tok = self.spec, self.tokenizer
        prompt_length = ids.shape[-1]

        class Stream:  # generate()'s streamer: the prompt first, then each new token
            def __init__(self, kept: list[int]):
                self.kept, self.new = kept, None

            def put(self, value):
                if self.new is None:
                    self.new = []
                    return
                self.new += value.reshape(-1).tolist()
                emit(tok.decode(self.kept + self.new, skip_special_tokens=True))

            def end(self):
                pass

        def call(ids, cache, criteria, max_new_tokens: int, kept: list[int], **extra):
            return self.model.generate(
                input_ids=ids,
                **extra,
                attention_mask=torch.ones_like(ids),
                **self._sampling(stops, prompt_length),
                repetition_penalty=spec.repetition_penalty,
                max_new_tokens=max_new_tokens,
                stopping_criteria=criteria,
                eos_token_id=stops,
                streamer=Stream(kept),
                past_key_values=cache,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            )

        if idea is None:
            call(ids, past, [watch], spec.max_new_tokens, [], **(extra or {}))
            return
        kept: list[int] = []
        try:
            self._sentences(ids, past, idea, call, watch, kept, stops, emit, opening)
        finally:  # the last sentence shown may have been refused
            emit(tok.decode(kept, skip_special_tokens=True))

    def _sentences(self, ids, past, idea: str, call, watch: _Watch, kept: list[int], stops, emit, opening: str):
        """The sentence loop of `_write`; `kept` (the accepted new tokens) grows in place."""
        import copy

        import torch
        from transformers import DynamicCache

        from prompts.topic import fault

        spec, tok = self.spec, self.tokenizer
        max_words, watch.max_words = watch.max_words, 0  # counted here, over accepted sentences only
        ends = _SentenceEnd(tok, stops)
        past = past if past is not None else DynamicCache(config=self.model.config)
        draws = 0  # tries of the current sentence
        while len(kept) < spec.max_new_tokens:
            if past.get_seq_length() < ids.shape[-1] - 1:  # the prompt after the cached prefix, once
                self.model(input_ids=ids[:, past.get_seq_length() : -1], past_key_values=past, use_cache=True)
            limit = min(MAX_SENTENCE_TOKENS, spec.max_new_tokens - len(kept))
            written = opening + tok.decode(kept, skip_special_tokens=True)
            drafts: list[tuple[list[int], str, DynamicCache]] = []  # fault-free (tokens, text, cache)
            while len(drafts) < max(1, spec.sentence_candidates) and draws < MAX_SENTENCE_DRAWS:
                trial = copy.deepcopy(past)  # `past` stays as it is in case this draft is refused
                out = call(ids, trial, [watch, ends], limit, kept)
                if watch.stopped:  # cancelled
                    return
                new = out[0, ids.shape[-1] :].tolist()
                sentence = tok.decode(new, skip_special_tokens=True)
                if not sentence.strip():  # the paragraph ends here, unless a draft of this sentence passed
                    if not drafts:
                        return
                    draws += 1
                    continue
                why = fault(sentence, written, idea)
                if why is None and not ends.closes(new[-1]):
                    why = "a run-on sentence"
                log.debug("sentence %r: %s", sentence, why or "kept")
                if why is None:
                    drafts.append((new, sentence, trial))
                else:
                    draws += 1
            if not drafts:
                return
            if len(drafts) > 1:
                emit(tok.decode(kept, skip_special_tokens=True))  # the drafts shown meanwhile go
                scores = self._channel([text for _, text, _ in drafts], idea)
                drafts = [drafts[max(range(len(drafts)), key=scores.__getitem__)]]
            new, _, trial = drafts[0]
            kept += new
            emit(tok.decode(kept, skip_special_tokens=True))
            if new[-1] in stops or (max_words and word_count(tok.decode(kept, skip_special_tokens=True)) >= max_words):
                return
            # the trial cache holds the sentence but its last token, as generate leaves it
            ids, past, draws = torch.cat([ids, torch.tensor([new], device=ids.device)], dim=1), trial, 0

    def _channel(self, sentences: list[str], idea: str) -> list[float]:
        """How well each sentence predicts the idea: the log-probability of the idea's tokens after
        "Description: <sentence>\\nIdea:", under the rewriter's own model (one forward pass each).

        A draft that wanders to other people, places or things makes the idea less likely than one
        that stays on it. Tokens the output layer cannot score (prompts.vocabulary) count for no draft.
        """
        import torch

        tok = self.tokenizer
        idea_ids = tok(" " + idea.strip(), add_special_tokens=False)["input_ids"]
        target = torch.tensor(idea_ids, device=self.model.device)[:, None]
        scores = []
        for sentence in sentences:
            context = tok(f"Description: {sentence.strip()}\nIdea:")["input_ids"]
            ids = torch.tensor([context + idea_ids], device=self.model.device)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, logits_to_keep=len(idea_ids) + 1).logits[0, :-1]
            logp = torch.log_softmax(logits.float(), -1).gather(-1, target).squeeze(-1)
            scores.append(float(logp[torch.isfinite(logp)].sum()))
        return scores

