"""Cheap per-token decoding steps for large vocabularies, as transformers logits processors.

transformers' own sampling draws an exponential variate for every one of Gemma's 262k logits per
token, and its min-new-tokens rule re-tests the whole vocabulary against the stop ids per token;
together they cost more than the 270M model's forward pass on a CPU. These do the same work on the
top-k candidates and on a precomputed index. Use them with `do_sample=False`: TopKSampler leaves
one finite logit, which greedy selection then picks.
"""

from __future__ import annotations

import torch

from prompts.meaning import holds_quote, quoted_texts
from prompts.preservation import content_words, stem_words, stems


class TopKSampler:
    """Sample from the top-k logits at a temperature; every other logit becomes -inf.

    Same distribution as temperature -> top-k -> softmax -> multinomial over the full vocabulary
    (temperature does not change which k are on top), drawn from torch's global RNG.
    """

    def __init__(self, top_k: int, temperature: float, candidates: torch.Tensor | None = None):
        if top_k < 1 or temperature <= 0:
            raise ValueError(f"top_k must be >= 1 and temperature > 0, got {top_k} and {temperature}")
        self.top_k = top_k
        self.temperature = temperature
        self.candidates = candidates  # token ids that can be finite (an output subset): search only those

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        pool = scores if self.candidates is None else scores.index_select(-1, self.candidates.to(scores.device))
        values, indices = pool.topk(min(self.top_k, pool.shape[-1]), dim=-1)
        if self.candidates is not None:
            indices = self.candidates.to(scores.device)[indices]
        probs = torch.softmax(values.float() / self.temperature, dim=-1)
        picked = indices.gather(-1, torch.multinomial(probs, 1))
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, picked, 0.0)


class HoldStops:
    """Forbid the stop tokens until `min_new_tokens` tokens have been generated."""

    def __init__(self, stop_ids: list[int], prompt_length: int, min_new_tokens: int):
        self.stop_ids = torch.tensor(sorted(set(stop_ids)), dtype=torch.long)
        self.until = prompt_length + min_new_tokens

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[-1] < self.until and len(self.stop_ids):
            scores[:, self.stop_ids.to(scores.device)] = float("-inf")
        return scores


class KeepWords:
    """Add `bias` to the logits of the tokens that start, or continue, a content word of the user's prompt that
    the text has not used yet (rising to it over the first `ramp` new tokens when given); a word's bonus ends once
    its stem is in the text (prompts.preservation).

    A small rewriter drifts off the user's words into its own scene ("a group of campers with a cute dog" came
    back as children on a meadow). The bonus makes those words likelier wherever the model is about to write
    them, without forcing where they go or copying the prompt; the words check after generation still decides.

    Quoted text ("a sign that says "exam today"") is kept as a whole: while the text does not hold a quote, the
    token that continues it gets the bonus once its first token is written, so the words stay together and in
    order ("Exam Today", not "exam papers ... today").
    """

    def __init__(self, tokenizer, prompt: str, prompt_length: int, bias: float, ramp: int = 0):
        words = content_words(prompt)
        self.tokenizer, self.prompt_length, self.bias, self.ramp = tokenizer, prompt_length, bias, ramp
        self.words = [
            (stem, [tokenizer(form, add_special_tokens=False)["input_ids"] for form in (f" {w}", f" {w.capitalize()}")])
            for w, stem in zip(words, stem_words(words), strict=True)
        ]
        self.quotes = [
            (quote, [tokenizer(form, add_special_tokens=False)["input_ids"] for form in _cases(quote)])
            for quote in quoted_texts(prompt)
        ]

    def token_ids(self) -> list[int]:
        """Every token of the words it favours (an output layer must be able to score them: SubsetHead.allow)."""
        every = [ids for _, forms in self.words + self.quotes for ids in forms]
        return sorted({i for ids in every for i in ids})

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row in range(input_ids.shape[0]):
            new = input_ids[row, self.prompt_length :].tolist()
            text = self.tokenizer.decode(new, skip_special_tokens=True) if new else ""  # once a token: a hot path
            have = set(stems(text))
            boost = set()
            for stem, forms in self.words:
                if stem in have:
                    continue
                for ids in forms:
                    # the longest start of the word that the text ends with picks the next piece (none: its first)
                    done = next((k for k in range(len(ids) - 1, 0, -1) if new[-k:] == ids[:k]), 0)
                    boost.add(ids[done])
            # with a ramp, the bonus grows to `bias` over its first `ramp` tokens: the model opens in its own
            # words, and a word still missing later is pressed harder
            bonus = self.bias * min(1.0, (len(new) + 1) / self.ramp) if self.ramp else self.bias
            if boost:
                scores[row, torch.tensor(sorted(boost), device=scores.device)] += bonus
            for quote, forms in self.quotes:
                if not new or holds_quote(text, quote):
                    continue
                # the text ends with the quote's first k tokens: the (k+1)-th continues it, pressed twice as hard
                # as a word (its words alone may already be in the text, out of order)
                after = {ids[k] for ids in forms for k in range(len(ids) - 1, 0, -1) if new[-k:] == ids[:k]}
                if after:
                    scores[row, torch.tensor(sorted(after), device=scores.device)] += 2 * bonus
        return scores


def _cases(quote: str) -> list[str]:
    """How a quote may be written: as typed, capitalised, title-cased or upper-cased, after a space or a quote mark."""
    forms = dict.fromkeys((quote, quote.capitalize(), quote.title(), quote.upper()))
    return [f"{lead}{form}" for form in forms for lead in (" ", "")]
