"""A cheap check that a prompt is English: the rewriters write English, and mixing languages is worse than keeping the prompt."""

from __future__ import annotations

import re

# Frequent function words of the languages users most often type instead of English. A prompt
# with more of these than English function words is taken as not English.
_FOREIGN = set(
    "el la los las un una unos y del al con por para que es está en "  # Spanish
    "le les une et dans avec sur sous est du des au aux "  # French
    "der die das und ein eine einem einer mit auf im ist den dem "  # German
    "il lo gli della delle nel sul uno con che è "  # Italian
    "o os um uma com no na não são "  # Portuguese
    "het een en op met van de zijn ".split()  # Dutch
)
_ENGLISH = set("a an the and of in on at with to from by is are under over near its his her their".split())
_LETTER = re.compile(r"[^\W\d_]")


def looks_english(text: str) -> bool:
    letters = _LETTER.findall(text)
    if not letters:
        return True  # digits and symbols only: nothing to translate
    if sum(ch.isascii() for ch in letters) / len(letters) < 0.85:
        return False  # another script, or heavily accented text
    words = re.findall(r"[^\W\d_]+", text.lower())
    foreign = sum(w in _FOREIGN and w not in _ENGLISH for w in words)
    english = sum(w in _ENGLISH for w in words)
    return foreign <= english or foreign < 2
