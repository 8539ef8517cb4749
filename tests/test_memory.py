"""Memory planner: meta-device sizes, the ladder over budgets, applying a plan, the out-of-memory retry."""

import json

import pytest

from pipeline.memory_plan import GB, Budget, Settings, plan_memory

WAN = "wan2.1-t2v-1.3b"
QWEN = "qwen2.5-3b-instruct"
DEFAULT = Settings(480, 832, 81)
BUDGETS = (2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 32, 48, 80)


# -- sizes counted on the meta device ---------------------------------------------------------------
@pytest.mark.parametrize("preset, component, published", [
    (WAN, "transformer", 1.42e9),  # Wan 2.1 1.3B by its config
    (WAN, "text_encoder", 5.7e9),  # umT5-XXL encoder, its two embedding tables one tensor
])
def test_meta_counts_match_published_parameter_counts(preset, component, published):
    from pipeline.memory_models import count_component

    size = count_component(preset, component)
    assert abs(size.params - published) / published < 0.10
    assert len(size.block_params) == {"transformer": 30, "text_encoder": 24}[component]


def test_tied_embeddings_are_counted_once():
    from pipeline.memory_models import count_component

    llm = count_component(QWEN, "llm")
    assert abs(llm.params - 3.09e9) / 3.09e9 < 0.03  # Qwen2.5-3B with lm_head tied to the embedding
    te = count_component(WAN, "text_encoder")
    assert te.params < 6.0e9  # not 6.7B: shared and encoder.embed_tokens are one tensor


# -- the planner ------------------------------------------------------------------------------------
@pytest.mark.parametrize("rewriter", [QWEN, None])
def test_less_memory_never_gives_a_faster_plan_and_claims_are_within_budget(rewriter):
    plans = [plan_memory(WAN, rewriter, DEFAULT, Budget(gb, 64), "nf4") for gb in BUDGETS]
    for bigger, smaller in zip(plans[::-1], plans[::-1][1:], strict=False):
        assert smaller.estimated_slowdown >= bigger.estimated_slowdown
    for plan in plans:
        if plan.fits:
            assert plan.estimated_peak_vram_gb <= plan.budget.usable_vram_gb <= plan.budget.vram_gb
        else:
            assert plan.reason and "GB" in plan.reason


def test_required_plans_for_wan_at_832x480x81():
    at = {gb: plan_memory(WAN, QWEN, DEFAULT, Budget(gb, 64), "nf4") for gb in (2, 6, 8, 24, 80)}
    assert at[80].rung == "resident" and all(c.placement == "gpu" for c in at[80].components.values())
    offload = next(p for p in _all(24) if p.rung == "model offload")
    assert at[24].fits and at[24].estimated_slowdown <= offload.estimated_slowdown
    assert at[8].fits and at[8].estimated_peak_vram_gb <= 8
    assert at[6].fits
    assert at[2].fits or ("needs about" in at[2].reason and "Lower" in at[2].reason)


def _all(gb):
    from pipeline.memory_plan import candidates

    return candidates(WAN, QWEN, "nf4", DEFAULT, Budget(gb, 64))


def test_estimates_grow_with_the_video_and_tiling_lowers_the_decode_peak():
    from pipeline.memory_plan import transformer_activation_bytes, vae_decode_bytes

    small = Settings(240, 416, 33)
    assert transformer_activation_bytes(WAN, small) < transformer_activation_bytes(WAN, DEFAULT)
    assert vae_decode_bytes(WAN, DEFAULT, tiling=True) < vae_decode_bytes(WAN, DEFAULT, tiling=False)
    assert 1 * GB < transformer_activation_bytes(WAN, DEFAULT) < 4 * GB  # ~1.7 GB: flash attention, no N^2


def test_under_model_offload_an_image_capable_preset_counts_the_vae_held_through_the_denoise(monkeypatch):
    from dataclasses import replace

    import pipeline.memory_plan as memory_plan
    from pipeline.memory_models import video_components
    from pipeline.presets import get_video_spec

    video, s, budget = "wan2.2-ti2v-5b", Settings(704, 1280, 81), Budget(80, 64)
    rungs = {rung.name: rung for rung in memory_plan.LADDER}

    def denoise(rung: str) -> float:
        return memory_plan.estimate(video, None, "none", rungs[rung], s, budget).phases_gb["denoise"]

    with_image = {name: denoise(name) for name in ("model offload", "group offload")}
    text_only = replace(get_video_spec(video), image_pipeline_class=None)
    monkeypatch.setattr(memory_plan, "get_video_spec", lambda name: text_only)
    vae_gb = video_components(video)["vae"].weight_bytes(float(memory_plan.dtype_bytes(video, "vae"))) / GB
    assert vae_gb > 2  # ~0.7B parameters in float32
    assert with_image["model offload"] - denoise("model offload") == pytest.approx(vae_gb, abs=0.01)
    assert with_image["group offload"] == pytest.approx(denoise("group offload"))  # the VAE stays resident there


def test_a_rewriter_with_an_adapter_for_the_target_counts_both_copies_of_its_weights(monkeypatch):
    from dataclasses import replace

    import pipeline.memory_plan as memory_plan
    from prompts.presets import REWRITER_PRESETS

    s, budget, rung = Settings(480, 832, 81), Budget(24, 64), memory_plan.LADDER[0]

    def rewrite_gb(rewriter: str) -> float:
        return memory_plan.estimate("wan2.1-t2v-1.3b", rewriter, "none", rung, s, budget).phases_gb["rewrite"]

    tuned = rewrite_gb("gemma-3-270m")  # its adapter serves the wan family: base + merged model
    monkeypatch.setitem(REWRITER_PRESETS, "gemma-3-270m", replace(REWRITER_PRESETS["gemma-3-270m"], tuned={}))
    weights_gb = memory_plan.llm_bytes("gemma-3-270m", "none")[0] / GB
    assert tuned - rewrite_gb("gemma-3-270m") == pytest.approx(weights_gb, abs=0.01)


def test_zerogpu_is_resident_and_little_ram_rules_out_streaming():
    zero = plan_memory(WAN, QWEN, DEFAULT, Budget(40, 64, zerogpu=True), "nf4")
    assert all(c.placement == "gpu" for name, c in zero.components.items() if name != "llm")
    tight = plan_memory(WAN, None, DEFAULT, Budget(6, 16), "none")
    assert not tight.fits or tight.estimated_ram_gb <= 16


def test_rr_vram_gb_plans_for_less(monkeypatch):
    from pipeline.memory_apply import detect_budget

    budget = detect_budget("cpu", {"RR_VRAM_GB": "6"})
    assert budget.vram_gb == 6 and budget.ram_gb > 0 and not budget.zerogpu


def test_plan_cli_json(capsys):
    from pipeline.__main__ import main

    assert main(["plan", "--video", WAN, "--vram-gb", "8", "--ram-gb", "64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is True and data["estimated_peak_vram_gb"] <= 8
    assert data["estimated_slowdown"] >= 1 and data["vae"] in ("tiling", "none")
    assert set(data["components"]) >= {"text_encoder", "transformer", "vae", "llm"}
    assert all({"placement", "quantization"} <= set(c) for c in data["components"].values())
    assert main(["plan", "--vram-gb", "1", "--ram-gb", "64", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is False and "needs about" in data["reason"]


# -- applying a plan to the tiny pipeline -----------------------------------------------------------
def _tiny_pipe():
    import diffusers

    from pipeline.loading import weights_folder
    from pipeline.presets import get_video_spec

    pipe = diffusers.WanPipeline.from_pretrained(weights_folder(get_video_spec("tiny-random")))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tiny_plan(rung_name):
    from pipeline.memory_plan import estimate, rung_named

    return estimate("tiny-random", None, "none", rung_named(rung_name), Settings(64, 112, 9, 2), Budget(8, 64))


def test_group_offload_plan_attaches_diffusers_hooks_on_cpu():
    from diffusers.hooks.group_offloading import _is_group_offload_enabled

    from pipeline.memory_apply import apply_plan

    pipe = _tiny_pipe()
    applied = apply_plan(pipe, _tiny_plan("group offload"), "cpu")
    assert _is_group_offload_enabled(pipe.transformer) and _is_group_offload_enabled(pipe.text_encoder)
    assert not _is_group_offload_enabled(pipe.vae) and pipe.vae.use_tiling
    assert "transformer block-level group offload" in applied and "VAE tiling" in applied
    frames = pipe("a red ball", num_frames=5, height=32, width=32, num_inference_steps=1, output_type="np").frames[0]
    assert frames.shape[0] == 5


@pytest.mark.parametrize("rung, method", [("model offload", "enable_model_cpu_offload"),
                                          ("sequential offload", "enable_sequential_cpu_offload")])
def test_pipeline_wide_offload_uses_the_diffusers_call(monkeypatch, rung, method):
    import diffusers

    from pipeline.memory_apply import apply_plan

    calls = []
    monkeypatch.setattr(diffusers.WanPipeline, method, lambda self, *a, **k: calls.append(method))
    pipe = _tiny_pipe()
    apply_plan(pipe, _tiny_plan(rung), "cuda")
    assert calls == [method] and pipe.vae.use_tiling


def test_fp8_storage_uses_layerwise_casting():
    import torch

    from pipeline.memory_apply import apply_plan

    pipe = _tiny_pipe()
    apply_plan(pipe, _tiny_plan("group offload, transformer fp8"), "cpu")
    assert pipe.transformer.blocks[0].ffn.net[2].weight.dtype == torch.float8_e4m3fn


def test_quantized_text_encoder_goes_through_pipeline_quantization_config():
    from diffusers import PipelineQuantizationConfig

    from pipeline.memory_apply import quantization_config

    config = quantization_config(_tiny_plan("model offload, text encoder nf4"))
    assert isinstance(config, PipelineQuantizationConfig) and config.components_to_quantize == ["text_encoder"]
    assert quantization_config(_tiny_plan("resident")) is None


# -- the out-of-memory retry ------------------------------------------------------------------------
def test_out_of_memory_steps_down_retries_once_and_says_so(monkeypatch, tmp_path):
    import diffusers
    import torch

    from pipeline.engine import Engine
    from pipeline.loading import load_video
    from pipeline.presets import get_video_spec

    spec = get_video_spec("tiny-random")
    engine = Engine(load_video(spec, "cpu", plan=_tiny_plan("resident")), None, tmp_path)
    original, failures = diffusers.WanPipeline.__call__, []

    def fail_once(self, *args, **kwargs):
        if not failures:
            failures.append(1)
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(diffusers.WanPipeline, "__call__", fail_once)
    monkeypatch.setattr(diffusers.WanPipeline, "enable_model_cpu_offload", lambda self, *a, **k: None)
    monkeypatch.setattr(diffusers.WanPipeline, "enable_sequential_cpu_offload", lambda self, *a, **k: None)
    result = engine.generate("a red ball", use_raw=True, seed=1, num_inference_steps=1)
    record = json.loads(open(result.sidecar_path).read())
    assert "Out of GPU memory with plan 'resident'" in record["memory_note"]
    assert engine.video.plan.rung != "resident" and record["memory_plan"] == engine.video.plan.rung
    assert engine.video.plan.estimated_peak_vram_gb < _tiny_plan("resident").estimated_peak_vram_gb
    assert "memory plan" in engine.status()


def test_out_of_memory_twice_is_a_clear_error(monkeypatch, tmp_path):
    import diffusers
    import torch

    from pipeline.engine import Engine
    from pipeline.loading import load_video
    from pipeline.presets import get_video_spec

    def always(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    engine = Engine(load_video(get_video_spec("tiny-random"), "cpu", plan=_tiny_plan("group offload")), None, tmp_path)
    monkeypatch.setattr(diffusers.WanPipeline, "__call__", always)
    with pytest.raises(ValueError, match="Out of GPU memory.*(Lower|num_frames)"):
        engine.generate("a red ball", use_raw=True, seed=1, num_inference_steps=1)


# -- CUDA only --------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_estimate_against_measured_peak_on_cuda(tmp_path):
    from pipeline.engine import Engine

    engine = Engine.load("none", "tiny-random", tmp_path, device="cuda")
    assert engine.video.plan is not None
    result = engine.generate("a red ball", use_raw=True, seed=1, num_inference_steps=2)
    record = json.loads(open(result.sidecar_path).read())
    measured, estimated = record["memory_measured_peak_vram_gb"], record["memory_estimated_peak_vram_gb"]
    assert 0 < measured <= estimated * 1.5 + 0.05  # tiny models: the CUDA allocator's granularity dominates


def test_memory_benchmark_prints_the_table(capsys):
    from benchmarks.memory import BUDGETS_GB, main

    assert main(["--rewriter", "none"]) == 0
    out = capsys.readouterr().out
    assert all(f"| {gb} GB |" in out for gb in BUDGETS_GB) and "estimates" in out
