"""Rewrite & Render: the composition root. Loads the models, builds the UI, launches it."""

from __future__ import annotations

try:  # first: on a ZeroGPU Space `spaces` must patch torch's CUDA before anything touches it
    import spaces  # noqa: F401
except ImportError:  # not installed (off Spaces): the GPU decorators in demo/zerogpu.py leave handlers as they are
    pass

import logging
import os
import sys

import gradio as gr

from demo.cleanup import Cleanup
from demo.config import AppConfig, check_port, from_env, parse_args
from demo.serving import launch_options
from demo.ui import build_demo
from pipeline.engine import Engine
from pipeline.gallery import Gallery

log = logging.getLogger("app")

QUEUE_SIZE = 32  # waiting jobs across all users; more are turned away with "queue full" rather than waiting for hours
MCP_INSTALL = 'pip install "gradio[mcp]==6.31.0"'


def create_app(config: AppConfig) -> gr.Blocks:
    engine = Engine.load(config.rewriter, config.video, config.outputs)
    demo = build_demo(engine, gpu_max_seconds=config.gpu_max_seconds)
    # Every GPU event shares the "gpu" concurrency group (demo/sessions.py), one job at a time; the rest wait here.
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    if config.cleanup_hours:
        age = int(config.cleanup_hours * 3600)
        demo.delete_cache = (min(age, 3600), age)  # Gradio's own copies of served files, on the same schedule
    return demo


def mcp_available() -> bool:
    """Whether Gradio's MCP server can start: the `mcp` extra is installed."""
    try:
        import gradio.mcp  # noqa: F401
    except ImportError:
        return False
    return True


def launch(demo: gr.Blocks, config: AppConfig, **kwargs):
    config.outputs.mkdir(parents=True, exist_ok=True)
    mcp = config.mcp and mcp_available()
    if config.mcp and not mcp:
        log.warning("MCP server not started: it needs Gradio's mcp extra (%s). The web UI and the HTTP API "
                    "start as usual.", MCP_INSTALL)
    if config.cleanup_hours:
        Cleanup(Gallery(config.outputs, recover=False), config.cleanup_hours).start()
    return demo.launch(
        server_name=config.host,
        server_port=config.port,
        share=config.share,
        mcp_server=mcp,
        **launch_options(config.outputs),
        **kwargs,
    )


if gr.NO_RELOAD:
    logging.basicConfig(level=os.environ.get("RR_LOG", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    if __name__ == "__main__":
        CONFIG = parse_args()
        try:  # before loading any model: a busy port would fail only after they load
            check_port(CONFIG.host, CONFIG.port)
        except ValueError as err:
            print(f"app.py: error: {err}", file=sys.stderr)
            sys.exit(2)
    else:  # imported (Spaces, `gradio app.py`): environment variables only
        CONFIG = from_env()
    demo = create_app(CONFIG)

if __name__ == "__main__":
    launch(demo, CONFIG)
