"""The GPU path on the CPU: dtypes of shared models, the float32 VAE, the shared text encoder, the out-of-memory
step-down. Tiny models loaded through the real loader with CUDA's dtypes (bf16), or an injected out-of-memory error."""

import gc
import json
import weakref
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


# -- 8b. model CPU offload: the text pipeline has no hooks of its own; the engine offloads after its call -------
@pytest.fixture
def simulated_model_offload(monkeypatch):
    """diffusers' model CPU offload with the CPU as its 'accelerator': the real hooks and their chain, with each
    model's last move recorded (onload: to 'cpu:0', offload: to 'cpu', which torch cannot tell apart). Returns
    {id(model): onloaded}."""
    import accelerate.hooks
    import torch
    from diffusers import DiffusionPipeline

    onloaded: dict[int, bool] = {}
    to, enable = torch.nn.Module.to, DiffusionPipeline.enable_model_cpu_offload

    def recorded_to(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if isinstance(target, (str, torch.device)) and torch.device(target).type == "cpu":
            onloaded[id(self)] = torch.device(target).index is not None
        return to(self, *args, **kwargs)

    def pre_forward(self, module, *args, **kwargs):  # accelerate's, deciding by the record, not by p.device
        if self.prev_module_hook is not None and onloaded.get(id(self.prev_module_hook.model)):
            self.prev_module_hook.offload()
        if not onloaded.get(id(module)):
            module.to(self.execution_device)
        return args, kwargs

    monkeypatch.setattr(torch.nn.Module, "to", recorded_to)
    monkeypatch.setattr(accelerate.hooks.CpuOffload, "pre_forward", pre_forward)
    monkeypatch.setattr(
        DiffusionPipeline,
        "enable_model_cpu_offload",
        lambda self, gpu_id=None, device=None: enable(self, gpu_id, device or "cpu:0"),
    )
    return onloaded


def test_model_offload_leaves_nothing_onloaded_after_a_text_or_an_image_call(
    simulated_model_offload, monkeypatch, tmp_path
):
    from PIL import Image

    from pipeline.engine import Engine
    from pipeline.loading import LoadedVideo, load_video
    from pipeline.memory_plan import Budget, Settings, estimate, rung_named

    plan = estimate(
        "tiny-random-i2v", None, "none", rung_named("model offload"), Settings(64, 128, 5, 1), Budget(8, 64)
    )
    video = load_video(get_video_spec("tiny-random-i2v"), "cpu", plan=plan)
    assert "model CPU offload" in video.memory and not getattr(video.pipe, "_all_hooks", None)  # none of its own
    models = {id(getattr(video.image_pipe, name)): name for name in COMPONENTS}
    engine = Engine(video, None, tmp_path / "out")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (96, 64), (200, 30, 30)).save(photo)

    def render(**image):
        engine.generate("a red ball rolls", use_raw=True, num_frames=5, num_inference_steps=1, **image)
        return sorted(name for key, name in models.items() if simulated_model_offload.get(key))

    assert render() == []  # the text pipeline ran: the image pipeline's hooks offloaded every model
    assert len(video.image_pipe._all_hooks) == 3  # and are armed again for the next call
    assert render(image_path=str(photo)) == []
    monkeypatch.setattr(LoadedVideo, "after_call", lambda self, image: None)
    assert render() != []  # what the engine's after_call prevents: models left onloaded by the text pipeline


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


# -- 9. out of memory: step down after the except block, with the old pipeline gone --------------------------
def _tiny_plan(rung_name):
    from pipeline.memory_plan import Budget, Settings, estimate, rung_named

    return estimate("tiny-random", None, "none", rung_named(rung_name), Settings(64, 112, 9, 2), Budget(8, 64))


@pytest.fixture
def oom_engine(monkeypatch, tmp_path):
    """A tiny engine on a 'resident' plan whose next pipeline call runs out of GPU memory (injected); offload
    calls of the smaller plans are no-ops on the CPU."""
    import diffusers
    import torch

    from pipeline.engine import Engine
    from pipeline.loading import load_video

    engine = Engine(load_video(get_video_spec("tiny-random"), "cpu", plan=_tiny_plan("resident")), None, tmp_path)
    original, calls = diffusers.WanPipeline.__call__, []

    def fail_first(self, *args, **kwargs):
        calls.append(1)  # a count: holding `self` would keep the old pipeline alive
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(diffusers.WanPipeline, "__call__", fail_first)
    for method in ("enable_model_cpu_offload", "enable_sequential_cpu_offload"):
        monkeypatch.setattr(diffusers.WanPipeline, method, lambda self, *a, **k: None)
    return engine, calls


def test_out_of_memory_frees_the_old_pipeline_before_loading_the_smaller_plan(monkeypatch, oom_engine):
    import pipeline.loading as loading

    engine, _ = oom_engine
    old = weakref.ref(engine.video.pipe)
    load, alive_at_reload = loading.load_video, []

    def reload(*args, **kwargs):
        gc.collect()
        alive_at_reload.append(old() is not None)
        return load(*args, **kwargs)

    monkeypatch.setattr(loading, "load_video", reload)
    result = engine.generate("a red ball", use_raw=True, seed=1, num_inference_steps=1)
    assert alive_at_reload == [False]
    assert "Out of GPU memory with plan 'resident'" in json.loads(open(result.sidecar_path).read())["memory_note"]


@pytest.mark.parametrize("where", ["reload", "retry"])
def test_a_second_out_of_memory_error_gets_the_friendly_message(monkeypatch, oom_engine, where):
    import diffusers
    import torch

    import pipeline.loading as loading

    engine, _ = oom_engine

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (injected again)")

    if where == "reload":
        monkeypatch.setattr(loading, "load_video", out_of_memory)
    else:  # the smaller plan runs out of memory too
        monkeypatch.setattr(diffusers.WanPipeline, "__call__", out_of_memory)
    with pytest.raises(ValueError, match="Out of GPU memory"):
        engine.generate("a red ball", use_raw=True, seed=1, num_inference_steps=1)


# -- 12. the image partner reads prompts with the text preset's umT5: one download, one copy in memory ----------
def test_zerogpu_partner_loaded_at_start_shares_the_text_encoder(monkeypatch, tmp_path):
    from PIL import Image

    from pipeline.engine import Engine

    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    engine = Engine.load("none", "tiny-random", tmp_path / "out", device="cpu")
    partner = engine._partner
    assert partner is not None and partner.pipe is not None  # loaded in the main process, at start
    assert partner.pipe.text_encoder is partner.image_pipe.text_encoder is engine.video.pipe.text_encoder
    assert "text encoder shared with tiny-random" in partner.memory
    photo = tmp_path / "photo.png"
    Image.new("RGB", (96, 64), (200, 30, 30)).save(photo)
    result = engine.generate("a red ball rolls", use_raw=True, image_path=str(photo), num_inference_steps=1)
    record = json.loads(open(result.sidecar_path).read())
    assert record["video_preset"] == "tiny-random-i2v"


def test_partner_downloads_without_its_text_encoder_and_reads_the_text_presets(monkeypatch, tmp_path):
    import shutil

    import torch

    import pipeline.loading as loading
    from pipeline.loading import LoadedVideo, load_video, weights_folder

    text, image = get_video_spec("wan2.1-t2v-1.3b"), get_video_spec("wan2.2-ti2v-5b")
    partial = tmp_path / "wan2.2-without-text-encoder"  # what the download leaves: every folder but text_encoder
    shutil.copytree(
        weights_folder(get_video_spec("tiny-random-i2v")), partial, ignore=shutil.ignore_patterns("text_encoder")
    )
    folders = {text.hub_id: weights_folder(get_video_spec("tiny-random")), image.hub_id: partial}
    asked = {}

    def download(repo_id, approx_gb, allow_patterns=None):
        asked[repo_id] = allow_patterns
        return str(folders[repo_id])

    monkeypatch.setattr(loading, "ensure_downloaded", download)
    donor = LoadedVideo(text, None, "cpu", "float32", ())  # dropped from the GPU: its files are still there
    video = load_video(image, "cpu", text_encoder_from=donor)
    patterns = asked[image.hub_id]
    assert patterns and not any(p.startswith("text_encoder") for p in patterns) and "transformer/*" in patterns
    reference = load_video(get_video_spec("tiny-random"), "cpu").pipe.text_encoder
    for (name, p), (_, q) in zip(
        video.pipe.text_encoder.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), name
    assert video.pipe.text_encoder is video.image_pipe.text_encoder


def test_only_listed_partners_share_a_text_encoder():
    from pipeline.loading import SHARED_TEXT_ENCODER
    from pipeline.memory_models import text_encoder_config

    for partner, donor in SHARED_TEXT_ENCODER.items():
        assert get_video_spec(donor).image_partner == partner  # the app's preset and its own image partner
        assert text_encoder_config(partner) == text_encoder_config(donor)
