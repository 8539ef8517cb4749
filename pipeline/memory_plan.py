"""The memory planner: estimate each placement of the rewriter and the video model, pick the fastest that fits.

Everything here is an *estimate*: weights are counted exactly (pipeline.memory_models, meta device),
activations, attention workspace and the VAE decode peak are derived analytically from the latent size,
and the slowdown comes from a simple time model (below). Sizes are GiB (2**30 bytes), called GB as
nvidia-smi and torch do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pipeline.memory_models import (
    REWRITER_ARCHITECTURES,
    component_dtypes,
    count_component,
    latent_geometry,
    text_encoder_config,
    transformer_config,
    vae_config,
    video_components,
)
from pipeline.presets import get_video_spec
from prompts.presets import REWRITER_PRESETS

GB = 1024**3
CUDA_RESERVE_GB = 0.5  # CUDA context, cuBLAS workspace: on the card but outside torch.cuda.max_memory_allocated
SAFETY = 0.10  # of the rest: allocator fragmentation and estimate error; a plan must fit in the remaining 90%
RAM_BASELINE_GB = 3.0  # Python, torch, gradio and the decoded frames in host memory

# Time model for the slowdown against a fully resident run. Video diffusion is compute-bound (Wan 1.3B at
# 832x480x81: ~283 TFLOP per transformer forward), so weights streamed while the previous group computes
# cost little, while synchronous copies and CPU compute add directly.
GPU_FLOPS = 150e12  # effective bf16 FLOP/s of a 4090-class GPU (~50% of peak); faster GPUs make offload relatively dearer
CPU_FLOPS = 0.2e12  # bf16 FLOP/s of a desktop CPU running the text encoder
PCIE_PINNED = 25e9  # bytes/s host -> GPU from pinned memory (PCIe 4.0 x16 in practice): group offload with streams
PCIE_PAGEABLE = 10e9  # bytes/s from pageable memory: model CPU offload, sequential offload (Flux: ~11 GB/s measured)
SYNC_S = {"group_block": 2e-4, "group_leaf": 5e-5, "sequential": 3e-4}  # per group moved: launch and sync
FP8_CAST_OVERHEAD = 0.02  # layerwise casting upcasts each layer's weights per forward
VAE_FLOP_PER_VOXEL = 6e6  # Wan VAE decoder: ~6 convs of 96-192 channels (3x3x3) per output voxel
TILE, TILE_STRIDE = 256, 192  # diffusers AutoencoderKLWan tiling defaults (pixels)
TEXT_TOKENS = 512  # umT5 always encodes max_sequence_length tokens (padded)
LLM_TOKENS = 1800  # system prompt + few-shot turns + 240 new tokens: the rewriter's KV cache

PLACEMENTS = ("gpu", "model_offload", "group_block", "group_leaf", "sequential", "cpu")


@dataclass(frozen=True)
class Settings:
    height: int
    width: int
    num_frames: int
    num_inference_steps: int = 30
    guidance: bool = True  # classifier-free guidance: two transformer forwards per step, two prompts encoded


@dataclass(frozen=True)
class Budget:
    vram_gb: float
    ram_gb: float
    zerogpu: bool = False

    @property
    def usable_vram_gb(self) -> float:
        return max(0.0, (self.vram_gb - CUDA_RESERVE_GB) * (1 - SAFETY))


@dataclass(frozen=True)
class Rung:
    """One way to place the video pipeline; the ladder runs from fastest to most frugal."""

    name: str
    text_encoder: str  # one of PLACEMENTS
    transformer: str
    vae: str
    text_encoder_quant: str = "none"  # "none" | "int8" | "nf4" (bitsandbytes)
    transformer_storage: str = "bf16"  # "bf16" | "fp8" (layerwise casting: stored fp8, computed bf16)
    vae_tiling: bool = True

    @property
    def pipeline_wide(self) -> str | None:
        """Offload applied to the whole pipeline by one diffusers call, if any."""
        for mode in ("model_offload", "sequential"):
            if mode in (self.text_encoder, self.transformer, self.vae):
                return mode
        return None


LADDER: tuple[Rung, ...] = (
    Rung("resident", "gpu", "gpu", "gpu", vae_tiling=False),
    Rung("resident, VAE tiling", "gpu", "gpu", "gpu"),
    Rung("text encoder streamed", "group_leaf", "gpu", "gpu"),
    Rung("model offload", "model_offload", "model_offload", "model_offload"),
    Rung("model offload, text encoder int8", "model_offload", "model_offload", "model_offload", text_encoder_quant="int8"),
    Rung("model offload, text encoder nf4", "model_offload", "model_offload", "model_offload", text_encoder_quant="nf4"),
    Rung("text encoder streamed, transformer fp8", "group_leaf", "gpu", "gpu", transformer_storage="fp8"),
    Rung("group offload", "group_leaf", "group_block", "gpu"),
    Rung("group offload, transformer fp8", "group_leaf", "group_block", "gpu", transformer_storage="fp8"),
    Rung("text encoder on CPU, group offload", "cpu", "group_block", "gpu"),
    Rung("text encoder on CPU, leaf offload", "cpu", "group_leaf", "gpu"),
    Rung("sequential offload", "sequential", "sequential", "sequential"),
)


@dataclass(frozen=True)
class ComponentPlan:
    placement: str
    quantization: str
    weights_gb: float  # at its storage dtype / quantization


@dataclass(frozen=True)
class MemoryPlan:
    video: str
    rewriter: str | None
    rung: str
    fits: bool
    estimated_peak_vram_gb: float  # comparable with torch.cuda.max_memory_allocated (an estimate)
    estimated_ram_gb: float
    estimated_slowdown: float  # estimated run time / estimated fully resident run time
    components: dict[str, ComponentPlan]
    vae: str  # "tiling" | "none"
    release_llm: bool  # the LLM leaves the GPU before the text encoder runs
    order: tuple[str, ...]
    phases_gb: dict[str, float]  # estimated peak per phase
    settings: Settings
    budget: Budget
    reason: str | None = None
    changes: tuple[str, ...] = field(default=())  # what a run-time step down changed

    def to_dict(self) -> dict:
        data = asdict(self)
        data["usable_vram_gb"] = round(self.budget.usable_vram_gb, 2)
        data["estimate"] = "weights counted on the meta device; activations, attention and VAE decode estimated"
        return data

    def describe(self) -> str:
        """One line for the status bar."""
        fits = "" if self.fits else ", does NOT fit"
        return (f"memory plan '{self.rung}' (est. peak {self.estimated_peak_vram_gb:.1f} GB of "
                f"{self.budget.vram_gb:.0f} GB, est. {self.estimated_slowdown:.2f}x resident time{fits})")

    @property
    def quantizations(self) -> dict[str, str]:
        return {name: c.quantization for name, c in self.components.items()}


# -- analytic estimates ---------------------------------------------------------------------------
def latent_tokens(video: str, s: Settings) -> int:
    """Transformer tokens: the VAE compresses time and space (Wan 2.1: 4x and 8x), then the transformer's
    patches (Wan: 1x2x2; LTX: 1x1x1)."""
    t, h, w = _patch(video)
    time_c, space_c, _ = latent_geometry(video)
    frames = ((s.num_frames - 1) // time_c + 1) // t
    return frames * (s.height // space_c // h) * (s.width // space_c // w)


def _patch(video: str) -> tuple[int, int, int]:
    cfg = transformer_config(video)
    patch = cfg.get("patch_size", 1)
    return tuple(patch) if isinstance(patch, (tuple, list)) else (cfg.get("patch_size_t", 1), patch, patch)


def transformer_activation_bytes(video: str, s: Settings) -> float:
    """Estimate: the larger of the attention and feed-forward phases of one block (batch 1 per forward).

    Attention phase: residual, norm, q, k, v, output in bf16 (6 copies) plus fp32 temporaries of the rms
    norm and rotary embedding (4 copies); flash/memory-efficient SDPA needs no tokens^2 workspace.
    Feed-forward phase: residual, fp32 norm and modulation (2 bf16 + 2 fp32 copies) plus the up-projection
    and its GELU output (2 x ffn_dim)."""
    cfg = transformer_config(video)
    tokens = latent_tokens(video, s)
    dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    attention = tokens * dim * (6 * 2 + 4 * 4)
    feed_forward = tokens * (dim * (2 * 2 + 2 * 4) + 2 * cfg.get("ffn_dim", 4 * dim) * 2)  # LTX: 4x feed-forward
    t, h, w = _patch(video)
    latents = 4 * latent_geometry(video)[2] * t * h * w * tokens * 4  # fp32 latents, noise predictions
    return max(attention, feed_forward) + latents


def text_encoder_activation_bytes(video: str) -> float:
    """Estimate: umT5 runs eager attention, so scores are heads x L^2 (fp32, with softmax copy)."""
    cfg = text_encoder_config(video)
    L = TEXT_TOKENS
    return L * (cfg["d_model"] * 2 * 8 + cfg["d_ff"] * 2 * 3) + 2 * cfg["num_heads"] * L * L * 4


def dtype_bytes(video: str, component: str) -> int:
    """Bytes per weight and activation of a component as the loader loads it on CUDA (bf16; the Wan VAE float32)."""
    return 4 if component_dtypes(video, "bfloat16").get(component) == "float32" else 2


def vae_decode_bytes(video: str, s: Settings, tiling: bool) -> float:
    """Estimate of the decode peak. Wan's VAE decodes one latent frame (4 video frames) at a time; the
    widest full-resolution tensor has base_dim x dim_mult[1] channels (before the last upsampling conv),
    with ~4 live copies (input, norm, activation, conv output with its causal cache). Tiling bounds that
    to a 256x256 tile but keeps every decoded tile (overlap (256/192)^2) before blending. Plus the output
    video and its denormalized copy. All at the VAE's dtype (Wan: float32)."""
    cfg = {"base_dim": 96, "dim_mult": [1, 2, 4, 4], **vae_config(video)}
    channels = (cfg.get("decoder_base_dim") or cfg["base_dim"]) * cfg["dim_mult"][1]
    h, w = (min(s.height, TILE), min(s.width, TILE)) if tiling else (s.height, s.width)
    element = dtype_bytes(video, "vae")
    working = 4 * h * w * channels * element * 4
    output = 3 * s.num_frames * s.height * s.width * element
    kept = (TILE / TILE_STRIDE) ** 2 if tiling else 1.0  # untiled: the chunks, then torch.cat
    return working + output * (kept + 1)


def llm_bytes(rewriter: str, quantization: str) -> tuple[float, float]:
    """(weights, activations) of the rewriter: KV cache for LLM_TOKENS plus prefill activations (estimate)."""
    size = count_component(rewriter, "llm")
    cfg = REWRITER_ARCHITECTURES[rewriter][2]
    cfg = cfg.get("text_config", cfg)  # a vision-language model: its language model decides the cache
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    kv = cfg["num_hidden_layers"] * 2 * cfg["num_key_value_heads"] * head_dim * LLM_TOKENS * 2
    prefill = LLM_TOKENS * (cfg["hidden_size"] * 2 * 6 + cfg["intermediate_size"] * 2 * 3)
    logits = cfg["vocab_size"] * 4 * 4
    return size.weight_bytes(2, quantization), kv + prefill + logits


def llm_copies(rewriter: str | None, video: str) -> int:
    """Copies of the rewriter's weights held for `video`: 2 when an adapter serves its template family (the
    adapter-merged model beside the base one, prompts.rewriter.Rewriter.tuned_for), else 1 (0 without one)."""
    spec = REWRITER_PRESETS.get(rewriter) if rewriter else None
    if spec is None:
        return 1 if rewriter else 0
    return 2 if get_video_spec(video).template_family in spec.tuned else 1


# -- the planner ----------------------------------------------------------------------------------
def _on_gpu_bytes(size, placement: str, bytes_per_param: float, full: float) -> float:
    """Weights of one component on the GPU while it runs."""
    if placement in ("gpu", "model_offload"):
        return full
    if placement == "group_block":  # the non-block group, the running block and the one prefetched
        return size.other_params * 2 + 2 * max(size.block_params, default=0) * bytes_per_param
    if placement == "group_leaf":  # the running leaf and the one prefetched
        return sum(size.leaf_params) * bytes_per_param
    if placement == "sequential":
        return size.leaf_params[0] * bytes_per_param
    return 0.0  # cpu


def _transfer_seconds(size_bytes: float, placement: str, groups: int, compute_s: float, passes: int) -> float:
    """Extra seconds spent moving one component's weights for `passes` forwards of `compute_s` each."""
    if placement == "model_offload":
        return 2 * size_bytes / PCIE_PAGEABLE  # onto the GPU once per run, and back
    if placement in ("group_block", "group_leaf"):  # streamed: hidden behind compute up to its length
        per = max(0.0, size_bytes / PCIE_PINNED - compute_s) + groups * SYNC_S[placement]
        return passes * per
    if placement == "sequential":
        return passes * (size_bytes / PCIE_PAGEABLE + groups * SYNC_S["sequential"])
    return 0.0


def estimate(video: str, rewriter: str | None, llm_quant: str, rung: Rung, s: Settings, budget: Budget) -> MemoryPlan:
    """Estimated peak, RAM and slowdown of one rung (fits is decided here; reason is left to plan_memory)."""
    sizes = video_components(video)
    te, dit, vae = sizes["text_encoder"], sizes["transformer"], sizes["vae"]
    dit_bpp = 1.0 if rung.transformer_storage == "fp8" else 2.0
    te_full = te.weight_bytes(2, rung.text_encoder_quant)
    dit_full = dit.other_params * 2 + sum(dit.block_params) * dit_bpp + dit.buffer_bytes
    vae_bpp = float(dtype_bytes(video, "vae"))
    vae_full = vae.weight_bytes(vae_bpp)
    full = {"text_encoder": te_full, "transformer": dit_full, "vae": vae_full}
    placement = {"text_encoder": rung.text_encoder, "transformer": rung.transformer, "vae": rung.vae}
    bpp = {"text_encoder": 2.0, "transformer": dit_bpp, "vae": vae_bpp}
    resident = sum(full[n] for n, p in placement.items() if p == "gpu")
    running = {n: _on_gpu_bytes(sizes[n], placement[n], bpp[n], full[n]) if placement[n] != "gpu" else 0.0
               for n in full}
    llm_w, llm_act = llm_bytes(rewriter, llm_quant) if rewriter else (0.0, 0.0)
    llm_w *= llm_copies(rewriter, video)

    # 1. Peak per phase; the LLM stays on the GPU only if it fits beside the video model's worst phase
    te_act = text_encoder_activation_bytes(video) if rung.text_encoder != "cpu" else 0.0
    # An image request encodes its image with the VAE first; model offload then keeps the VAE on the GPU through
    # the denoise (measured on a GPU: benchmarks/RESULTS.md), so image-capable presets count it there
    held_vae = running["vae"] if placement["vae"] == "model_offload" and get_video_spec(video).takes_image else 0.0
    phases = {
        "encode": resident + running["text_encoder"] + te_act,
        "denoise": resident + running["transformer"] + held_vae + transformer_activation_bytes(video, s),
        "decode": resident + running["vae"] + vae_decode_bytes(video, s, rung.vae_tiling),
    }
    video_peak = max(phases.values())
    release_llm = bool(rewriter) and (video_peak + llm_w) / GB > budget.usable_vram_gb
    phases["rewrite"] = resident + llm_w + llm_act if rewriter else 0.0
    peak = max(video_peak + (0.0 if release_llm else llm_w), phases["rewrite"])

    # 2. Host RAM: offloaded weights (streamed ones pinned: ~2x), the released LLM, the process itself
    ram = RAM_BASELINE_GB * GB + (llm_w if release_llm else 0.0)
    for name, p in placement.items():
        if p != "gpu":
            ram += full[name] * (2 if p.startswith("group") else 1)

    # 3. Time: resident compute, then what each placement adds (transfers, CPU compute, casts)
    tokens = latent_tokens(video, s)
    cfg = transformer_config(video)
    dim, layers = cfg["num_attention_heads"] * cfg["attention_head_dim"], cfg["num_layers"]
    forward_flops = 2 * dit.params * tokens + 4 * tokens * tokens * dim * layers + 4 * tokens * TEXT_TOKENS * dim * layers
    forwards = s.num_inference_steps * (2 if s.guidance else 1)
    prompts = 2 if s.guidance else 1
    dit_s = forward_flops / GPU_FLOPS
    te_flops = 2 * te.params * TEXT_TOKENS * prompts
    vae_flops = VAE_FLOP_PER_VOXEL * s.num_frames * s.height * s.width
    resident_s = forwards * dit_s + te_flops / GPU_FLOPS + vae_flops / GPU_FLOPS
    extra = 0.0
    leaves = {"text_encoder": te, "transformer": dit, "vae": vae}
    for name, p in placement.items():
        groups = len(leaves[name].block_params) if p == "group_block" else 12 * max(1, len(leaves[name].block_params))
        passes = forwards if name == "transformer" else (prompts if name == "text_encoder" else 1)
        compute = {"text_encoder": te_flops / prompts, "transformer": forward_flops, "vae": vae_flops}[name] / GPU_FLOPS
        extra += _transfer_seconds(full[name], p, groups, compute, passes)
    if rung.text_encoder == "cpu":
        extra += te_flops / CPU_FLOPS - te_flops / GPU_FLOPS
    if rung.transformer_storage == "fp8":
        extra += FP8_CAST_OVERHEAD * forwards * dit_s
    if rung.vae_tiling:
        extra += ((TILE / TILE_STRIDE) ** 2 - 1) * vae_flops / GPU_FLOPS
    if release_llm:
        extra += 2 * llm_w / PCIE_PAGEABLE  # to the CPU before the render, back for the next rewrite

    components = {
        name: ComponentPlan(placement[name], rung.text_encoder_quant if name == "text_encoder"
                            else ("fp8 storage" if name == "transformer" and dit_bpp == 1 else "none"),
                            round(full[name] / GB, 2))
        for name in full
    }
    if rewriter:
        components["llm"] = ComponentPlan("released before the video model" if release_llm else "gpu",
                                          llm_quant, round(llm_w / GB, 2))
    order = (("rewrite (LLM on GPU)", "LLM moved to CPU, memory freed") if release_llm else ("rewrite (LLM stays on GPU)",)) \
        if rewriter else ()
    order += ("text encoder" + (" on CPU" if rung.text_encoder == "cpu" else ""), "transformer (denoise)",
              "VAE decode" + (" (tiled)" if rung.vae_tiling else ""))
    fits = peak / GB <= budget.usable_vram_gb and ram / GB <= budget.ram_gb
    return MemoryPlan(
        video=video, rewriter=rewriter, rung=rung.name, fits=fits,
        estimated_peak_vram_gb=round(peak / GB, 2), estimated_ram_gb=round(ram / GB, 1),
        estimated_slowdown=round((resident_s + extra) / resident_s, 3), components=components,
        vae="tiling" if rung.vae_tiling else "none", release_llm=release_llm, order=order,
        phases_gb={k: round(v / GB, 2) for k, v in phases.items()}, settings=s, budget=budget,
    )


def rung_named(name: str) -> Rung:
    return next(r for r in LADDER if r.name == name)


def candidates(video: str, rewriter: str | None, llm_quant: str, s: Settings, budget: Budget) -> list[MemoryPlan]:
    return [estimate(video, rewriter, llm_quant, rung, s, budget) for rung in LADDER]


def plan_memory(video: str, rewriter: str | None, s: Settings, budget: Budget, llm_quant: str = "none",
                below_gb: float | None = None) -> MemoryPlan:
    """The fastest plan that fits (ties: the smaller peak); ZeroGPU: fully resident. `below_gb` keeps only
    plans whose estimated peak is under it (a run-time step down after an out-of-memory error)."""
    options = candidates(video, rewriter, llm_quant, s, budget)
    if budget.zerogpu:  # resident by policy; VAE tiling bounds the decode peak for ~1% of the time
        plan = options[1]
        if budget.vram_gb == 0:  # the slice is not visible from the process that loads
            return _with(plan, fits=True, reason="ZeroGPU: resident by policy; slice size not visible here")
        return _with(plan, reason=None if plan.fits else "ZeroGPU: resident by policy; the estimate exceeds the slice")
    if below_gb is not None:
        options = [p for p in options if p.estimated_peak_vram_gb < below_gb]
    fitting = [p for p in options if p.fits]
    if fitting:
        return min(fitting, key=lambda p: (p.estimated_slowdown, p.estimated_peak_vram_gb))
    if not options:
        return _with(candidates(video, rewriter, llm_quant, s, budget)[-1], fits=False,
                     reason=f"no plan uses less than {below_gb:.1f} GB")
    frugal = min(options, key=lambda p: p.estimated_peak_vram_gb)
    return _with(frugal, reason=not_fitting_reason(video, rewriter, llm_quant, s, budget, frugal))


def not_fitting_reason(video: str, rewriter: str | None, llm_quant: str, s: Settings, budget: Budget,
                       frugal: MemoryPlan) -> str:
    """How much memory these settings need, and which smaller settings would fit."""
    need = frugal.estimated_peak_vram_gb / (1 - SAFETY) + CUDA_RESERVE_GB
    if frugal.estimated_peak_vram_gb <= budget.usable_vram_gb:
        return (f"Needs about {frugal.estimated_ram_gb:.0f} GB of host RAM for '{frugal.rung}'; "
                f"{budget.ram_gb:.0f} GB available.")
    over = [phase for phase, gb in frugal.phases_gb.items() if gb > budget.usable_vram_gb]
    lower, hint = [], ""
    if "rewrite" in over:
        hint = f" Use a smaller rewriter or none (the rewrite needs {frugal.phases_gb['rewrite']:.1f} GB)."
    video_over = [phase for phase in over if phase != "rewrite"]
    if video_over:  # which smaller settings fit (without the rewriter when that is also too big)
        alone = None if "rewrite" in over else rewriter
        frames = s.num_frames - 4
        while frames >= 5:
            smaller = Settings(s.height, s.width, frames, s.num_inference_steps, s.guidance)
            if any(p.fits for p in candidates(video, alone, llm_quant, smaller, budget)):
                lower.append(f"num_frames <= {frames}")
                break
            frames -= 4
        half = Settings(s.height // 32 * 16, s.width // 32 * 16, s.num_frames, s.num_inference_steps, s.guidance)
        if any(p.fits for p in candidates(video, alone, llm_quant, half, budget)):
            lower.append(f"size {half.width}x{half.height}")
    if lower:
        hint += f" Lower {' or '.join(lower)}."
    elif video_over:
        hint += " No smaller setting of this preset fits either."
    worst = ", ".join(f"{phase} {frugal.phases_gb[phase]:.1f} GB" for phase in over)
    return (f"{s.width}x{s.height}, {s.num_frames} frames needs about {need:.1f} GB of GPU memory even with "
            f"'{frugal.rung}' (estimated peaks: {worst}; plus the CUDA context "
            f"and a {SAFETY:.0%} margin); {budget.vram_gb:g} GB available.{hint}")


def _with(plan: MemoryPlan, **changes) -> MemoryPlan:
    from dataclasses import replace

    return replace(plan, **changes)
