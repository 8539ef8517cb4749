"""What the web server hands out from the outputs folder: nothing by its path. A finished video or sidecar reaches
the session that made it (or may see it) through Gradio's cache, under a hash of its content and a secret seed;
the run database and another session's files are never served."""

from __future__ import annotations

import os
import re
from pathlib import Path

from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse

from pipeline.gallery import DB_NAME

# Gradio serves local files at /gradio_api/file=PATH and /gradio_api/file/PATH (and both without the prefix)
FILE_ROUTE = re.compile(r"/file[=/]")


def launch_options(outputs: Path) -> dict:
    """`demo.launch(...)` arguments for an app writing to `outputs`. The folder stays in `allowed_paths`, so
    Gradio may copy finished files into its cache wherever the folder lies; requests for it by path are refused."""
    folder = Path(outputs).resolve()
    database = [str(folder / f"{DB_NAME}{suffix}") for suffix in ("", "-wal", "-shm")]
    return {
        "allowed_paths": [str(folder)],
        "blocked_paths": database,  # Gradio's own refusal as well, should a request reach it
        "app_kwargs": {"middleware": [Middleware(RefuseOutputsByPath, folder=folder)]},
    }


class RefuseOutputsByPath:
    """ASGI middleware: 403 for a file request whose path lies in `folder`, whoever asks."""

    def __init__(self, app, folder: Path):
        self.app = app
        self.folder = str(Path(folder).resolve()).lower()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.inside(scope.get("path", "")):
            await PlainTextResponse("File not allowed.", status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def inside(self, url_path: str) -> bool:
        """Whether a (decoded) URL path asks for a file in the folder; compared case-blind, as Gradio's own
        blocklist is, so a case-insensitive file system cannot be used to slip past."""
        route = FILE_ROUTE.search(url_path)
        if route is None:
            return False
        asked = url_path[route.end():]
        try:
            path = str(Path(os.path.abspath(asked)).resolve()).lower()
        except (OSError, ValueError):
            return True  # not a path this server can read: refuse rather than guess
        return path == self.folder or path.startswith(self.folder.rstrip(os.sep) + os.sep)
