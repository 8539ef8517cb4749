"""CUDA paths (offload, 4-bit rewriter, freeing the LLM before the video model). Skipped without CUDA."""

import json

import pytest

from pipeline.loading import rewrite_target

pytestmark = pytest.mark.gpu


def test_cuda_engine_offloads_and_frees_the_llm(tmp_path):
    import torch

    from pipeline.engine import Engine

    engine = Engine.load("tiny-random", "tiny-random", tmp_path, device="cuda")
    assert engine.video.device == "cuda" and engine.video.plan is not None and engine.video.plan.fits
    result = engine.generate("a red ball", rewrite_seed=1, seed=2, num_inference_steps=2)
    record = json.loads(open(result.sidecar_path).read())
    assert record["device"] == "cuda" and record["memory_measured_peak_vram_gb"] > 0
    torch.cuda.synchronize()


def test_rewriter_leaves_the_gpu_when_released(tmp_path):
    from pipeline.engine import Engine

    engine = Engine.load("tiny-random", "tiny-random", tmp_path, device="cuda")
    engine.rewriter.release_accelerator()
    assert engine.rewriter.llm.offloaded
    assert all(p.device.type == "cpu" for p in engine.rewriter.llm.model.parameters())
    engine.rewriter.rewrite("a red ball", rewrite_target(engine.spec), seed=1)  # moved back for the next rewrite
    assert not engine.rewriter.llm.offloaded
