"""Turn raw LLM output into one clean English paragraph, and check that it is one."""

from __future__ import annotations

import re

MAX_PROMPT_CHARS = 2000  # a short idea or a full scene description fits; pasted documents do not

_PREAMBLE = re.compile(
    r"^\s*(sure|certainly|of course|okay|ok|absolutely|here is|here's|here are|below is)\b[^\n:]*[:.!]\s*",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"^\s*(?:\*\*|__)?(scene|prompt|description|rewritten prompt|enhanced prompt|video prompt|"
    r"scene description|output|answer|caption)(?:\*\*|__)?\s*:\s*",
    re.IGNORECASE,
)
# Few-shot scaffolding that a base model starts to write after its description.
_SCAFFOLD = re.compile(r"\s*(?:\bIdea:|\bDescription:|<end_of_turn>|<start_of_turn>|</s>|<\|im_end\|>|<\|)")
_MARKDOWN = re.compile(r"(\*\*|__|`+|^#+\s*|^\s*[-*•]\s+|^\s*\d+[.)]\s+)", re.MULTILINE)
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»"}
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?(?=\s|$)")


def clean(text: str, opening: str = "") -> str:
    """Strip preamble, labels, markdown, wrapping quotes and scaffolding; join into one paragraph.

    `opening` is text the output was forced to start with (the user's own words): it is kept
    verbatim, and only what the model wrote after it is cleaned.
    """
    text = text.replace("\r", "")
    if opening and text.startswith(opening):
        rest = _clean_body(text[len(opening) :])
        glue = " " if rest and text[len(opening) : len(opening) + 1].isspace() else ""
        return (opening + glue + rest).strip()
    # 1. Preamble and labels, possibly stacked ("Sure! Here is the prompt: Scene: ...")
    for _ in range(3):
        stripped = _LABEL.sub("", _PREAMBLE.sub("", text, count=1), count=1)
        if stripped == text:
            break
        text = stripped
    text = _clean_body(text)
    # 4. Wrapping quotes (only when the whole text is quoted)
    while len(text) > 1 and text[0] in _QUOTES and text.endswith(_QUOTES[text[0]]) and text.count(text[0]) <= 2:
        text = text[1:-1].strip()
    return text


def _clean_body(text: str) -> str:
    # 2. Cut anything after leaked scaffolding (a new "Idea:", chat control tokens)
    match = _SCAFFOLD.search(text)
    if match:
        text = text[: match.start()]
    # 3. Markdown (heading lines are titles: dropped whole) and paragraphs
    text = re.sub(r"^\s*#+[^\n]*(\n|$)", "", text, flags=re.MULTILINE)
    text = _MARKDOWN.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def word_count(text: str) -> int:
    return len(text.split())


def words_label(text: str) -> str:
    """'1 word', '12 words'."""
    count = word_count(text)
    return f"{count} word{'' if count == 1 else 's'}"


def trim_to_sentence(text: str, max_words: int | None = None) -> str:
    """Drop an unfinished last sentence, and whole sentences beyond `max_words`."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if max_words is not None:
        ends = [e for e in ends if word_count(text[:e]) <= max_words] or ends[:1]
    if not ends:
        return text
    return text[: ends[-1]].strip()


def problems(text: str) -> list[str]:
    """Why a rewrite is not one clean paragraph (empty list when it is)."""
    found = []
    if _PREAMBLE.match(text):
        found.append("preamble")
    if _LABEL.match(text):
        found.append("label")
    if _MARKDOWN.search(text):
        found.append("markdown")
    if text[:1] in _QUOTES and text.endswith(_QUOTES[text[:1]]):
        found.append("wrapping quotes")
    if "\n" in text.strip():
        found.append("several paragraphs")
    if _SCAFFOLD.search(text):
        found.append("leaked scaffolding")
    return found


def has_loop(text: str, n: int = 4, times: int = 3) -> bool:
    """True when some n-gram of words repeats `times` or more (degenerate decoding)."""
    words = re.findall(r"\w+", text.lower())
    counts: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        counts[gram] = counts.get(gram, 0) + 1
        if counts[gram] >= times:
            return True
    return False


def check_prompt(prompt: object, what: str = "prompt") -> str:
    """Return the stripped prompt, or raise ValueError with a message a user can act on."""
    if not isinstance(prompt, str):
        raise ValueError(f"The {what} must be text.")
    text = prompt.replace("\x00", "").strip()
    if not text:
        raise ValueError(f"The {what} is empty: type what the video should show.")
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"The {what} has {len(text)} characters; the limit is {MAX_PROMPT_CHARS}.")
    return text
