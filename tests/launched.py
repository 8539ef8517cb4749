"""The app as `python app.py` runs it, launched in-process on a free port with the tiny presets."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port


@contextmanager
def launched_app(outputs: Path, **env: str) -> Iterator[tuple[object, str]]:
    """Import app.py with RR_* variables (tiny presets, `outputs`, a free port, then `env`), launch it and
    yield (the app module, its URL); closed afterwards."""
    port = free_port()
    values = {"RR_REWRITER": "tiny-random", "RR_VIDEO": "tiny-random", "RR_PORT": str(port),
              "RR_OUTPUTS": str(outputs), **env}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        sys.modules.pop("app", None)
        app = importlib.import_module("app")
        app.launch(app.demo, app.CONFIG, prevent_thread_lock=True, quiet=True)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        app.demo.close()
