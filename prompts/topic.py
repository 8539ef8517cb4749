"""Does a sentence of a base model's description still describe the scene?

A small base model drifts: after a sentence or two it writes a blog post, a story in the first
person, or says the same thing again. The embedded rewriter writes sentence by sentence
(prompts.rewriter) and draws a sentence again when `fault` finds one of these:

- it talks to or as a person (I, my, we, you...), which a scene description never needs;
- it reads like the text around a picture rather than the picture (photo, image, article, click...);
- it repeats what is written: more than half of its four-word runs are already there, or one of them
  would be there for the third time (prompts.cleaning.has_loop).

Words the idea itself uses are never held against a sentence ("my grandmother's photo").
"""

from __future__ import annotations

import re

from prompts.cleaning import has_loop

PERSONAL = frozenset(
    "i me my mine myself we us our ours ourselves you your yours yourself yourselves "
    "i'm i've i'd i'll we're we've we'd we'll you're you've you'd you'll".split()
)
OFF_SCENE = frozenset(
    "photo photos photograph photographs photographer picture pictures image images article articles "
    "click blog website post posts author copyright reproduce permission readers viewer viewers "
    "subscribe download story stories chapter".split()
)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def _runs(text: str, n: int = 4) -> set[tuple[str, ...]]:
    seq = _words(text)
    return {tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)}


def fault(sentence: str, before: str, idea: str) -> str | None:
    """Why `sentence` cannot follow `before` in a description of `idea`, or None."""
    said = set(_words(sentence)) - set(_words(idea))
    if bad := sorted(said & PERSONAL):
        return f"speaks to or as a person ({bad[0]!r})"
    if bad := sorted(said & OFF_SCENE):
        return f"describes a page or photo, not the scene ({bad[0]!r})"
    runs = _runs(sentence)
    if (runs and len(runs & _runs(before)) > len(runs) / 2) or has_loop(before + sentence):
        return "repeats the text before it"
    return None
