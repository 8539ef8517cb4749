"""Train the toy-world model on this CPU: render clips, fit the VAE, encode captions once, then flow matching.

`python -m pipeline.toyworld train --minutes 55 --threads 1` reproduces the committed weights from the seed (the
time budget, not a step count, ends the run, so a slower machine trains fewer steps). The EMA weights are saved every few
minutes, with a direction/color/background check on held-out prompts logged to training_log.json beside them."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from pipeline.toyworld.captions import caption
from pipeline.toyworld.model import (
    SHIFT,
    TOKEN_LIMIT,
    WEIGHTS,
    build_transformer,
    fp32_rope,
    load_text_encoder,
    save_weights,
)
from pipeline.toyworld.world import DIRECTIONS, held_out, render_with_mask, sample_scene

log = logging.getLogger(__name__)

OBJECT_WEIGHT = 4.0  # loss weight added on latent cells an object touches, so the background cannot dominate
MOTION_WEIGHT = 2.0  # weight of the loss on frame-to-frame changes of the predicted clip: where direction lives
DIRECTIONAL = 0.6  # share of training scenes whose first object travels (the world's own odds give 0.48)
NEAR_NOISE = 0.3  # share of training noise levels drawn from sigma in [0.9, 1]
CAPTION_DROPOUT = 0.1  # empty captions teach the unconditional prediction that guidance needs
EVAL_PROMPTS = 24


def make_data(clips: int, seed: int):
    """Training scenes (never a held-out combination), their clips, object masks and captions."""
    rng = np.random.default_rng(seed)
    videos, masks, texts = [], [], []
    while len(texts) < clips:
        directional = rng.random() < DIRECTIONAL
        scene = sample_scene(rng, motion=str(rng.choice(DIRECTIONS))) if directional else sample_scene(rng)
        if held_out(scene):
            continue
        video, mask = render_with_mask(scene)
        videos.append(video)
        masks.append(mask)
        texts.append(caption(scene, rng))
    return np.stack(videos), np.stack(masks), texts


def eval_prompts(count: int, seed: int = 1_000_000) -> list[tuple[str, object]]:
    """Single-object prompts stating color, direction and background, all from held-out combinations."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        scene = sample_scene(rng, count=1, motion=str(rng.choice(DIRECTIONS)))
        if held_out(scene):
            out.append((caption(scene, rng, keep={"color": 1, "motion": 1, "background": 1}), scene))
    return out


def encode_texts(tokenizer, encoder, texts: list[str], batch: int = 64) -> list:
    """Per-caption (tokens, 384) MiniLM states, trimmed to the real tokens as WanPipeline trims them."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            enc = tokenizer(
                texts[i : i + batch], padding=True, truncation=True, max_length=TOKEN_LIMIT, return_tensors="pt"
            )
            states = encoder(enc.input_ids, enc.attention_mask).last_hidden_state
            out.extend(s[: int(m.sum())].half() for s, m in zip(states, enc.attention_mask, strict=False))
    return out


def pad_texts(states: list):
    """Zero-pad to TOKEN_LIMIT, as the pipeline pads prompt embeddings to max_sequence_length."""
    import torch

    out = torch.zeros(len(states), TOKEN_LIMIT, states[0].shape[-1])
    for i, s in enumerate(states):
        out[i, : len(s)] = s.float()
    return out


def latent_weights(masks: np.ndarray, vae):
    """Object coverage pooled onto the latent grid (same causal frame pairing as the VAE), as loss weights."""
    import torch

    ft, fs = vae.config.scale_factor_temporal, vae.config.scale_factor_spatial
    m = torch.from_numpy(masks)[:, None]
    m = torch.cat([m[:, :, :1].expand(-1, -1, ft - 1, -1, -1), m], dim=2)
    pooled = torch.nn.functional.max_pool3d(m, (ft, fs, fs))
    return 1 + OBJECT_WEIGHT * pooled


def evaluate(transformer, vae, tokenizer, encoder, prompts, steps: int = 16, guidance: float = 4.0) -> dict:
    """Sample the held-out prompts through a WanPipeline and score them with the detector."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

    from pipeline.toyworld.detector import detect

    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=encoder,
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=SHIFT),
    )
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(
        prompt=[p for p, _ in prompts],
        negative_prompt=[""] * len(prompts),
        height=32,
        width=32,
        num_frames=9,
        num_inference_steps=steps,
        guidance_scale=guidance,
        max_sequence_length=TOKEN_LIMIT,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).frames
    hits = {"color": 0, "direction": 0, "background": 0}
    for clip, (_, scene) in zip(frames, prompts, strict=False):
        found = detect(clip)
        hits["color"] += found.color == scene.things[0].color
        hits["direction"] += found.direction == scene.things[0].motion
        hits["background"] += found.background == scene.bg_color
    return {k: round(v / len(prompts), 3) for k, v in hits.items()}


def train(
    out: Path = WEIGHTS,
    minutes: float = 55,
    clips: int = 4000,
    seed: int = 0,
    batch: int = 16,
    lr: float = 1e-3,
    save_minutes: float = 6,
    threads: int | None = None,
    eval_count: int = EVAL_PROMPTS,
) -> dict:
    import torch

    from pipeline.toyworld.vae import ToyVideoVAE

    if threads:
        torch.set_num_threads(threads)
    start = time.monotonic()
    deadline = start + minutes * 60
    torch.manual_seed(seed)

    # 1. Data: clips, masks and captions from the seed
    videos, masks, texts = make_data(clips, seed)
    log.info("rendered %d clips in %.0f s", len(texts), time.monotonic() - start)

    # 2. The VAE: PCA on the clips; latents encoded once and normalized as the pipeline un-normalizes them
    vae = ToyVideoVAE()
    vae.fit(videos)
    with torch.no_grad():
        x = torch.from_numpy(videos).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)
        latents = vae.encode(x).latent_dist.mode()
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    latents = latents / std
    weights = latent_weights(masks, vae)
    del x, videos, masks

    # 3. Captions through the frozen MiniLM, once
    tokenizer, encoder = load_text_encoder()
    states = encode_texts(tokenizer, encoder, texts)
    empty = encode_texts(tokenizer, encoder, [""])[0]
    log.info("encoded %d captions at %.0f s", len(states), time.monotonic() - start)

    # 4. Model, EMA, optimizer
    transformer = build_transformer(seed)
    transformer.fit_text_scale(states)
    fp32_rope(transformer)
    ema = copy.deepcopy(transformer).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=lr, weight_decay=0.01)
    prompts = eval_prompts(eval_count)
    history, step, last_save = [], 0, time.monotonic()
    rng = torch.Generator().manual_seed(seed)
    train_start = time.monotonic()

    # 5. Flow matching until the time budget ends: x_t = (1 - s) x0 + s noise, the model predicts noise - x0
    while step == 0 or time.monotonic() < deadline:  # at least one step, so a tiny budget still saves weights
        progress = (time.monotonic() - train_start) / max(deadline - train_start, 1)
        for group in optimizer.param_groups:  # warmup, then cosine to a tenth over the time budget
            group["lr"] = (
                lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1))))
            )
        idx = torch.randint(0, len(states), (batch,), generator=rng)
        x0, w = latents[idx], weights[idx]
        drop = torch.rand(batch, generator=rng) < CAPTION_DROPOUT
        text = pad_texts([empty if d else states[i] for i, d in zip(idx.tolist(), drop.tolist(), strict=False)])
        u = torch.sigmoid(torch.randn(batch, generator=rng))  # logit-normal, then shifted toward high noise
        sigma = SHIFT * u / (1 + (SHIFT - 1) * u)
        # Near pure noise the prompt is all there is to go on, so only there does the loss pay for reading "left to
        # right"; at lower noise the clip's own frames already show the path. Give that end a fixed share.
        top = torch.rand(batch, generator=rng) < NEAR_NOISE
        sigma = torch.where(top, 1 - 0.1 * torch.rand(batch, generator=rng), sigma).view(-1, 1, 1, 1, 1)
        noise = torch.randn(x0.shape, generator=rng)
        xt = (1 - sigma) * x0 + sigma * noise
        pred = transformer(xt, timestep=sigma.flatten() * 1000, encoder_hidden_states=text, return_dict=False)[0]
        # Frame-to-frame changes of the predicted clean clip (x0 = xt - sigma * v) against the true ones: the plain
        # loss lets a still object that sits on the average path cost little; this one charges for missing motion.
        err = pred - (noise - x0)
        motion = sigma * (err[:, :, 1:] - err[:, :, :-1])
        loss = (w * err**2).mean() / w.mean() + MOTION_WEIGHT * (w[:, :, 1:] * motion**2).mean() / w.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        decay = min(0.998, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), transformer.parameters(), strict=False):
                e.lerp_(p, 1 - decay)
        step += 1
        if step % 50 == 0:
            log.info("step %d loss %.4f (%.2f steps/s)", step, loss.item(), step / (time.monotonic() - train_start))
        if time.monotonic() - last_save >= save_minutes * 60 or time.monotonic() >= deadline:
            history.append(_checkpoint(out, ema, vae, tokenizer, encoder, prompts, step, start, loss.item()))
            last_save = time.monotonic()
    if not history or history[-1]["step"] != step:
        history.append(_checkpoint(out, ema, vae, tokenizer, encoder, prompts, step, start, loss.item()))
    return history[-1]


def _checkpoint(out, ema, vae, tokenizer, encoder, prompts, step, start, loss) -> dict:
    """Save the EMA weights, score them on the held-out prompts and append the figures to the log."""
    scores = evaluate(ema, vae, tokenizer, encoder, prompts)
    save_weights(ema, vae, out)
    entry = {"step": step, "minutes": round((time.monotonic() - start) / 60, 1), "loss": round(loss, 4), **scores}
    log_path = Path(out).parent / f"{Path(out).name}_training_log.jsonl"
    with log_path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    log.info("checkpoint %s", entry)
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.toyworld train", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=WEIGHTS, help="pipeline folder to write (default: the committed one)"
    )
    parser.add_argument("--minutes", type=float, default=55, help="wall-clock budget, data and checkpoints included")
    parser.add_argument("--clips", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--save-minutes", type=float, default=6, help="save (and score) the EMA weights this often")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = train(args.out, args.minutes, args.clips, args.seed, args.batch, args.lr, args.save_minutes, args.threads)
    print(json.dumps(result))
