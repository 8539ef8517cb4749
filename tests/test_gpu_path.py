"""The GPU path on the CPU: dtypes of shared models, the float32 VAE, the shared text encoder, the out-of-memory
step-down. Tiny models loaded through the real loader with CUDA's dtypes (bf16), or an injected out-of-memory error."""

from dataclasses import replace

import pytest

from pipeline.presets import get_video_spec

COMPONENTS = ("text_encoder", "transformer", "vae")


@pytest.fixture
def cuda_dtypes(monkeypatch):
    """load_video picks the preset's dtypes as on CUDA (bf16), while the models stay on the CPU."""
    import torch

    import pipeline.loading as loading

    monkeypatch.setattr(loading, "torch_dtype", lambda name, device: getattr(torch, name))


def _dtypes(module) -> dict[str, object]:
    return {name: p.dtype for name, p in module.named_parameters()}


# -- 8. the text-to-video pipeline over the image pipeline's models keeps their dtypes --------------------
def test_text_pipeline_shares_the_image_models_and_keeps_every_dtype(monkeypatch, cuda_dtypes):
    import diffusers
    import torch

    from pipeline.loading import load_video

    loaded_as: dict[str, dict] = {}
    original = diffusers.WanImageToVideoPipeline.from_pretrained.__func__

    def spy(cls, *args, **kwargs):  # each parameter's dtype as diffusers loaded it
        pipe = original(cls, *args, **kwargs)
        loaded_as.update({name: _dtypes(getattr(pipe, name)) for name in COMPONENTS})
        return pipe

    monkeypatch.setattr(diffusers.WanImageToVideoPipeline, "from_pretrained", classmethod(spy))
    spec = replace(get_video_spec("tiny-random-i2v"), dtype="bfloat16")
    video = load_video(spec, "cpu")
    assert type(video.pipe).__name__ == "WanPipeline" and video.pipe.config.expand_timesteps
    for name in COMPONENTS:
        assert getattr(video.pipe, name) is getattr(video.image_pipe, name)
        assert _dtypes(getattr(video.pipe, name)) == loaded_as[name], name
    assert torch.bfloat16 in set(loaded_as["transformer"].values())  # really loaded in bf16, not float32


# -- 11. the Wan VAE in float32, the rest in the preset's dtype --------------------------------------------
def test_wan_vae_loads_in_float32_beside_bf16_models(cuda_dtypes):
    import numpy as np
    import torch

    from pipeline.loading import load_video

    spec = replace(get_video_spec("tiny-random-i2v"), dtype="bfloat16")
    video = load_video(spec, "cpu")
    assert set(_dtypes(video.pipe.vae).values()) == {torch.float32}
    assert set(_dtypes(video.pipe.text_encoder).values()) == {torch.bfloat16}
    blocks = video.pipe.transformer.blocks[0].ffn  # fp32-kept modules (norms, rope) aside, the weights are bf16
    assert set(_dtypes(blocks).values()) == {torch.bfloat16}
    assert video.dtype == "bfloat16, VAE float32" and "VAE float32" in video.describe()
    frames = video.pipe(
        "a red ball", height=64, width=64, num_frames=5, num_inference_steps=1, output_type="np"
    ).frames[0]
    assert frames.shape == (5, 64, 64, 3) and np.isfinite(frames).all()


def test_load_dtypes_per_preset_and_device():
    import torch

    from pipeline.loading import load_dtypes

    wan = {"default": torch.bfloat16, "vae": torch.float32}
    assert load_dtypes(get_video_spec("wan2.1-t2v-1.3b"), "cuda") == wan
    assert load_dtypes(get_video_spec("wan2.2-ti2v-5b"), "cuda") == wan
    assert load_dtypes(get_video_spec("ltx-video"), "cuda") == torch.bfloat16  # diffusers' LTX example: all bf16
    assert load_dtypes(get_video_spec("wan2.1-t2v-1.3b"), "cpu") == torch.float32
    assert load_dtypes(get_video_spec("toy-world"), "cuda") == torch.float32


def test_the_plan_counts_the_float32_vae():
    from pipeline.memory_models import count_component
    from pipeline.memory_plan import GB, Budget, Settings, plan_memory

    plan = plan_memory("wan2.1-t2v-1.3b", None, Settings(480, 832, 81), Budget(80, 64))
    assert plan.components["vae"].weights_gb == round(count_component("wan2.1-t2v-1.3b", "vae").params * 4 / GB, 2)
