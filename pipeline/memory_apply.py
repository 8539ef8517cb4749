"""Detect the memory there is, plan for a preset, and apply a plan through diffusers' own offload APIs."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace

from pipeline.memory_plan import GB, Budget, MemoryPlan, Settings, estimate, plan_memory, rung_named
from pipeline.presets import VideoSpec
from prompts.presets import get_rewriter_spec
from runtime.devices import on_zerogpu

log = logging.getLogger(__name__)


def detect_budget(device: str, environ: Mapping[str, str] | None = None) -> Budget | None:
    """Free GPU memory (plus what this process already holds) and available RAM; RR_VRAM_GB plans for less.
    None when the GPU's memory cannot be read."""
    import psutil

    env = os.environ if environ is None else environ
    zerogpu = on_zerogpu(env)
    vram = 0.0
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():  # ZeroGPU's main process sees no GPU; the plan is fixed there anyway
            return Budget(0.0, 0.0, zerogpu=True) if zerogpu else None
        free, _ = torch.cuda.mem_get_info()
        vram = (free + torch.cuda.memory_reserved()) / GB
    if env.get("RR_VRAM_GB"):
        vram = min(vram, float(env["RR_VRAM_GB"])) if device == "cuda" else float(env["RR_VRAM_GB"])
    return Budget(round(vram, 2), round(psutil.virtual_memory().available / GB, 1), zerogpu=zerogpu)


def settings_for(spec: VideoSpec, height: int | None = None, width: int | None = None, num_frames: int | None = None,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None) -> Settings:
    """Plan settings: the preset's defaults unless given."""
    return Settings(
        height or spec.height, width or spec.width, num_frames or spec.num_frames,
        num_inference_steps or spec.num_inference_steps,
        (spec.guidance_scale if guidance_scale is None else guidance_scale) > 1.0,
    )


def plan_for(spec: VideoSpec, rewriter: str | None, budget: Budget | None, settings: Settings | None = None,
             below_gb: float | None = None) -> MemoryPlan:
    """Plan one preset pair; the LLM keeps its preset's CUDA quantization (the planner reports it).
    With no budget (memory could not be read) the plan is the previous fixed one: model offload + VAE tiling."""
    llm_quant = get_rewriter_spec(rewriter).quantization.get("cuda", "none") if rewriter else "none"
    settings = settings or settings_for(spec)
    if budget is None:
        unknown = Budget(0.0, 0.0)
        plan = estimate(spec.name, rewriter, llm_quant, rung_named("model offload"), settings, unknown)
        return replace(plan, fits=True, reason="GPU memory unknown: the default plan (model offload, VAE tiling)")
    return plan_memory(spec.name, rewriter, settings, budget, llm_quant, below_gb)


def quantization_config(plan: MemoryPlan):
    """diffusers' PipelineQuantizationConfig for the text encoder (bitsandbytes), or None."""
    quant = plan.components["text_encoder"].quantization
    if quant == "none":
        return None
    import torch
    from diffusers import PipelineQuantizationConfig

    kwargs = ({"load_in_8bit": True} if quant == "int8" else
              {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": torch.bfloat16})
    backend = "bitsandbytes_8bit" if quant == "int8" else "bitsandbytes_4bit"
    return PipelineQuantizationConfig(quant_backend=backend, quant_kwargs=kwargs, components_to_quantize=["text_encoder"])


def apply_plan(pipe, plan: MemoryPlan, device: str) -> tuple[str, ...]:
    """Place the pipeline's components as planned; returns the measures applied, in words.

    Pipeline-wide offload (model CPU offload, sequential offload) is one diffusers call; otherwise each
    component is resident, group-offloaded (CUDA streams prefetch the next group from pinned memory) or
    left on the CPU. fp8 storage and VAE tiling are the models' own switches."""
    import torch
    from diffusers.hooks import apply_group_offloading

    rung = rung_named(plan.rung)
    onload = torch.device(device)
    stream = onload.type == "cuda"  # streams need CUDA; elsewhere group offload runs synchronously
    done: list[str] = []
    if rung.transformer_storage == "fp8":  # before offloading: the hooks must see the fp8 weights
        pipe.transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
        done.append("transformer fp8 storage")
    if rung.pipeline_wide == "model_offload":  # diffusers onloads to its default accelerator (CUDA)
        pipe.enable_model_cpu_offload()
        done.append("model CPU offload")
    elif rung.pipeline_wide == "sequential":
        pipe.enable_sequential_cpu_offload()
        done.append("sequential CPU offload")
    elif all(plan.components[n].placement == "gpu" for n in ("text_encoder", "transformer", "vae")):
        pipe.to(device)
    else:
        for name in ("text_encoder", "transformer", "vae"):
            module, placement = getattr(pipe, name), plan.components[name].placement
            if placement == "gpu":
                module.to(onload)
            elif placement.startswith("group_"):
                level = "block_level" if placement == "group_block" else "leaf_level"
                blocks = {"num_blocks_per_group": 1} if level == "block_level" else {}
                apply_group_offloading(module, onload_device=onload, offload_device=torch.device("cpu"),
                                       offload_type=level, use_stream=stream, **blocks)
                done.append(f"{name} {level.replace('_', '-')} group offload" + (" with streams" if stream else ""))
            else:  # cpu: the engine encodes prompts there and hands the embeddings to the GPU
                done.append(f"{name} on CPU")
    if plan.components["text_encoder"].quantization != "none":
        done.append(f"text encoder {plan.components['text_encoder'].quantization}")
    if plan.vae == "tiling":
        pipe.vae.enable_tiling()
        done.append("VAE tiling")
    return tuple(done)



# -- at run time -----------------------------------------------------------------------------------
def request_settings(spec: VideoSpec, request) -> Settings:
    return settings_for(spec, request.height, request.width, request.num_frames, request.num_inference_steps,
                        request.guidance_scale)


def out_of_memory_message(video, rewriter: str | None, request) -> str:
    """What the settings need and which to lower."""
    budget = video.plan.budget if video.plan is not None else detect_budget(video.device)
    if budget is not None:
        plan = plan_for(video.spec, rewriter, budget, request_settings(video.spec, request))
        if plan.reason and not plan.fits:
            return f"Out of GPU memory. {plan.reason}"
    return (f"Out of GPU memory at {request.width}x{request.height}, {request.num_frames} frames, even with the "
            "most frugal memory plan. Lower num_frames or the size (height, width).")


def memory_record(video, request) -> dict:
    """For the sidecar: the plan, its estimate at these settings and, on CUDA, the measured peak."""
    plan = video.plan
    if plan is None:
        return {}
    llm = plan.components.get("llm")
    at = estimate(plan.video, plan.rewriter, llm.quantization if llm else "none", rung_named(plan.rung),
                  request_settings(video.spec, request), plan.budget)
    record = {"plan": plan.rung, "estimated_peak_vram_gb": at.estimated_peak_vram_gb,
              "estimated_slowdown": at.estimated_slowdown}
    if video.device == "cuda":
        import torch

        record["measured_peak_vram_gb"] = round(torch.cuda.max_memory_allocated() / GB, 2)
    return record
