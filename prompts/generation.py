"""Generation: one seeded draft of a rewrite from a loaded LLM (prompts.llm), streamed as it grows. Which
draft to keep, and what to do when none is usable, is prompts.rewriter's."""

from __future__ import annotations

import copy
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prompts.cleaning import word_count
from prompts.decoding import HoldStops, KeepWords, TopKSampler
from prompts.llm import LLM
from prompts.templates import Template, tuned_prompt
from prompts.topic import fault

log = logging.getLogger(__name__)

MAX_SENTENCE_DRAWS = 4  # tries of one sentence before the description ends without it
MAX_SENTENCE_TOKENS = 60  # a sentence still going after this many tokens is a run-on: drawn again


class Cancelled(Exception):
    """The user pressed Stop."""


@dataclass(frozen=True)
class Draft:
    """What one generation writes: `idea` through `template`, from `seed`."""

    template: Template
    idea: str
    seed: int
    max_words: int = 0  # stop at the first sentence end past this many words (0: the token budget only)
    attempt: int = 0  # which try of the rewrite this is (the tuned path presses harder on lost words)


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


@dataclass
class _Run:
    """One generation's state, from its inputs to the text it emits."""

    ids: object  # the prompt's token ids (a tensor), grown by each accepted sentence
    past: object  # a KV cache of the prompt's start (the few-shot prefix), or None
    stops: list[int]  # token ids that end the paragraph
    watch: _Watch
    emit: Callable[[str], None]  # the new text so far
    opening: str = ""  # the forced opening, before the generated text
    extra: dict = field(default_factory=dict)  # more model inputs (e.g. a vision model's pixel values)
    idea: str | None = None  # sentence by sentence: each judged against the idea (prompts.topic.fault)
    keep: KeepWords | None = None  # the tuned path: favours the prompt's unused words
    allowed: list[int] = field(default_factory=list)  # tokens the output layer may write outside its subset
    prompt_length: int = 0


class Writer:
    """Writes drafts with a loaded LLM: `write(draft, cancel)` yields (text so far, tokens generated)."""

    def __init__(self, llm: LLM):
        self.llm = llm

    def write(self, draft: Draft, cancel: threading.Event | None = None) -> Iterator[tuple[str, int]]:
        """Yield (cleaned text so far, tokens generated) while the model writes.

        With `max_words`, writing stops at the first sentence end past that many words (counting the
        forced opening): the rewrite reaches its target length without tokens that would be trimmed.
        With the spec's `sentence_by_sentence` (completion style), a sentence prompts.topic finds
        faulty is drawn again (`_write`); the text shown shrinks back meanwhile.
        """
        import torch

        llm = self.llm
        with llm.lock:
            # 1. The model on its device, and the draft's inputs in the spec's style
            llm.ensure_on_device()
            events: queue.Queue = queue.Queue()
            run = self._inputs(draft, cancel, events.put)

            # 2. Generate in a worker thread; its text arrives through `events`
            def work():
                threads = torch.get_num_threads()
                try:
                    if llm.device == "cpu" and llm.spec.cpu_threads:
                        torch.set_num_threads(llm.spec.cpu_threads)
                    torch.manual_seed(draft.seed)
                    with torch.inference_mode():
                        self._write(run)
                except BaseException as err:  # re-raised in the caller's thread below
                    events.put(err)
                finally:
                    torch.set_num_threads(threads)
                    events.put(None)

            worker = threading.Thread(target=work, daemon=True)
            worker.start()

            # 3. Stream it
            while (event := events.get()) is not None:
                if isinstance(event, BaseException):
                    worker.join()
                    raise event
                yield run.opening + event, run.watch.tokens
            worker.join()
            if cancel is not None and cancel.is_set():
                raise Cancelled()

    def _inputs(self, draft: Draft, cancel: threading.Event | None, emit: Callable[[str], None]) -> _Run:
        """The model's inputs for `draft` in the spec's style: tuned (the adapter's format, in one go), completion
        (a few-shot prefix with its cached keys and values, a forced opening) or chat."""
        spec, tok = self.llm.spec, self.llm.tokenizer
        keep, allowed, idea, opening, past = None, [], None, "", None
        if spec.style == "tuned":  # the adapter's own format: the rewrite in one go, no prefix to cache
            inputs, stop_ids = tok(tuned_prompt(draft.idea), return_tensors="pt"), self.llm.paragraph_end_ids()
            # each retry presses harder on the words the last try lost (RewriterSpec.keep_bias_step)
            bias = spec.keep_bias + draft.attempt * spec.keep_bias_step
            prompt_length = inputs["input_ids"].shape[-1]
            words = KeepWords(tok, draft.idea, prompt_length, bias, spec.keep_ramp)
            keep = words if bias else None
            # every token of the user's words can be written, in the output layer's subset or not
            allowed = words.token_ids() + tok(draft.idea, add_special_tokens=False)["input_ids"]
        elif spec.style == "completion":
            text, opening = draft.template.completion_prompt(draft.idea)
            inputs = tok(text, return_tensors="pt")
            past = self.llm.prefix_cache(draft.template, inputs["input_ids"][0].tolist())
            # One paragraph: a newline ends it (and would start the next few-shot block).
            stop_ids = self.llm.paragraph_end_ids()
            idea = draft.idea if spec.sentence_by_sentence else None
        else:
            inputs = tok.apply_chat_template(
                draft.template.chat_messages(draft.idea), add_generation_prompt=True, return_tensors="pt",
                return_dict=True,
            )  # fmt: skip
            stop_ids = []
        device = self.llm.model.device
        ids = inputs["input_ids"].to(device)
        max_words = max(0, draft.max_words - len(opening.split())) if draft.max_words else 0
        return _Run(
            ids=ids,
            past=past,
            stops=[*self.llm.eos_ids(), *stop_ids],
            watch=_Watch(cancel, tok, ids.shape[-1], max_words),
            emit=emit,
            opening=opening,
            extra={k: v.to(device) for k, v in inputs.items() if k not in ("input_ids", "attention_mask")},
            idea=idea,
            keep=keep,
            allowed=allowed,
            prompt_length=ids.shape[-1],
        )

    def sampling(self, run: _Run) -> dict:
        """generate() arguments for seeded top-k sampling that holds the stop tokens for min_new_tokens."""
        spec, model = self.llm.spec, self.llm.model
        keep = [run.keep] if run.keep is not None else []
        head = model.get_output_embeddings()
        if hasattr(head, "allow"):  # an English-only output layer (prompts.vocabulary.SubsetHead)
            head.allow(run.allowed, model.get_input_embeddings().weight)
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
                HoldStops(run.stops, run.prompt_length, spec.min_new_tokens),
                *keep,
                # with an English output layer, the top-k search covers only the tokens it can score
                TopKSampler(spec.top_k, spec.temperature, head.candidates() if hasattr(head, "candidates") else None),
            ],
        )

    def _call(self, run: _Run, cache, criteria: list, max_new_tokens: int, kept: list[int]):
        """One generate() call after `run.ids`, streaming `kept` plus the new tokens to `run.emit`."""
        import torch

        spec, tok = self.llm.spec, self.llm.tokenizer

        class Stream:  # generate()'s streamer: the prompt first, then each new token
            def __init__(self):
                self.new = None

            def put(self, value):
                if self.new is None:
                    self.new = []
                    return
                self.new += value.reshape(-1).tolist()
                run.emit(tok.decode(kept + self.new, skip_special_tokens=True))

            def end(self):
                pass

        return self.llm.model.generate(
            input_ids=run.ids,
            **run.extra,
            attention_mask=torch.ones_like(run.ids),
            **self.sampling(run),
            repetition_penalty=spec.repetition_penalty,
            max_new_tokens=max_new_tokens,
            stopping_criteria=criteria,
            eos_token_id=run.stops,
            streamer=Stream(),
            past_key_values=cache,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        )

    def _write(self, run: _Run) -> None:
        """Generate after `run.ids`, emitting the new text as it grows.

        Without an `idea`: one generate() call. With one (the spec's `sentence_by_sentence`): a call per
        sentence, each judged by prompts.topic.fault before the next starts. A faulty sentence, or one
        still going after MAX_SENTENCE_TOKENS, is drawn again from the same point, up to
        MAX_SENTENCE_DRAWS times; then the description ends before it (the checks after generation
        still apply: too short is a fallback). With the spec's `sentence_candidates` N, up to N drafts
        that pass are drawn (within the same MAX_SENTENCE_DRAWS refusals) and `channel` picks one.
        """
        if run.idea is None:
            self._call(run, run.past, [run.watch], self.llm.spec.max_new_tokens, [])
            return
        kept: list[int] = []
        try:
            self._sentences(run, kept)
        finally:  # the last sentence shown may have been refused
            run.emit(self.llm.tokenizer.decode(kept, skip_special_tokens=True))

    def _sentences(self, run: _Run, kept: list[int]) -> None:
        """The sentence loop of `_write`; `kept` (the accepted new tokens) grows in place."""
        import torch
        from transformers import DynamicCache

        spec, tok, model = self.llm.spec, self.llm.tokenizer, self.llm.model
        watch = run.watch
        max_words, watch.max_words = watch.max_words, 0  # counted here, over accepted sentences only
        ends = _SentenceEnd(tok, run.stops)
        past = run.past if run.past is not None else DynamicCache(config=model.config)
        draws = 0  # tries of the current sentence
        while len(kept) < spec.max_new_tokens:
            ids = run.ids
            if past.get_seq_length() < ids.shape[-1] - 1:  # the prompt after the cached prefix, once
                model(input_ids=ids[:, past.get_seq_length() : -1], past_key_values=past, use_cache=True)
            limit = min(MAX_SENTENCE_TOKENS, spec.max_new_tokens - len(kept))
            written = run.opening + tok.decode(kept, skip_special_tokens=True)
            drafts: list[tuple[list[int], str, DynamicCache]] = []  # fault-free (tokens, text, cache)
            while len(drafts) < max(1, spec.sentence_candidates) and draws < MAX_SENTENCE_DRAWS:
                trial = copy.deepcopy(past)  # `past` stays as it is in case this draft is refused
                out = self._call(run, trial, [watch, ends], limit, kept)
                if watch.stopped:  # cancelled
                    return
                new = out[0, ids.shape[-1] :].tolist()
                sentence = tok.decode(new, skip_special_tokens=True)
                if not sentence.strip():  # the paragraph ends here, unless a draft of this sentence passed
                    if not drafts:
                        return
                    draws += 1
                    continue
                why = fault(sentence, written, run.idea)
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
                run.emit(tok.decode(kept, skip_special_tokens=True))  # the drafts shown meanwhile go
                scores = self.channel([text for _, text, _ in drafts], run.idea)
                drafts = [drafts[max(range(len(drafts)), key=scores.__getitem__)]]
            new, _, trial = drafts[0]
            kept += new
            run.emit(tok.decode(kept, skip_special_tokens=True))
            if new[-1] in run.stops or (max_words and word_count(tok.decode(kept, skip_special_tokens=True)) >= max_words):
                return
            # the trial cache holds the sentence but its last token, as generate leaves it
            run.ids, past, draws = torch.cat([ids, torch.tensor([new], device=ids.device)], dim=1), trial, 0

    def channel(self, sentences: list[str], idea: str) -> list[float]:
        """How well each sentence predicts the idea: the log-probability of the idea's tokens after
        "Description: <sentence>\\nIdea:", under the rewriter's own model (one forward pass each).

        A draft that wanders to other people, places or things makes the idea less likely than one
        that stays on it. Tokens the output layer cannot score (prompts.vocabulary) count for no draft.
        """
        import torch

        tok, model = self.llm.tokenizer, self.llm.model
        idea_ids = tok(" " + idea.strip(), add_special_tokens=False)["input_ids"]
        target = torch.tensor(idea_ids, device=model.device)[:, None]
        scores = []
        for sentence in sentences:
            context = tok(f"Description: {sentence.strip()}\nIdea:")["input_ids"]
            ids = torch.tensor([context + idea_ids], device=model.device)
            with torch.inference_mode():
                logits = model(input_ids=ids, logits_to_keep=len(idea_ids) + 1).logits[0, :-1]
            logp = torch.log_softmax(logits.float(), -1).gather(-1, target).squeeze(-1)
            scores.append(float(logp[torch.isfinite(logp)].sum()))
        return scores
