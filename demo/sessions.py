"""Per-browser-session state: cancel flags for Stop, and which runs a session may see."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import gradio as gr
from gradio.events import Dependency

GPU = "gpu"  # one concurrency group: rewrites and renders from every session share the accelerator
API_JOBS_KEPT = 64  # an API client's job flags remembered per session (finished ones linger until a Stop)
API_SESSIONS_KEPT = 1024  # API clients remembered; the oldest is forgotten first (its old jobs can no longer stop)


class StopFlag:
    """What a running job polls for Stop: an event in this process and, when `path` is set, a file, which Stop
    also reaches from another process (on ZeroGPU the job runs in a forked GPU worker)."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()
        if self.path is not None:
            self.path.touch()

    def is_set(self) -> bool:
        return self._event.is_set() or (self.path is not None and self.path.exists())


class Sessions:
    """Per-browser-session cancel flags, so Stop in one tab never stops another user's job. With `stop_dir`,
    Stop also leaves a file there that a job in another process sees."""

    def __init__(self, private_runs: bool = False, stop_dir: Path | None = None):
        self.private_runs = private_runs  # on a public Space each session sees only its own runs
        self.stop_dir = stop_dir
        self._events: dict[str, StopFlag] = {}  # the flag of a session's last click in the page
        self._api_jobs: dict[str, list[StopFlag]] = {}  # an API client's calls: one flag each, set by its Stop
        self._lock = threading.Lock()

    def begin(self, request: gr.Request | None) -> StopFlag:
        """A click begins a job: the session's flag, a fresh one after a Stop. A job of this session still running
        or queued keeps the same flag, so one Stop ends them all."""
        with self._lock:
            flag = self._events.get(session_id(request))
            if flag is None or flag.is_set():
                flag = StopFlag(self._stop_file(request))
                if flag.path is not None:
                    flag.path.unlink(missing_ok=True)  # a Stop left over from this session's previous job
                self._events[session_id(request)] = flag
        return flag

    def current(self, request: gr.Request | None) -> StopFlag:
        """The flag a queued step polls: the one its click began (set already when Stop came while the job waited
        in the queue or ran an earlier step). A call with no click before it (an API client) gets a flag of its
        own, which the client's /stop sets once the call runs: its later calls run."""
        sid = session_id(request)
        with self._lock:
            flag = self._events.get(sid)
            if flag is not None:
                return flag
            flag = StopFlag(self._stop_file(request))
            if flag.path is not None:
                flag.path.unlink(missing_ok=True)  # a Stop left over from this client's previous call
            self._api_jobs[sid] = [*self._api_jobs.pop(sid, [])[-API_JOBS_KEPT + 1:], flag]  # now the newest
            if len(self._api_jobs) > API_SESSIONS_KEPT:
                self._api_jobs.pop(next(iter(self._api_jobs)))
        return flag

    def cancel(self, request: gr.Request | None) -> None:
        """Stop: the session's clicked jobs and its API calls so far end at their next step."""
        sid = session_id(request)
        with self._lock:
            flags = [*filter(None, [self._events.get(sid)]), *self._api_jobs.pop(sid, [])]
        for flag in flags:
            flag.set()
        if not flags and (path := self._stop_file(request)) is not None:
            path.touch()  # the job began in another process

    def start_on(self, listener: Callable[..., Dependency]) -> Dependency:
        """`listener` (such as `button.click`) begins a job at once, outside the queue, so Stop also ends it while
        it waits for the GPU; chain the job's steps after it with `.then()`."""

        def start(request: gr.Request = None):
            self.begin(request)

        return listener(start, None, None, api_visibility="private", queue=False, show_progress="hidden")

    def scope(self, request: gr.Request | None) -> str | None:
        """The session whose runs this request may see; None: all runs (one local user)."""
        return session_id(request) if self.private_runs else None

    def _stop_file(self, request: gr.Request | None) -> Path | None:
        if self.stop_dir is None:
            return None
        return self.stop_dir / (hashlib.sha256(session_id(request).encode()).hexdigest()[:32] + ".stop")


def session_id(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "cli"


def stopped(what: str, outputs: int = 1):
    """What a handler returns when Stop ended its job: a notice, and its outputs left as they were. Not an error:
    the job ended as the user asked, and an error would show "Error" on every output."""
    gr.Info(f"{what} stopped.")
    return gr.skip() if outputs == 1 else tuple(gr.skip() for _ in range(outputs))
