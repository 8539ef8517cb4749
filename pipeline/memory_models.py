"""Real component configs per preset, and their sizes counted on the meta device (no weights needed)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from runtime.tiny import TINY_I2V_TRANSFORMER, TINY_I2V_VAE

# Component configs of the public checkpoints, written out so sizes are known offline. Keyed by preset
# name (pipeline.presets.VIDEO_PRESETS and prompts.presets.REWRITER_PRESETS); each entry is
# component -> (library, class name, constructor kwargs).
_UMT5_XXL = dict(  # google/umt5-xxl encoder as shipped in Wan-AI/Wan2.1-T2V-1.3B-Diffusers/text_encoder
    vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
    relative_attention_num_buckets=32, feed_forward_proj="gated-gelu",
)
_WAN_1_3B = dict(  # Wan-AI/Wan2.1-T2V-1.3B-Diffusers/transformer/config.json
    patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
    text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6,
)

_WAN_2_2_5B = dict(  # Wan-AI/Wan2.2-TI2V-5B-Diffusers/transformer/config.json (48 latent channels in and out)
    patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48, out_channels=48,
    text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=30, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
)
_WAN_2_2_VAE = dict(  # Wan-AI/Wan2.2-TI2V-5B-Diffusers/vae/config.json: 16x space, 4x time, 48 channels
    base_dim=160, decoder_base_dim=256, z_dim=48, is_residual=True, in_channels=12, out_channels=12, patch_size=2,
    scale_factor_spatial=16, scale_factor_temporal=4, latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
)
_T5_XXL = dict(  # google/t5-v1_1-xxl encoder as shipped in Lightricks/LTX-Video/text_encoder
    vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
    relative_attention_num_buckets=32, feed_forward_proj="gated-gelu",
)
_LTX_2B = dict(  # Lightricks/LTX-Video/transformer/config.json
    in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32, attention_head_dim=64,
    cross_attention_dim=2048, num_layers=28, caption_channels=4096, qk_norm="rms_norm_across_heads",
)
_LTX_0_9_1_VAE = dict(  # Lightricks/LTX-Video/vae/config.json (0.9.1: timestep-aware decoder)
    decoder_block_out_channels=(256, 512, 1024), decoder_layers_per_block=(5, 5, 5, 5),
    decoder_spatio_temporal_scaling=(True, True, True), decoder_inject_noise=(False, False, False, False),
    upsample_residual=(True, True, True), upsample_factor=(2, 2, 2), timestep_conditioning=True,
)

VIDEO_ARCHITECTURES: dict[str, dict[str, tuple[str, str, dict]]] = {
    "wan2.1-t2v-1.3b": {
        "text_encoder": ("transformers", "UMT5EncoderModel", _UMT5_XXL),
        "transformer": ("diffusers", "WanTransformer3DModel", _WAN_1_3B),
        "vae": ("diffusers", "AutoencoderKLWan", {}),  # the defaults are Wan 2.1's VAE (base_dim 96, z_dim 16)
    },
    "tiny-random": {  # runtime.tiny.build_tiny_wan
        "text_encoder": ("transformers", "UMT5EncoderModel", dict(
            vocab_size=600, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, relative_attention_num_buckets=8)),
        "transformer": ("diffusers", "WanTransformer3DModel", dict(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
            text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", rope_max_seq_len=32)),
        "vae": ("diffusers", "AutoencoderKLWan", dict(
            base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])),
    },
    "wan2.2-ti2v-5b": {
        "text_encoder": ("transformers", "UMT5EncoderModel", _UMT5_XXL),
        "transformer": ("diffusers", "WanTransformer3DModel", _WAN_2_2_5B),
        "vae": ("diffusers", "AutoencoderKLWan", _WAN_2_2_VAE),
    },
    "ltx-video": {
        "text_encoder": ("transformers", "T5EncoderModel", _T5_XXL),
        "transformer": ("diffusers", "LTXVideoTransformer3DModel", _LTX_2B),
        "vae": ("diffusers", "AutoencoderKLLTXVideo", _LTX_0_9_1_VAE),
    },
    "tiny-random-i2v": {  # runtime.tiny.build_tiny_wan_i2v
        "text_encoder": ("transformers", "UMT5EncoderModel", dict(
            vocab_size=600, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, relative_attention_num_buckets=8)),
        "transformer": ("diffusers", "WanTransformer3DModel", TINY_I2V_TRANSFORMER),
        "vae": ("diffusers", "AutoencoderKLWan", TINY_I2V_VAE),
    },
}

# How each VAE compresses (time, space) and its latent channels; absent: Wan 2.1's (4, 8, 16).
LATENT_GEOMETRY: dict[str, tuple[int, int, int]] = {
    "wan2.2-ti2v-5b": (4, 16, 48),
    "tiny-random-i2v": (4, 16, 48),
    "ltx-video": (8, 32, 128),
}

# Model classes loaded in float32 whatever the preset's dtype: diffusers' own Wan examples keep the Wan VAE in
# float32 (its decoder is small, 0.13B in Wan 2.1, and bf16 costs it precision in the decoded colours).
FLOAT32_CLASSES = frozenset({"AutoencoderKLWan"})

REWRITER_ARCHITECTURES: dict[str, tuple[str, str, dict]] = {
    "qwen2.5-3b-instruct": ("transformers", "Qwen2ForCausalLM", dict(  # Qwen/Qwen2.5-3B-Instruct/config.json
        vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
        num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True)),
    "gemma-3-270m": ("transformers", "Gemma3ForCausalLM", dict(  # google/gemma-3-270m text config
        vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
        num_key_value_heads=1, head_dim=256, tie_word_embeddings=True)),
    "qwen2.5-vl-3b-instruct": ("transformers", "Qwen2_5_VLForConditionalGeneration", dict(  # its config.json
        text_config=dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                         num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=128000,
                         tie_word_embeddings=True),
        vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                           fullatt_block_indexes=[7, 15, 23, 31], window_size=112, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        tie_word_embeddings=True)),
    "tiny-random": ("transformers", "Qwen2ForCausalLM", dict(  # runtime.tiny.build_tiny_causal_lm
        vocab_size=602, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True)),  # 600 + <|im_start|>, <|im_end|>
}
REWRITER_ARCHITECTURES["gemma-3-270m-int8"] = REWRITER_ARCHITECTURES["gemma-3-270m"]  # same model, int8 on CPU only

_CONFIG_CLASSES = {"UMT5EncoderModel": "UMT5Config", "Qwen2ForCausalLM": "Qwen2Config",
                   "Gemma3ForCausalLM": "Gemma3TextConfig", "T5EncoderModel": "T5Config",
                   "Qwen2_5_VLForConditionalGeneration": "Qwen2_5_VLConfig"}


@dataclass(frozen=True)
class ComponentSize:
    """Parameter counts of one model, each shared tensor counted once."""

    name: str
    params: int  # all parameters
    linear_params: int  # weights of nn.Linear layers: what bitsandbytes quantizes
    fp32_params: int  # Linear weights that bitsandbytes keeps in float32 (the model's _keep_in_fp32_modules)
    block_params: tuple[int, ...]  # each repeated block (the largest ModuleList): what block-level offload moves
    leaf_params: tuple[int, int]  # the two biggest modules without children: a leaf and the one prefetched
    buffer_bytes: int  # non-parameter tensors (rotary tables), at their own dtype

    @property
    def other_params(self) -> int:
        """Parameters outside the repeated blocks (embeddings, heads): resident under block-level offload."""
        return self.params - sum(self.block_params)

    def weight_bytes(self, bytes_per_param: float = 2.0, quantization: str = "none") -> float:
        """Bytes of the weights at a dtype, or under bitsandbytes int8 / nf4 (Linear weights only)."""
        if quantization == "none":
            return self.params * bytes_per_param + self.buffer_bytes
        per_linear = {"int8": 1.0, "nf4": 0.5 * 1.07}[quantization]  # nf4: + absmax scales (double-quantized)
        quantized = self.linear_params - self.fp32_params
        rest = self.params - self.linear_params
        return quantized * per_linear + self.fp32_params * 4 + rest * bytes_per_param + self.buffer_bytes


def _build(library: str, class_name: str, kwargs: dict):
    import diffusers
    import transformers

    if library == "diffusers":
        return getattr(diffusers, class_name)(**kwargs)
    config = getattr(transformers, _CONFIG_CLASSES[class_name])(**kwargs)
    return getattr(transformers, class_name)(config)


@functools.cache
def count_component(preset: str, component: str) -> ComponentSize:
    """Instantiate one component on the meta device (no memory, no weights) and count it."""
    import torch
    from accelerate import init_empty_weights

    library, class_name, kwargs = (
        VIDEO_ARCHITECTURES[preset][component] if component != "llm" else REWRITER_ARCHITECTURES[preset]
    )
    with init_empty_weights():
        model = _build(library, class_name, kwargs)
    if hasattr(model, "tie_weights"):  # umT5's shared/embed_tokens, Qwen's tied lm_head: one tensor each
        model.tie_weights()

    params = {id(p): p for p in model.parameters()}  # parameters() already skips a tensor seen twice
    fp32_names = tuple(getattr(model, "_keep_in_fp32_modules", None) or ())
    linear = fp32 = 0
    seen: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            linear += module.weight.numel()
            if any(name.split(".")[-1] == keep for keep in fp32_names):
                fp32 += module.weight.numel()
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1]
    blocks = max(lists, key=lambda m: sum(p.numel() for p in m.parameters()), default=[])
    leaf_sizes, seen = [], set()
    for module in model.modules():  # a tied tensor lives in two leaves (shared, embed_tokens): count it once
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        if not list(module.children()):
            leaf_sizes.append(sum(p.numel() for p in own))
    return ComponentSize(
        name=component,
        params=sum(p.numel() for p in params.values()),
        linear_params=linear,
        fp32_params=fp32,
        block_params=tuple(sum(p.numel() for p in b.parameters()) for b in blocks),
        leaf_params=tuple(sorted(leaf_sizes, reverse=True)[:2]),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
    )


def video_components(preset: str) -> dict[str, ComponentSize]:
    return {name: count_component(preset, name) for name in VIDEO_ARCHITECTURES[preset]}


def transformer_config(preset: str) -> dict:
    return VIDEO_ARCHITECTURES[preset]["transformer"][2]


def vae_config(preset: str) -> dict:
    return VIDEO_ARCHITECTURES[preset]["vae"][2]


def text_encoder_config(preset: str) -> dict:
    return VIDEO_ARCHITECTURES[preset]["text_encoder"][2]


def component_dtypes(preset: str, default: str) -> dict[str, str]:
    """The dtype each video component loads in: `default` (the preset's), float32 for FLOAT32_CLASSES. Empty for
    a preset not described here (toy-world: float32 everywhere)."""
    return {name: "float32" if class_name in FLOAT32_CLASSES else default
            for name, (_, class_name, _) in VIDEO_ARCHITECTURES.get(preset, {}).items()}


def latent_geometry(preset: str) -> tuple[int, int, int]:
    """(time compression, space compression, latent channels) of the preset's VAE."""
    return LATENT_GEOMETRY.get(preset, (4, 8, 16))
