"""Rewrite & Render: the composition root. Loads the models, builds the UI, launches it."""

from __future__ import annotations

import logging
import os

import gradio as gr

from demo.config import AppConfig, from_env, parse_args
from demo.ui import build_demo
from pipeline.engine import Engine


def create_app(config: AppConfig) -> gr.Blocks:
    engine = Engine.load(config.rewriter, config.video, config.outputs)
    demo = build_demo(engine)
    demo.queue(default_concurrency_limit=1, max_size=32)  # one GPU job at a time; bounded wait line
    return demo


def launch(demo: gr.Blocks, config: AppConfig, **kwargs):
    config.outputs.mkdir(parents=True, exist_ok=True)
    return demo.launch(
        server_name=config.host,
        server_port=config.port,
        share=config.share,
        allowed_paths=[str(config.outputs.resolve())],
        **kwargs,
    )


if gr.NO_RELOAD:
    logging.basicConfig(level=os.environ.get("RR_LOG", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    if __name__ == "__main__":
        CONFIG = parse_args()
    else:  # imported (Spaces, `gradio app.py`): environment variables only
        CONFIG = from_env()
    demo = create_app(CONFIG)

if __name__ == "__main__":
    launch(demo, CONFIG)
