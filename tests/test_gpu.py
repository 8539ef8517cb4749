"""CUDA paths (offload, 4-bit rewriter, freeing the LLM before the video model). Skipped without CUDA."""

import json

import pytest

pytestmark = pytest.mark.gpu


def test_cuda_engine_offloads_and_frees_the_llm(tmp_path):
    import torch

    from pipeline.engine import Engine

    engine = Engine.load("tiny-random", "tiny-random", tmp_path, device="cuda")
    assert engine.video.device == "cuda" and "model CPU offload" in engine.video.memory
    result = engine.generate("a red ball", rewrite_seed=1, seed=2, num_inference_steps=2)
    record = json.loads(open(result.sidecar_path).read())
    assert record["device"] == "cuda"
    # the rewriter left the GPU before the video model ran
    assert engine.rewriter._offloaded
    assert all(p.device.type == "cpu" for p in engine.rewriter.model.parameters())
    torch.cuda.synchronize()
