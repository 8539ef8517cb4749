"""Does a rewrite keep the user's words? Content words compared by their Snowball English stems."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")


@cache
def stopwords() -> frozenset[str]:
    text = (Path(__file__).parent / "stopwords.txt").read_text(encoding="utf-8")
    return frozenset(w for line in text.splitlines() if not line.startswith("#") for w in line.split())


@cache
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def stems(text: str) -> list[str]:
    return stem_words(_WORD.findall(text))


def stem_words(words: list[str]) -> list[str]:
    """The stem of each word, in order (one stem a word, whatever its punctuation)."""
    return _stemmer().stemWords([w.lower().replace("’", "'") for w in words])


def content_words(text: str) -> list[str]:
    return [w for w in (w.lower().replace("’", "'") for w in _WORD.findall(text)) if w not in stopwords()]


def missing_words(prompt: str, rewrite: str) -> list[str]:
    """Content words of `prompt` whose stem does not occur in `rewrite`."""
    have = set(stems(rewrite))
    words = content_words(prompt)
    return [w for w, s in zip(words, _stemmer().stemWords(words), strict=True) if s not in have]
