"""Per-browser-session state: cancel flags for Stop, and which runs a session may see."""

from __future__ import annotations

import threading

import gradio as gr

GPU = "gpu"  # one concurrency group: rewrites and renders from every session share the accelerator


class Sessions:
    """Per-browser-session cancel flags, so Stop in one tab never stops another user's job."""

    def __init__(self, private_runs: bool = False):
        self.private_runs = private_runs  # on a public Space each session sees only its own runs
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def begin(self, request: gr.Request | None) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events[session_id(request)] = event
        return event

    def cancel(self, request: gr.Request | None) -> None:
        with self._lock:
            event = self._events.get(session_id(request))
        if event is not None:
            event.set()

    def scope(self, request: gr.Request | None) -> str | None:
        """The session whose runs this request may see; None: all runs (one local user)."""
        return session_id(request) if self.private_runs else None


def session_id(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "cli"
