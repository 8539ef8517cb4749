"""Prompt template families (text files under prompts/templates/) and their rendering."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent / "templates"
# The format an adapter is trained and run in (prompts.training, the "tuned" rewriter style): no instructions or
# examples, the model learned the task. The rewrite follows "Description:" and ends with the end-of-text token.
TUNED_FORMAT = "Idea: {idea}\nDescription:"
_SENTINEL = "\x00"  # stands for the idea when finding where the request block starts


@dataclass(frozen=True)
class Template:
    family: str
    version: str
    instructions: str
    system: str
    examples: tuple[tuple[str, str], ...]  # (idea, description)
    completion: str

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
