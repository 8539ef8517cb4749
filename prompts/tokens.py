"""Token counts against the target video model's text encoder: exact when its tokenizer is local."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from prompts.cleaning import trim_to_sentence
from prompts.target import RewriteTarget

log = logging.getLogger(__name__)

# umT5/T5 sentencepiece on English prose: ~1.3 pieces per word, punctuation mostly separate.
_PIECES_PER_WORD = 1.3


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    limit: int
    exact: bool

    @property
    def over(self) -> bool:
        return self.tokens > self.limit

    def label(self) -> str:
        approx = "" if self.exact else "≈"
        kind = "" if self.exact else " (estimate: target tokenizer not available locally)"
        return f"{approx}{self.tokens} / {self.limit} tokens{kind}"


class TokenCounter:
    """Counts tokens as the target's text encoder will see them (special tokens included)."""

    def __init__(self, limit: int, tokenizer=None):
        self.limit = limit
        self.tokenizer = tokenizer

    @classmethod
    def for_target(cls, target: RewriteTarget) -> TokenCounter:
        return cls(target.token_limit, target.tokenizer())

    @property
    def exact(self) -> bool:
        return self.tokenizer is not None

    def count(self, text: str) -> TokenCount:
        if self.tokenizer is not None:
            n = len(self.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])
            return TokenCount(n, self.limit, exact=True)
        return TokenCount(estimate_tokens(text), self.limit, exact=False)

    def fit(self, text: str) -> str:
        """The longest prefix of whole sentences within the limit (the caller reports the cut)."""
        while self.count(text).over:
            shorter = trim_to_sentence(text, max_words=max(1, len(text.split()) - 1))
            if shorter == text:  # one enormous sentence: cut words
                shorter = " ".join(text.split()[:-8])
            text = shorter
        return text


def estimate_tokens(text: str) -> int:
    words = len(re.findall(r"[^\W_]+", text))
    punct = len(re.findall(r"[^\w\s]", text))
    return math.ceil(words * _PIECES_PER_WORD) + punct + 1  # +1: end-of-sequence token
