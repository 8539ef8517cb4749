"""Generate, Compare and Variations: one handler body around each action's engine call (Stop, refusals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import gradio as gr

from demo.inputs import RenderJob, refused, reporter
from demo.sessions import Sessions, StopFlag, session_id, stopped
from pipeline.engine import Engine
from pipeline.runner import ProgressFn
from prompts.rewriter import Cancelled
from runtime.hub import ModelUnavailableError


@dataclass(frozen=True)
class Call:
    """What an action gets besides its job: progress, the Stop flag it polls, and the session it is recorded under."""

    progress: ProgressFn
    cancel: StopFlag
    session: str


@dataclass(frozen=True)
class Action:
    """A render action: its engine call, and what it reports when Stop ends it."""

    name: str  # the endpoint and the GPU action: generate, compare, variations
    title: str  # "... stopped."
    outputs: int  # how many outputs a stopped job leaves as they were
    run: Callable[[Engine, RenderJob, Call], tuple]  # its docstring describes the endpoint
    skips: tuple[str, ...] = ()  # the render form's inputs this action does not take


def action_body(engine: Engine, sessions: Sessions, action: Action) -> Callable:
    """body(job, request, progress) for Form.handler: `action` on `engine`, with Stop and refusals handled alike."""

    def body(job: RenderJob, request: gr.Request | None, progress: gr.Progress):
        cancel = sessions.current(request)
        if cancel.is_set():  # stopped while it waited for the GPU, or during its rewrite
            return stopped(action.title, action.outputs)
        try:
            return action.run(engine, job, Call(reporter(progress), cancel, session_id(request)))
        except (ValueError, ModelUnavailableError, FileExistsError) as err:
            raise refused(str(err)) from None
        except Cancelled:
            return stopped(action.title, action.outputs)

    return body


def settings_of(job: RenderJob) -> dict:
    """The job's render settings as the engine's keywords (RenderSettings fields by name)."""
    return asdict(job.settings)
