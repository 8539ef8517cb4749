"""GPU check: the CUDA path end to end with tiny models and no hub access, printed as one pass/fail table.

It loads the tiny rewriter in 4 bits (bitsandbytes) and moves it off the GPU and back; runs the embedded
rewriter's tuned path (a tiny Gemma 3 with a LoRA adapter merged, both models off the GPU and back); renders the tiny Wan
pipeline, built here by runtime.tiny and loaded like the real Wan presets (bf16, the VAE in float32), once per
rung of the memory ladder (pipeline.memory_plan.LADDER: group offload with CUDA streams, model and sequential
offload, fp8 storage, an int8 and an nf4 text encoder); on each rung also renders the image-capable pair:
tiny-random-i2v (its image-to-video pipeline, and the text-to-video pipeline that pipeline.loading.sharing_pipeline
builds over the same models) with a text and an image request, and tiny-random with a reference image (the engine
switches to that partner, which reads tiny-random's text encoder, then back for a text request), checking after
each call where the models are (model or sequential offload: nothing left on the GPU and the hooks armed for the
next call; group offload: its hooks in place; resident: still on the GPU) and reporting which were on the GPU
while the transformer ran; decodes a large latent with VAE tiling; and runs out of GPU memory for real under a
memory cap (torch.cuda.set_per_process_memory_fraction) to see the engine step down to a smaller plan, and give
its message when that runs out too. Each row shows the measured peak (torch.cuda.max_memory_allocated) beside the
plan's estimate (rows of several renders: the highest, each render checked against its own). Exit status 1 when
any row fails.

On the GPU machine (Python 3.12, torch, transformers and accelerate installed, no internet), from the repository
root, with `.whl/` carried there (diffusers, bitsandbytes, a huggingface_hub new enough for diffusers, requests;
made by `python -m benchmarks.gpu_wheels`, 27 MiB), in under two minutes:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 && python3 -m benchmarks.gpu_check --out $OUT/gpu_check.json

Without a GPU, `python -m benchmarks.gpu_check --device cpu` runs what a CPU can: rungs that need an accelerator
are skipped and the out-of-memory error is injected instead. Frames are checked, not encoded (no ffmpeg needed).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import sys
import tempfile
import time
import weakref
from dataclasses import asdict, dataclass, replace
from pathlib import Path

PROMPT = "A red ball rolls across a wooden table while the camera slowly pans left."
SETTINGS = {"height": 64, "width": 112, "num_frames": 9, "num_inference_steps": 2, "seed": 1}  # tiny-random's defaults
I2V_SETTINGS = {**SETTINGS, "width": 128}  # tiny-random-i2v's 16:9 preview size (sides in multiples of 32)
PARTNER = "tiny-random-i2v"  # tiny-random's image partner
SWITCH = f"tiny-random + image ({PARTNER})"
SLACK_GB = 0.25  # tiny models: cuBLAS/cuDNN workspaces and allocator rounding dwarf the weights and activations
RATIO = 1.5  # measured peak may exceed the estimate by this factor plus SLACK_GB before the row fails
CPU_BUDGET_GB = 8.0  # --device cpu plans as for a GPU of this size
CAP_MARGIN = 2 * 1024**2  # bytes above what the process holds when the cap is set: the next render must overrun it


@dataclass
class Row:
    check: str
    result: str  # "pass" | "fail" | "skip"
    measured_gb: float | None = None
    estimated_gb: float | None = None
    seconds: float = 0.0
    detail: str = ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default=None, help="default: cuda when available")
    parser.add_argument("--out", type=Path, help="also write the rows and versions as JSON here")
    parser.add_argument("--only", help=f"a comma-separated subset of: {', '.join(CHECKS)}")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(CHECKS)
    if unknown := [n for n in names if n not in CHECKS]:
        parser.error(f"unknown check {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RR_CACHE", tempfile.mkdtemp(prefix="gpu-check-"))  # tiny models built fresh

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available here; run with --device cpu for the reduced check.", file=sys.stderr)
        return 2
    outputs = Path(tempfile.mkdtemp(prefix="gpu-check-out-"))
    rows: list[Row] = []
    for name in names:
        rows.extend(_guarded(name, CHECKS[name], device, outputs))
    env = environment(device)
    print(
        f"GPU check on {env['device_name']} ({device}); torch {env['torch']}, diffusers {env['diffusers']}, "
        f"transformers {env['transformers']}, bitsandbytes {env['bitsandbytes']}"
    )
    print(table(rows))
    failed = [r.check for r in rows if r.result == "fail"]
    print(
        f"{len(rows) - len(failed)} of {len(rows)} rows pass or skip"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"environment": env, "rows": [asdict(r) for r in rows], "passed": not failed}, indent=2)
        )
    return 1 if failed else 0


# -- the checks ------------------------------------------------------------------------------------
def check_rewriter_4bit(device: str, outputs: Path) -> list[Row]:
    """The project's rewriter loader with nf4 (bitsandbytes): generate, move to the CPU and back, same tokens."""
    import torch

    from pipeline.memory_plan import GB, llm_bytes
    from prompts.presets import get_rewriter_spec
    from prompts.rewriter import Rewriter

    _reset_peak(device)
    spec = replace(get_rewriter_spec("tiny-random"), quantization={device: "nf4"})
    rewriter = Rewriter.load(spec, device)
    llm = rewriter.llm
    layers = {type(m).__name__ for m in llm.model.modules()}
    problems = [] if llm.quantization == "nf4" and "Linear4bit" in layers else [f"not 4-bit: {sorted(layers)}"]
    detail = f"quantization {llm.quantization}"
    if device == "cpu":  # bitsandbytes' CPU kernels repack weights in 64-wide blocks: the tiny model's are 32
        return [_row("rewriter nf4 (bitsandbytes)", device, problems, None, None, detail + "; loaded, not run")]
    inputs = llm.tokenizer(PROMPT, return_tensors="pt").to(device)
    first = llm.model.generate(**inputs, max_new_tokens=8, do_sample=False)
    measured = _peak_gb(device)
    if device == "cuda":
        held = torch.cuda.memory_allocated()
        rewriter.release_accelerator()
        freed = held - torch.cuda.memory_allocated()
        if llm.model is None or any(p.device.type != "cpu" for p in llm.model.parameters()):
            problems.append("release_accelerator left it on the GPU (or dropped it)")
        llm.ensure_on_device()  # what the next rewrite does first
        again = llm.model.generate(**inputs, max_new_tokens=8, do_sample=False)
        if not torch.equal(first, again):
            problems.append("different tokens after the round trip to the CPU")
        detail += f"; released {freed / 2**20:.1f} MiB to the CPU and back, same tokens"
    estimated = sum(llm_bytes("tiny-random", "nf4")) / GB
    return [_row("rewriter nf4 (bitsandbytes)", device, problems, measured, estimated, detail)]


def check_tuned_rewriter(device: str, outputs: Path) -> list[Row]:
    """The embedded rewriter's tuned path: a tiny Gemma 3 in the converted-model cache of a scratch folder, a LoRA
    adapter merged by the same loader as the real one, rewrites through KeepWords, then both models (base and
    merged) released to the CPU and back with the same text; and the English-only output layer scoring allowed
    ids outside its subset on this device."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from pipeline.loading import rewrite_target
    from prompts.embedded import gemma_cache_path
    from prompts.presets import get_rewriter_spec
    from prompts.rewriter import Partial, Rewriter
    from prompts.vocabulary import SubsetHead
    from runtime.tiny import build_tokenizer

    start, problems = time.perf_counter(), []
    with _scratch_cache(outputs / "tuned-cache") as cache:
        folder = gemma_cache_path(cache)
        tokenizer = build_tokenizer(folder)
        torch.manual_seed(0)
        config = Gemma3TextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=4,
            layer_types=["sliding_attention", "full_attention"],
        )  # fmt: skip
        Gemma3ForCausalLM(config).save_pretrained(folder)
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)
        get_peft_model(Gemma3ForCausalLM(config), lora).save_pretrained(outputs / "tiny-wan-lora")
        spec = replace(
            get_rewriter_spec("gemma-3-270m"), tuned={"wan": str(outputs / "tiny-wan-lora")},
            output_vocabulary="full", max_new_tokens=24, min_new_tokens=0,
        )  # fmt: skip
        _reset_peak(device)
        rewriter = Rewriter.load(spec, device)
        tuned = rewriter.tuned_for("wan")
        target = rewrite_target(replace(tiny_spec(), template_family="wan"))

        def texts() -> list[str]:
            return [item.text for item in rewriter.stream(PROMPT, target, seed=0) if isinstance(item, Partial)]

        first = texts()
        measured = _peak_gb(device)
        models = {"base": rewriter, "merged": tuned}
        if not first:
            problems.append("the tuned path wrote nothing")
        if tuned.llm.weights == "base" or any(p.device.type != device for r in models.values() for p in r.llm.model.parameters()):
            problems.append(f"not merged, or not on {device}: {tuned.llm.weights}")
        detail = f"{len(first)} streamed updates, weights {tuned.llm.weights}"
        if device == "cuda":
            held = torch.cuda.memory_allocated()
            rewriter.release_accelerator()
            freed = held - torch.cuda.memory_allocated()
            if any(r.llm.model is None or any(p.device.type != "cpu" for p in r.llm.model.parameters()) for r in models.values()):
                problems.append("release_accelerator left a model on the GPU (or dropped it)")
            if texts() != first:
                problems.append("different text after the round trip to the CPU")
            detail += f"; both released ({freed / 2**20:.1f} MiB) and back, same text"
        weight = torch.randn(50, 8, device=device)
        head = SubsetHead(weight, [1, 4, 9], int8=False)
        head.allow([7, 33], weight)
        hidden = torch.randn(1, 8, device=device)
        if not torch.allclose(head(hidden)[0, [7, 33]], (hidden @ weight.T)[0, [7, 33]], atol=1e-4):
            problems.append("SubsetHead.allow: allowed ids not scored as the full layer")
    return [_row("rewriter tuned (LoRA merged)", device, problems, measured, None, detail, start, check_estimate=False)]


@contextlib.contextmanager
def _scratch_cache(folder: Path):
    """RR_CACHE pointed at `folder` meanwhile: the tiny model must not land where a real converted model lives."""
    old = os.environ.get("RR_CACHE")
    os.environ["RR_CACHE"] = str(folder)
    try:
        yield folder
    finally:
        if old is None:
            os.environ.pop("RR_CACHE", None)
        else:
            os.environ["RR_CACHE"] = old


def check_rungs(device: str, outputs: Path) -> list[Row]:
    """Each rung of the ladder: load through pipeline.loading with that plan, render through the engine."""
    from pipeline.memory_plan import LADDER

    return [_render_rung(device, outputs, rung) for rung in LADDER]


def _render_rung(device: str, outputs: Path, rung) -> Row:
    import torch
    from diffusers.hooks.group_offloading import _is_group_offload_enabled

    from pipeline.loading import load_video
    from pipeline.memory_plan import estimate

    name = f"rung: {rung.name}"
    needs = _needs_accelerator(rung)
    if device == "cpu" and needs:
        return Row(name, "skip", detail=needs)
    start = time.perf_counter()
    plan = estimate(tiny_spec().name, None, "none", rung, _settings(), _budget(device))
    video = load_video(tiny_spec(), device, plan=plan)
    pipe, problems = video.pipe, []
    for component, placement in (
        ("text_encoder", rung.text_encoder),
        ("transformer", rung.transformer),
        ("vae", rung.vae),
    ):
        if placement.startswith("group_") and not _is_group_offload_enabled(getattr(pipe, component)):
            problems.append(f"{component}: no group offload hooks")
    if (
        device == "cuda"
        and any(p.startswith("group_") for p in (rung.text_encoder, rung.transformer, rung.vae))
        and not any("with streams" in m for m in video.memory)
    ):
        problems.append("group offload without CUDA streams")
    if rung.transformer_storage == "fp8" and pipe.transformer.blocks[0].ffn.net[2].weight.dtype != torch.float8_e4m3fn:
        problems.append("transformer not stored in fp8")
    layers = {type(m).__name__ for m in pipe.text_encoder.modules()}
    wanted = {"int8": "Linear8bitLt", "nf4": "Linear4bit"}.get(rung.text_encoder_quant)
    if wanted and wanted not in layers:
        problems.append(f"text encoder not {rung.text_encoder_quant}")
    if device == "cuda" and {p.dtype for p in pipe.vae.parameters()} != {torch.float32}:
        problems.append("VAE not float32")
    del pipe
    record, frames = _render(video, outputs)
    problems += frames
    detail = ", ".join(video.memory) or "fully resident"
    row = _row(
        name,
        device,
        problems,
        record.get("memory_measured_peak_vram_gb"),
        record.get("memory_estimated_peak_vram_gb"),
        detail,
        start,
    )
    del video
    _free(device)
    return row


def check_image_rungs(device: str, outputs: Path) -> list[Row]:
    """Each rung with the image-capable pair: tiny-random-i2v with a text and an image request, then tiny-random
    with a reference image (switched to tiny-random-i2v) and a text request; where the models are after each call."""
    from pipeline.memory_plan import LADDER

    image = _reference_image(outputs)
    rows = []
    for rung in LADDER:  # a row that raises fails alone
        for render, what in ((_render_image_preset, f"{PARTNER} text + image"), (_render_switch, SWITCH)):
            check = functools.partial(_one_row, render, rung=rung, image=image)
            rows += _guarded(f"rung: {rung.name} · {what}", check, device, outputs)
    return rows


def _one_row(render, device: str, outputs: Path, rung, image: Path) -> list[Row]:
    return [render(device, outputs, rung, image)]


def _render_image_preset(device: str, outputs: Path, rung, image: Path) -> Row:
    """tiny-random-i2v loaded with the rung's plan: a text request (the text pipeline over the image pipeline's
    models) and an image request, through the engine."""
    from pipeline.engine import Engine
    from pipeline.loading import load_video
    from pipeline.memory_plan import estimate

    name = f"rung: {rung.name} · {PARTNER} text + image"
    if device == "cpu" and (needs := _needs_accelerator(rung)):
        return Row(name, "skip", detail=needs)
    start = time.perf_counter()
    spec = tiny_spec(PARTNER)
    plan = estimate(spec.name, None, "none", rung, _settings(spec, I2V_SETTINGS), _budget(device))
    video = load_video(spec, device, plan=plan)
    problems = [
        f"text pipeline does not share the image pipeline's {n}"
        for n in _MODELS
        if getattr(video.pipe, n) is not getattr(video.image_pipe, n)
    ]
    engine = Engine(video, None, outputs)
    calls = []
    for label, path in (("text", None), ("image", image)):
        request = engine.build(PROMPT, image_path=str(path) if path else None, **I2V_SETTINGS)
        with _while_denoising(engine, device) as during:
            record, seen = _render_request(engine, request, outputs)
        wrong, where = _placement(engine.video, device, during)
        problems += [f"{label}: {p}" for p in [*seen, *wrong]]
        calls.append((label, record, where))
    del video
    row = _calls_row(name, device, problems, calls, ", ".join(engine.video.memory) or "fully resident", start)
    del engine
    _free(device)
    return row


def _render_switch(device: str, outputs: Path, rung, image: Path) -> Row:
    """tiny-random loaded with the rung's plan renders a request with a reference image: the engine loads its
    partner (with the rung's plan; on CUDA after dropping tiny-random) reading tiny-random's text encoder; then a
    text request switches back."""
    import pipeline.loading as loading
    from pipeline.engine import Engine
    from pipeline.memory_apply import request_settings
    from pipeline.memory_plan import estimate

    name = f"rung: {rung.name} · {SWITCH}"
    if device == "cpu" and (needs := _needs_accelerator(rung)):
        return Row(name, "skip", detail=needs)
    start = time.perf_counter()
    budget = _budget(device)
    plan = estimate("tiny-random", None, "none", rung, _settings(tiny_spec(), SETTINGS), budget)
    engine = Engine(loading.load_video(tiny_spec(), device, plan=plan), None, outputs)
    requests = [
        ("image", engine.build(PROMPT, image_path=str(image), **SETTINGS)),  # the partner's size, 128x224
        ("text", engine.build(PROMPT, **SETTINGS)),
    ]
    load = loading.load_video

    def at_rung(spec, device, plan=None, rewriter=None, text_encoder_from=None):
        """The engine's load (plan None: for the detected memory), with this rung's plan and CUDA's dtypes."""
        spec = tiny_spec(spec.name)
        request = next(r for _, r in requests if r.video == spec.name)
        plan = plan or estimate(spec.name, rewriter, "none", rung, request_settings(spec, request), budget)
        return load(spec, device, plan=plan, rewriter=rewriter, text_encoder_from=text_encoder_from)

    problems, calls = [], []
    loading.load_video = at_rung
    try:
        for label, request in requests:
            with _while_denoising(engine, device) as during:
                record, seen = _render_request(engine, request, outputs)
            video, other = (engine._partner, engine.video) if label == "image" else (engine.video, engine._partner)
            if record.get("video_preset") != request.video:
                seen.append(f"rendered by {record.get('video_preset')}, not {request.video}")
            if device == "cuda" and other is not None and other.pipe is not None:
                seen.append(f"{other.spec.name} still loaded beside {video.spec.name}")
            if label == "image":
                seen += _shared_text_encoder_problems(video, engine.video)
            wrong, where = _placement(video, device, during)
            problems += [f"{label}: {p}" for p in [*seen, *wrong]]
            calls.append((label, record, where))
    finally:
        loading.load_video = load
    detail = ", ".join(engine._partner.memory) or "fully resident"
    row = _calls_row(name, device, problems, calls, detail, start)
    del engine
    _free(device)
    return row


def _shared_text_encoder_problems(partner, donor) -> list[str]:
    """The partner reads tiny-random's text encoder: its files (the folder of links) or, where both plans allow
    it, the very module."""
    problems = []
    folder = str(partner.image_pipe.config.get("_name_or_path", ""))
    if "text-encoder-of-tiny-random" not in folder:
        problems.append(f"partner not loaded from the shared text encoder folder ({folder})")
    if any("text encoder shared with" in m for m in partner.memory) and (
        donor.pipe is None or donor.pipe.text_encoder is not partner.pipe.text_encoder
    ):
        problems.append("says it shares tiny-random's text encoder module but holds another")
    if partner.pipe.text_encoder is not partner.image_pipe.text_encoder:
        problems.append("its two pipelines hold different text encoders")
    return problems


_MODELS = ("text_encoder", "transformer", "vae")


@contextlib.contextmanager
def _while_denoising(engine, device: str):
    """On CUDA, the models on the GPU when the transformer's first forward ends (its offload hook moved it there),
    whichever pipeline the engine runs. Reported, not judged: what the denoise phase's estimate should count."""
    import torch

    seen: list[str] = []
    if device == "cpu":
        yield seen
        return
    denoise = engine._denoise

    def watched(video, request, on_step):
        owner = video.image_pipe if video.image_pipe is not None else video.pipe

        def record(module, args, output):
            if not seen:
                models = {n: m for n, m in owner.components.items() if isinstance(m, torch.nn.Module)}
                seen.extend(sorted(n for n, m in models.items() if _on(m, device)) or ["nothing"])

        handle = video.pipe.transformer.register_forward_hook(record)
        try:
            return denoise(video, request, on_step)
        finally:
            handle.remove()

    engine._denoise = watched
    try:
        yield seen
    finally:
        del engine._denoise


def _on(module, device: str) -> bool:
    return any(p.device.type == device for p in module.parameters())


def _placement(video, device: str, during: list[str] | None = None) -> tuple[list[str], str]:
    """After a call: (problems, where the models are). Model and sequential offload leave nothing on the GPU and
    the loaded pipeline's hooks armed for the next call (the text pipeline that sharing_pipeline builds has none of
    its own); group offload keeps its hooks; resident models stay on the GPU; a text encoder planned on the CPU
    stays there. On the CPU only the hooks can be checked."""
    import torch
    from diffusers.hooks.group_offloading import _is_group_offload_enabled

    from pipeline.memory_plan import rung_named

    rung = rung_named(video.plan.rung)
    owner = video.image_pipe if video.image_pipe is not None else video.pipe  # the pipeline the plan was applied to
    models = {n: m for n, m in owner.components.items() if isinstance(m, torch.nn.Module)}
    accelerator = device != "cpu"
    on_gpu = [n for n, m in models.items() if _on(m, device)] if accelerator else []
    problems = []
    if rung.pipeline_wide:
        if on_gpu:
            problems.append(
                f"{rung.pipeline_wide.replace('_', ' ')} left on the GPU after the call: {', '.join(on_gpu)}"
            )
        if unhooked := [n for n, m in models.items() if not hasattr(m, "_hf_hook")]:
            problems.append(f"no offload hook on {', '.join(unhooked)}")
        if rung.pipeline_wide == "model_offload" and not getattr(owner, "_all_hooks", None):
            problems.append("model offload hooks not armed for the next call")
    else:
        for name in _MODELS:
            module, placement = models[name], video.plan.components[name].placement
            if placement.startswith("group_") and not _is_group_offload_enabled(module):
                problems.append(f"{name}: no group offload hooks")
            elif accelerator and placement == "gpu" and any(p.device.type != device for p in module.parameters()):
                problems.append(f"{name}: planned resident, not all on the GPU")
            elif placement == "cpu" and name in on_gpu:
                problems.append(f"{name}: planned on the CPU, found on the GPU")
    if not accelerator:
        return problems, ""
    where = f"on the GPU while denoising: {', '.join(during)}; " if during else ""
    return problems, where + f"after: {', '.join(on_gpu) or 'nothing'}"


def _calls_row(name, device, problems, calls, detail, start) -> Row:
    """One row for several renders: each one's measured peak against its own estimate; the row shows the highest."""
    problems = list(problems)
    for label, record, _ in calls:
        measured, estimated = record.get("memory_measured_peak_vram_gb"), record.get("memory_estimated_peak_vram_gb")
        if _over(device, measured, estimated):
            problems.append(f"{label}: measured {measured:.3f} GB > {RATIO} x estimate {estimated:.3f} + {SLACK_GB} GB")
    worst = max(calls, key=lambda c: c[1].get("memory_measured_peak_vram_gb") or 0)[1] if calls else {}

    def peaks(record):
        m, e = record.get("memory_measured_peak_vram_gb"), record.get("memory_estimated_peak_vram_gb")
        return f" {m:.3f}/{e:.3f} GB" if m is not None and e is not None else ""

    after = "; ".join(f"{label}{peaks(record)}" + (f", {where}" if where else "") for label, record, where in calls)
    return _row(
        name,
        device,
        problems,
        worst.get("memory_measured_peak_vram_gb"),
        worst.get("memory_estimated_peak_vram_gb"),
        f"{detail}; calls: {after}",
        start,
        check_estimate=False,  # checked per call above
    )


def _reference_image(outputs: Path) -> Path:
    """A small generated picture (a gradient with a square), as a user would upload it."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:72, 0:96]
    pixels = np.stack([x * 255 // 95, y * 255 // 71, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    pixels[20:50, 30:60] = (220, 30, 30)
    path = outputs / "reference.png"
    Image.fromarray(pixels).save(path)
    return path


def check_vae_tiling(device: str, outputs: Path) -> list[Row]:
    """A latent larger than one tile, decoded tiled by the float32 Wan VAE (the rungs' sizes fit in one tile)."""
    import numpy as np
    import torch
    from diffusers import AutoencoderKLWan

    from pipeline.loading import weights_folder
    from pipeline.memory_plan import GB, Settings, vae_decode_bytes

    start = time.perf_counter()
    height, width, frames = (480, 832, 33) if device == "cuda" else (272, 352, 5)
    vae = AutoencoderKLWan.from_pretrained(weights_folder(tiny_spec()) / "vae", dtype=torch.float32).to(device)
    vae.enable_tiling()
    latents = torch.randn(
        1, vae.config.z_dim, (frames - 1) // 4 + 1, height // 8, width // 8, generator=torch.Generator().manual_seed(0)
    ).to(device)
    _reset_peak(device)
    with torch.no_grad():
        video = vae.decode(latents).sample
    measured = _peak_gb(device)
    problems = [] if tuple(video.shape) == (1, 3, frames, height, width) else [f"shape {tuple(video.shape)}"]
    if not np.isfinite(video.float().cpu().numpy()).all():
        problems.append("non-finite pixels")
    estimated = (
        vae_decode_bytes("tiny-random", Settings(height, width, frames), tiling=True)
        + sum(p.numel() * 4 for p in vae.parameters())
        + latents.numel() * 4
    ) / GB
    del vae, video, latents
    _free(device)
    return [
        _row(
            f"VAE tiled decode {width}x{height}x{frames} (float32)",
            device,
            problems,
            measured,
            estimated,
            "vae.enable_tiling()",
            start,
        )
    ]


def check_step_down(device: str, outputs: Path) -> list[Row]:
    """Out of memory on the 'resident' plan: the engine frees it, reloads a smaller plan and renders."""
    return [_out_of_memory(device, outputs, again=False)]


def check_second_oom(device: str, outputs: Path) -> list[Row]:
    """Out of memory on the smaller plan too: the message says what to lower, never a raw error (on CUDA the first
    error is real and the second injected)."""
    return [_out_of_memory(device, outputs, again=True)]


def _out_of_memory(device: str, outputs: Path, again: bool) -> Row:
    import torch

    import pipeline.loading as loading
    from pipeline.engine import Engine
    from pipeline.memory_plan import estimate, rung_named

    name = "out of memory again: the message" if again else "out of memory: step down, retry"
    start = time.perf_counter()
    plan = estimate(tiny_spec().name, None, "none", rung_named("resident"), _settings(), _budget(device))
    engine = Engine(loading.load_video(tiny_spec(), device, plan=plan), None, outputs)
    request = engine.build(PROMPT, **SETTINGS)
    with _frames_only():
        engine.render_video(request, outputs / f"warm-up-{again}.mp4")  # kernels, cuBLAS/cuDNN workspaces in place
    old = weakref.ref(engine.video.pipe)
    seen: dict = {}
    load = loading.load_video

    def reload(*args, **kwargs):  # the engine's reload, observed: is the old pipeline gone by now?
        gc.collect()
        seen["old pipeline alive"] = old() is not None
        if device == "cuda":
            seen["held MiB"] = round(torch.cuda.memory_allocated() / 2**20, 1)
            torch.cuda.set_per_process_memory_fraction(1.0)  # the smaller plan loads and runs uncapped
        return load(*args, **kwargs)

    problems, record, error = [], {}, None
    if device == "cuda":  # the cap: no new allocator segment; the render's first large tensor needs one
        torch.cuda.empty_cache()
        seen["cached but free MiB"] = round((torch.cuda.memory_reserved() - torch.cuda.memory_allocated()) / 2**20, 1)
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, (torch.cuda.memory_reserved() + CAP_MARGIN) / total))
    progress = _injected_oom(device, again, seen)
    loading.load_video = reload
    try:
        with _frames_only():
            _, record = engine.render_video(request, outputs / f"after-oom-{again}.mp4", progress=progress)
    except ValueError as err:
        error = str(err)
    except Exception as err:  # noqa: BLE001 - the point of the row: nothing but a ValueError may escape
        problems.append(f"{type(err).__name__} escaped: {str(err)[:120]}")
    finally:
        loading.load_video = load
        if device == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0)
    if "old pipeline alive" not in seen:
        problems.append("no reload happened (did the capped render run out of memory?)")
    elif seen["old pipeline alive"]:
        problems.append("old pipeline alive when the smaller plan loaded")
    if again and (error is None or "Out of GPU memory" not in error):
        problems.append(f"expected the out-of-memory message, got {error or 'a render'}")
    if not again and (error or "Out of GPU memory with plan 'resident'" not in record.get("memory_note", "")):
        problems.append(error or f"no step-down note in {record}")
    detail = (error or record.get("memory_note", ""))[:160] + (f"; at reload {seen}" if seen else "")
    row = _row(
        name,
        device,
        problems,
        record.get("memory_measured_peak_vram_gb"),
        record.get("memory_estimated_peak_vram_gb"),
        detail,
        start,
        check_estimate=not again,
    )
    del engine
    _free(device)
    return row


# -- helpers ---------------------------------------------------------------------------------------
def tiny_spec(name: str = "tiny-random"):
    """A tiny preset as the real Wan presets load on CUDA: bf16 with the VAE in float32 (float32 on the CPU)."""
    from pipeline.presets import get_video_spec

    return replace(get_video_spec(name), dtype="bfloat16")


def _settings(spec=None, settings: dict = SETTINGS):
    from pipeline.memory_apply import settings_for

    return settings_for(
        spec or tiny_spec(),
        settings["height"],
        settings["width"],
        settings["num_frames"],
        settings["num_inference_steps"],
    )


def _budget(device: str):
    import psutil

    from pipeline.memory_plan import GB, Budget

    vram = CPU_BUDGET_GB
    if device == "cuda":
        import torch

        vram = torch.cuda.get_device_properties(0).total_memory / GB
    return Budget(round(vram, 1), round(psutil.virtual_memory().available / GB, 1))


def _needs_accelerator(rung) -> str:
    """Why a rung cannot run on the CPU ('' when it can)."""
    if rung.pipeline_wide:
        return f"{rung.pipeline_wide.replace('_', ' ')} needs an accelerator"
    if rung.transformer_storage == "fp8":
        return "fp8 storage computes in bf16; CPU runs are float32"
    return ""


def _render(video, outputs: Path) -> tuple[dict, list[str]]:
    """One render through Engine.render_video; (its record, problems seen in the frames)."""
    from pipeline.engine import Engine

    engine = Engine(video, None, outputs)
    return _render_request(engine, engine.build(PROMPT, **SETTINGS), outputs)


def _render_request(engine, request, outputs: Path) -> tuple[dict, list[str]]:
    """One request through Engine.render_video: (its record, problems seen in the frames)."""
    expected = (request.num_frames, request.height, request.width, 3)
    with _frames_only(expected) as seen:
        _, record = engine.render_video(request, outputs / f"{time.monotonic_ns()}.mp4")
    return record, seen


@contextlib.contextmanager
def _frames_only(expected: tuple[int, ...] | None = None):
    """Engine renders without encoding: frames are checked for shape and range instead (no ffmpeg here)."""
    import numpy as np

    import pipeline.engine as engine

    problems: list[str] = []
    expected = expected or (SETTINGS["num_frames"], SETTINGS["height"], SETTINGS["width"], 3)

    def check(frames, path, fps, progress=None):
        frames = np.asarray(frames)
        if frames.shape != expected:
            problems.append(f"frames {frames.shape}, expected {expected}")
        elif not (np.isfinite(frames).all() and frames.min() >= 0 and frames.max() <= 1):
            problems.append("frames not finite in [0, 1]")
        return Path(path)

    encode, engine.encode_mp4 = engine.encode_mp4, check
    try:
        yield problems
    finally:
        engine.encode_mp4 = encode


def _injected_oom(device: str, again: bool, seen: dict):
    """A progress callback raising what CUDA raises where no cap does: on the CPU the first denoising step (with
    `again`, every step); on CUDA, with `again`, each step after the reload (the first error there is real; the
    cap is lifted for the reload, since whether a tiny model's smaller plan overruns it is the allocator's luck)."""
    import torch

    if device == "cuda" and not again:
        return None
    calls = []

    def progress(stage, done, total):
        calls.append(stage)
        reloaded = "old pipeline alive" in seen
        if (device == "cuda" and reloaded) or (device != "cuda" and (again or len(calls) == 1)):
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    return progress


def _over(device: str, measured: float | None, estimated: float | None) -> bool:
    """The measured peak above what the estimate allows (CUDA only)."""
    return (
        device == "cuda" and measured is not None and estimated is not None and measured > estimated * RATIO + SLACK_GB
    )


def _row(check, device, problems, measured, estimated, detail, start=None, check_estimate=True) -> Row:
    if check_estimate and _over(device, measured, estimated):
        problems = [*problems, f"measured {measured:.3f} GB > {RATIO} x estimate + {SLACK_GB} GB"]
    seconds = round(time.perf_counter() - start, 2) if start is not None else 0.0
    text = "; ".join([*problems, detail] if problems else [detail])
    return Row(check, "fail" if problems else "pass", _round(measured), _round(estimated), seconds, text)


def _guarded(name: str, check, device: str, outputs: Path) -> list[Row]:
    """A check that raises becomes a failed row; the others still run."""
    start = time.perf_counter()
    try:
        return check(device, outputs)
    except Exception as err:  # noqa: BLE001 - reported as a failed row with its type and message
        _free(device)
        return [
            Row(
                name,
                "fail",
                seconds=round(time.perf_counter() - start, 2),
                detail=f"{type(err).__name__}: {str(err)[:300]}",
            )
        ]


def _reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 1024**3


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def environment(device: str) -> dict:
    from importlib import metadata

    import torch

    versions = {}
    for name in ("torch", "diffusers", "transformers", "accelerate", "bitsandbytes", "huggingface_hub"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    return {
        "device": device,
        "device_name": name,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        **versions,
    }


def table(rows: list[Row]) -> str:
    def gb(value):
        return "-" if value is None else f"{value:.3f}"

    lines = ["| check | result | measured peak GB | estimated peak GB | s | detail |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r.check} | {r.result.upper() if r.result == 'fail' else r.result} | {gb(r.measured_gb)} | "
        f"{gb(r.estimated_gb)} | {r.seconds:.1f} | {r.detail} |"
        for r in rows
    ]
    return "\n".join(lines)


CHECKS = {
    "rewriter": check_rewriter_4bit,
    "tuned": check_tuned_rewriter,
    "rungs": check_rungs,
    "image-rungs": check_image_rungs,
    "vae": check_vae_tiling,
    "step-down": check_step_down,
    "second-oom": check_second_oom,
}

if __name__ == "__main__":
    raise SystemExit(main())
