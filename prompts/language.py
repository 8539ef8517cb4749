"""Is a prompt English? The rewriters write English, and mixing languages is worse than keeping the prompt.

Text in another script is not English. Latin-script text is scored word by word against word
frequencies (`wordfreq`, already used for the English output vocabulary): a prompt is not English
when its words are, on average, clearly more frequent in one other language than in English. Short
prompts need a clearer margin, since one word is often a word of both ("barn", "piano", "a latte").
"""

from __future__ import annotations

import functools
import re

# Latin-script languages wordfreq knows that users most often type instead of English.
_LATIN_LANGUAGES = tuple("ca cs da de es fi fr hu id it nb nl pl pt ro sk sl sv tr".split())
MARGIN = 1.5  # Zipf units a word must lean to another language on average, for long prompts
SHORT_MARGIN = 1.0  # added margin divided by the word count: 2.5 for one word, 2.0 for two, 1.75 for four...
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W\d_]+")
_QUOTED = re.compile(r'"[^"]*"|“[^”]*”|«[^»]*»|「[^」]*」')


def looks_english(text: str) -> bool:
    """Whether `text` is English; quoted text ('a sign that reads "ラーメン"') is content in any language."""
    unquoted = _QUOTED.sub(" ", text)
    text = unquoted if _LETTER.search(unquoted) else text
    letters = _LETTER.findall(text)
    if not letters:
        return True  # digits and symbols only: nothing to translate
    if sum(ord(ch) < 0x250 for ch in letters) / len(letters) < 0.9:  # ASCII and the Latin blocks
        return False  # another script
    words = _WORD.findall(text.lower())
    _, lean = other_language(words)
    return lean < MARGIN + SHORT_MARGIN / len(words)


def other_language(words: list[str]) -> tuple[str, float]:
    """The language other than English that `words` lean to most, and by how much: the mean, over the words,
    of its Zipf frequency minus English's (a Zipf unit is a factor of 10 in frequency)."""
    english = sum(_zipf(w, "en") for w in words)
    best = max(_LATIN_LANGUAGES, key=lambda lang: sum(_zipf(w, lang) for w in words))
    return best, (sum(_zipf(w, best) for w in words) - english) / len(words)


@functools.lru_cache(maxsize=65536)
def _zipf(word: str, lang: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, lang)
