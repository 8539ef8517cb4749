"""What the rewriter needs to know of the video model it writes for, as data the pipeline hands it
(`pipeline.loading.rewrite_target`): prompts/ never reads a video preset itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


def no_tokenizer() -> None:
    """The target's tokenizer is not on this machine: token counts are estimated."""
    return None


@dataclass(frozen=True)
class RewriteTarget:
    name: str  # the video preset's name, recorded in each RewriteResult
    template_family: str  # folder under prompts/templates/ (and the key of RewriterSpec.tuned)
    token_limit: int  # the text encoder reads this many tokens
    word_target: tuple[int, int]  # words the rewrite aims at; a prompt of word_target[0] words is kept as written
    word_range: tuple[int, int]  # words a rewrite is accepted at
    tokenizer: Callable[[], object | None] = no_tokenizer  # loads the text encoder's tokenizer when it is local
    # (rewrite, the idea's opening words) -> (repaired rewrite, note or None): what the model can draw
    repair: Callable[[str, str], tuple[str, str | None]] | None = None
    # repaired rewrite -> why the model would draw it wrong, or None: the next seed is tried, up to `attempts`
    check: Callable[[str], str | None] | None = None
    attempts: int = 2
