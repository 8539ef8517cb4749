"""Image-aware rewriting: templates (prompts/templates/<family>_i2v/) that start from the reference image.

Three cases, one rule each (rules.txt): a vision rewriter *sees* the image; a text rewriter reads the user's
*described* image; otherwise the image is *unseen* and the rewrite covers only motion, change and camera,
so it cannot contradict a picture it never saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from prompts.templates import TEMPLATES_DIR, Template, opening_from_idea
from runtime.images import load_reference_image

UNDESCRIBED = "(not described)"  # the image line of examples and requests without a description


@dataclass(frozen=True)
class ImageTemplate(Template):
    mode: str = "unseen"  # "seen" | "described" | "unseen"
    rule: str = ""  # the rules.txt line for the mode, description filled in
    image_line: str = UNDESCRIBED  # what the "Image:" line says about the request's image
    image_path: str | None = None  # for a vision rewriter: the image it is shown
    image_examples: tuple[tuple[str, str, str], ...] = ()  # (image, idea, description)

    def completion_prompt(self, idea: str) -> tuple[str, str]:
        """Few-shot text for a base model: instructions and the image rule, examples, then this image and idea."""
        opening = opening_from_idea(idea)
        examples = "\n\n".join(f"Image: {m}\nIdea: {i}\nDescription: {d}" for m, i, d in self.image_examples)
        text = self.completion.format(
            instructions=f"{self.instructions} {self.rule}",
            examples=examples,
            image=self.image_line,
            idea=_one_line(idea),
            opening=opening,
        )
        return text.rstrip(" \n") + (" " if not opening else ""), opening

    def chat_messages(self, idea: str) -> list[dict[str, str]]:
        """System rules with the image rule, few-shot turns, then the image line and the idea."""
        system = self.system.format(instructions=self.instructions, image_rule=self.rule).strip()
        messages = [{"role": "system", "content": system}]
        for m, i, d in self.image_examples:
            messages += [{"role": "user", "content": f"Image: {m}\nIdea: {i}"}, {"role": "assistant", "content": d}]
        text = f"Image: {self.image_line}\nIdea: {_one_line(idea)}"
        if self.mode == "seen":  # a vision rewriter: the image itself, then the text (prompts.vision)
            image = {"type": "image", "image": load_reference_image(self.image_path)}
            messages.append({"role": "user", "content": [image, {"type": "text", "text": text}]})
        else:
            messages.append({"role": "user", "content": text})
        return messages


def load_image_template(family: str, description: str | None = None, image_path: str | None = None) -> ImageTemplate:
    """The image-to-video template of `family`: "seen" when `image_path` is given (a vision rewriter),
    "described" with a description, else "unseen"."""
    name = f"{family}_i2v"
    version, instructions, system, completion, rules, examples = _files(name)
    description = _one_line(description or "").rstrip(".")
    mode = "seen" if image_path else ("described" if description else "unseen")
    image_line = {"seen": "the attached image", "described": description, "unseen": UNDESCRIBED}[mode]
    return ImageTemplate(
        family=name,
        version=version,
        instructions=instructions,
        system=system,
        examples=tuple((i, d) for _, i, d in examples),
        completion=completion,
        mode=mode,
        rule=rules[mode].format(description=description),
        image_line=image_line,
        image_path=image_path,
        image_examples=examples,
    )


@cache
def _files(name: str):
    folder = TEMPLATES_DIR / name
    if not folder.is_dir():
        raise ValueError(f"no image template family {name!r} under {TEMPLATES_DIR}")
    read = lambda file: (folder / file).read_text(encoding="utf-8").strip()  # noqa: E731
    rules = dict(line.split(": ", 1) for line in read("rules.txt").splitlines() if line.strip())
    if set(rules) != {"seen", "described", "unseen"}:
        raise ValueError(f"{name}/rules.txt needs one line each for seen, described and unseen")
    return (
        read("VERSION"),
        read("instructions.txt"),
        read("system.txt"),
        read("completion.txt"),
        rules,
        tuple(_parse_examples(read("examples.txt"))),
    )


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _parse_examples(text: str):
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().split("\n", 2)
        if (
            len(lines) != 3
            or not lines[0].startswith("Image: ")
            or not lines[1].startswith("Idea: ")
            or not lines[2].startswith("Description: ")
        ):
            raise ValueError(f"malformed example block: {block[:60]!r}")
        yield (
            lines[0].removeprefix("Image: ").strip(),
            lines[1].removeprefix("Idea: ").strip(),
            lines[2].removeprefix("Description: ").strip(),
        )
