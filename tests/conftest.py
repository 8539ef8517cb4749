"""Shared fixtures: offline environment and tiny models loaded through the real loaders."""

import os
import socket

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_engine(tmp_path_factory):
    from pipeline.engine import Engine

    return Engine.load("tiny-random", "tiny-random", tmp_path_factory.mktemp("outputs"), device="cpu")


@pytest.fixture(scope="session")
def tiny_spec():
    from pipeline.presets import get_video_spec

    return get_video_spec("tiny-random")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_gemma3(seed: int = 0, vocab_size: int = 64):
    """A Gemma 3 at toy size, with norms that matter (zero-initialised norms would hide a wrong scale)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=4, layer_types=["sliding_attention", "full_attention"],
    )  # fmt: skip
    model = Gemma3ForCausalLM(config).eval()
    for norm in (m for m in model.modules() if hasattr(m, "eps") and hasattr(m, "weight")):
        torch.nn.init.normal_(norm.weight, std=0.5)
    return model


def pytest_collection_modifyitems(config, items):
    """`gpu` tests need CUDA: skipped (with the reason shown) where there is none."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
