"""Prompt template families (text files under prompts/templates/) and their rendering."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from prompts.topic import is_name

TEMPLATES_DIR = Path(__file__).parent / "templates"
# The format an adapter is trained and run in (prompts.training, the "tuned" rewriter style): no instructions or
# examples, the model learned the task. The rewrite follows "Description:" and ends with the end-of-text token.
TUNED_FORMAT = "Idea: {idea}\nDescription:"
_SENTINEL = "\x00"  # stands for the idea when finding where the request block starts


@dataclass(frozen=True)
class SentencePlan:
    """How a base model's sentences begin when it writes sentence by sentence (a family's openers.txt).

    An opener is fed to the model as if it had written it, so the sentence is about what the
    template wants next (the idea's subject, the camera) instead of wherever a small model drifts.
    """

    openers: tuple[str, ...] = ()  # per sentence after the idea's words, in order; "" leaves it to the model
    closing: str = ""  # opens the sentence written once the description has `closing_after` words; the last one
    closing_after: int = 0
    looks: tuple[tuple[str, str], ...] = ()  # (pattern, how that style looks): a family's looks.txt

    def opener(self, index: int, words: int, subject: str, style: str = "", move: str = "") -> tuple[str, bool]:
        """(how sentence `index` starts, with {subject}, {style}, {look} and {move} filled in; whether it is the
        closing sentence). An opener naming {style} or {move} leaves the sentence free when the idea names no
        style or camera move, unless the opener offers an alternative ("The {style} | The light"); {look} is
        dropped when `looks` does not describe the style."""
        if self.closing and words >= self.closing_after:
            text, last = self.closing, True
        else:
            text, last = (self.openers[index] if index < len(self.openers) else ""), False
        # "A | B": B where A names a style or move the idea lacks
        text = next((t for t in text.split(" | ") if (style or "{style}" not in t) and (move or "{move}" not in t)), "")
        look = self.look_of(style)
        text = text.replace(" {look}", f" {look}" if look else "").replace("{look}", look)
        if is_name(subject):  # "Gwen Stacy reads", not "The Gwen Stacy reads"
            text = text.replace("The {subject}", "{subject}").replace("the {subject}", "{subject}")
        return text.replace("{subject}", subject).replace("{style}", style).replace("{move}", move), last

    def look_of(self, style: str) -> str:
        """What the first pattern of `looks` matching `style` says the style looks like, or ""."""
        if style:
            for pattern, look in self.looks:
                if re.search(pattern, style, re.IGNORECASE):
                    return look
        return ""


@dataclass(frozen=True)
class Template:
    family: str
    version: str
    instructions: str
    system: str
    examples: tuple[tuple[str, str], ...]  # (idea, description)
    completion: str
    plan: SentencePlan = SentencePlan()

    def completion_prompt(self, idea: str) -> tuple[str, str]:
        """The few-shot text for a base model and the opening it must continue from.

        The description opens with the idea's own words, so the user's subject, attributes and
        camera instructions are in the rewrite by construction; the model writes the rest.
        """
        opening = opening_from_idea(idea)
        examples = "\n\n".join(f"Idea: {i}\nDescription: {d}" for i, d in self.examples)
        text = self.completion.format(
            instructions=self.instructions, examples=examples, idea=_one_line(idea), opening=opening
        )
        return text.rstrip(" \n") + (" " if not opening else ""), opening

    def completion_prefix(self) -> str:
        """The text every completion prompt starts with, up to the request's own block (its KV cache is reusable)."""
        text, _ = self.completion_prompt(_SENTINEL)
        return text[: text.rfind("\n\n", 0, text.index(_SENTINEL)) + 2]

    def chat_messages(self, idea: str) -> list[dict[str, str]]:
        """System rules, few-shot turns, then the idea, delimited as content."""
        messages = [{"role": "system", "content": self.system.format(instructions=self.instructions).strip()}]
        for i, d in self.examples:
            messages += [{"role": "user", "content": f"Idea: {i}"}, {"role": "assistant", "content": d}]
        messages.append({"role": "user", "content": f"Idea: {_one_line(idea)}"})
        return messages


@cache
def load_template(family: str) -> Template:
    folder = TEMPLATES_DIR / family
    if not folder.is_dir():
        raise ValueError(f"no template family {family!r} under {TEMPLATES_DIR}")
    read = lambda name: (folder / name).read_text(encoding="utf-8").strip()  # noqa: E731
    return Template(
        family=family,
        version=read("VERSION"),
        instructions=read("instructions.txt"),
        system=read("system.txt"),
        examples=tuple(_parse_examples(read("examples.txt"))),
        completion=read("completion.txt"),
        plan=replace(
            _parse_plan(read("openers.txt")) if (folder / "openers.txt").is_file() else SentencePlan(),
            looks=tuple(_parse_looks(read("looks.txt"))) if (folder / "looks.txt").is_file() else (),
        ),
    )


def tuned_prompt(idea: str) -> str:
    """The text an adapter continues with the rewrite of `idea` (TUNED_FORMAT, the idea on one line)."""
    return TUNED_FORMAT.format(idea=_one_line(idea))


def opening_from_idea(idea: str) -> str:
    """The idea as the first words of the description: one line, capitalised, no end punctuation."""
    line = _one_line(idea).rstrip(" .!?;,")
    return line[:1].upper() + line[1:]


def _one_line(text: str) -> str:
    # A newline would end the few-shot block early and let user text pose as scaffolding.
    return re.sub(r"\s+", " ", text).strip()


def _parse_examples(text: str):
    for block in re.split(r"\n\s*\n", text):
        idea, _, desc = block.partition("\nDescription: ")
        if not idea.startswith("Idea: ") or not desc:
            raise ValueError(f"malformed example block: {block[:60]!r}")
        yield idea.removeprefix("Idea: ").strip(), desc.strip()


def _parse_plan(text: str) -> SentencePlan:
    """openers.txt: one line per sentence ("*" for a free one), then "closing N: OPENER"; # starts a comment."""
    openers, closing, after = [], "", 0
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if match := re.fullmatch(r"closing (\d+): (.+)", line):
            after, closing = int(match[1]), _spaced(match[2])
        elif line == "*":
            openers.append("")
        else:
            openers.append(_spaced(line))
    return SentencePlan(tuple(openers), closing, after)


def _parse_looks(text: str):
    """looks.txt: "PATTERN = LOOK" per line, PATTERN a regular expression matched in the idea's style
    (first match wins); # starts a comment."""
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        pattern, sep, look = (part.strip() for part in line.partition(" = "))
        if not sep:  # the line is stripped, so both sides of " = " hold something
            raise ValueError(f"malformed looks line: {line[:60]!r}")
        re.compile(pattern)
        yield pattern, look


def _spaced(opener: str) -> str:
    # it follows a sentence end (or the idea's words, when it starts with punctuation that closes them);
    # each alternative of "A | B" starts like a sentence
    return " | ".join(part if part[:1] in ".,;:" else " " + part for part in opener.split(" | "))
