"""Gradio values to engine arguments: the render form (inputs in API order, read into one RenderJob), whole
numbers, and progress labels."""

from __future__ import annotations

import inspect
import logging
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields

import gradio as gr
from gradio.components import Component

from pipeline.request import RenderSettings
from pipeline.runner import ProgressFn
from pipeline.variations import DEFAULT_COUNT

log = logging.getLogger("demo")

STAGES = {"rewrite": ("Rewriting", "tokens"), "denoise": ("Denoising", "steps"), "encode": ("Encoding", "frames")}
RUN_NAMES = {"raw": "Prompt as written", "rewritten": "Rewritten prompt"}


@dataclass(frozen=True)
class RenderJob:
    """One Generate, Compare or Variations call (a click or an API call), typed. An action reads the fields it
    takes; the others keep these defaults."""

    prompt: str
    rewritten: str | None = ""
    use_raw: bool = False
    image: str | None = None
    count: int = DEFAULT_COUNT  # variations
    rewrite_seed: int = 0
    image_fit: str = "crop"
    image_description: str | None = ""
    settings: RenderSettings = field(default_factory=RenderSettings)


Body = Callable[[RenderJob, "gr.Request | None", gr.Progress], object]
_REQUIRED = {f.name for f in fields(RenderJob) if f.default is MISSING and f.default_factory is MISSING}


@dataclass(frozen=True)
class Form:
    """Render inputs in API order: (name, component) pairs, each named by a RenderJob or RenderSettings field.
    An endpoint's parameters are its form's names, in this order, with the components' first values as defaults."""

    fields: tuple[tuple[str, Component], ...]

    @property
    def components(self) -> list[Component]:
        return [component for _, component in self.fields]

    def without(self, *names: str) -> Form:
        return Form(tuple((n, c) for n, c in self.fields if n not in names))

    def only(self, *names: str) -> Form:
        return Form(tuple((n, c) for n, c in self.fields if n in names))

    def handler(self, name: str, body: Body, doc: str) -> Callable:
        """A Gradio handler called `name` that reads this form's values into a RenderJob and runs
        body(job, request, progress). Its signature (the form's names, then request and progress) gives the API
        its parameter names and defaults, and `doc` its description; Gradio passes the values in that order."""
        by_position = inspect.Parameter.POSITIONAL_OR_KEYWORD
        signature = inspect.Signature([
            *(inspect.Parameter(n, by_position, default=_default(n, c)) for n, c in self.fields),
            inspect.Parameter("request", by_position, default=None, annotation=gr.Request),
            inspect.Parameter("progress", by_position, default=gr.Progress(track_tqdm=True)),
        ])
        labels = {n: (c.label or n).split(" (")[0].lower() for n, c in self.fields}  # "Frames (4k+1, ...)": frames

        def read(args: tuple, kwargs: dict) -> tuple:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            request, progress = values.pop("request"), values.pop("progress")
            return render_job(values, labels), request, progress

        if inspect.isgeneratorfunction(body):
            def run(*args, **kwargs):
                yield from body(*read(args, kwargs))
        else:
            def run(*args, **kwargs):
                return body(*read(args, kwargs))
        run.__name__ = run.__qualname__ = name
        run.__doc__ = doc
        run.__signature__ = signature
        run.__annotations__ = {"request": gr.Request}  # Gradio finds the request parameter by its annotation
        return run


def render_job(values: Mapping[str, object], labels: Mapping[str, str]) -> RenderJob:
    """Form values by name as a RenderJob: each converted to its field's type (whole numbers stay whole)."""
    job, settings = typing.get_type_hints(RenderJob), typing.get_type_hints(RenderSettings)
    return RenderJob(
        **{name: _typed(value, job[name], labels[name]) for name, value in values.items() if name in job},
        settings=RenderSettings(
            **{name: _typed(value, settings[name], labels[name]) for name, value in values.items() if name in settings}
        ),
    )


def refused(message: str) -> gr.Error:
    """The error a user sees for a request the app refuses: a toast in the UI, an AppError through the API, and
    one line in the server's log (no traceback: nothing went wrong in the app)."""
    log.info("refused: %s", message)
    return gr.Error(message, print_exception=False)


def whole(value, name: str) -> int:
    """Gradio numbers arrive as floats (or None when a box is cleared): accept whole numbers only."""
    number = _number(value, name)
    if not number.is_integer():
        raise refused(f"The {name} must be a whole number, got {value}.")
    return int(number)


def reporter(progress: gr.Progress) -> ProgressFn:
    """Engine progress ("denoise", or "raw:denoise" for one run of several) as a Gradio progress bar."""
    def report(stage: str, done: int, total: int):
        run, _, step = stage.rpartition(":")
        desc, unit = STAGES.get(step, (step, "steps"))
        if run:
            desc = f"{RUN_NAMES.get(run, run.capitalize())} · {desc.lower()}"
        progress((done, total) if total else None, desc=desc, unit=unit)

    return report


def _number(value, name: str) -> float:
    if value is None or value == "":
        raise refused(f"The {name} box is empty.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise refused(f"The {name} must be a number, got {value!r}.") from None


def _typed(value: object, hint: object, label: str) -> object:
    """`value` as `hint` (int, float or bool, optional or not) asks; text and files as they came."""
    kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint) if _is_union(hint) else hint
    if kind is int:
        return whole(value, label)
    if kind is float:
        return _number(value, label)
    if kind is bool:
        return bool(value)
    return value


def _is_union(hint: object) -> bool:
    return isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union


def _default(name: str, component: Component) -> object:
    """The API default: the component's first value; none for a RenderJob field without a default (the prompt)."""
    return inspect.Parameter.empty if name in _REQUIRED else component.value
