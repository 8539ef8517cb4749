"""Tiny random models built from configs, saved like hub checkpoints, for offline tests and demos."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Bump a kind's version when its builder changes: the cache folder is named by it, so an old build is not reused.
TINY_VERSIONS = {"wan": "1", "wan-i2v": "1", "lm": "2", "vl": "1"}

# The tiny image-to-video model mirrors Wan 2.2 TI2V's geometry at toy widths (memory_models reads these too).
TINY_I2V_VAE = dict(
    base_dim=4, z_dim=48, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
    is_residual=True, in_channels=12, out_channels=12, patch_size=2, scale_factor_spatial=16,
    latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
)
TINY_I2V_TRANSFORMER = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=48, out_channels=48,
    text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
)

# A small English corpus for the local tokenizer: enough subwords that token counts behave like a
# real subword tokenizer (more tokens than words, punctuation split off).
_CORPUS = """
A red fox runs through a snowy forest at dawn while the camera follows it in a slow tracking shot.
Soft golden light falls across the water; waves roll onto the sandy beach under a pale blue sky.
Two children fly a bright yellow kite on a windy hill, their jackets flapping, clouds drifting by.
An old man plays the violin on a busy city street at night, neon signs reflecting in the puddles.
The camera zooms in slowly on a steaming cup of coffee beside an open book on a wooden table.
A spaceship glides over a purple planet with three moons, dust swirling below its engines.
Close-up of raindrops sliding down a window, blurred traffic lights glowing behind the glass.
A cat jumps onto a sofa, stretches, and curls up next to a sleeping dog in a sunny living room.
Wide aerial view of green mountains, a river winding through the valley, mist rising at sunrise.
Cinematic, photorealistic, shallow depth of field, 35mm lens, smooth motion, high detail, 4k.
""".strip()


def build_tokenizer(folder: Path, vocab_size: int = 600):
    """Train a small BPE tokenizer locally and save it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    eos = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>"
    )
    fast.save_pretrained(folder)
    return fast


def build_tiny_wan(folder: Path) -> None:
    """Write a tiny WanPipeline (umT5 text encoder, Wan VAE and transformer) to `folder`."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp))
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
        )
    )
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    pipe = WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )
    _save_atomically(pipe, folder)


def build_tiny_wan_i2v(folder: Path) -> None:
    """Write a tiny Wan 2.2 TI2V-style WanImageToVideoPipeline to `folder`: the 48-channel residual VAE
    (16x spatial compression, 2x2 pixel patches) and `expand_timesteps=True`, no CLIP image encoder."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp))
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
        )
    )
    vae = AutoencoderKLWan(**TINY_I2V_VAE)
    transformer = WanTransformer3DModel(**TINY_I2V_TRANSFORMER)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=5.0)
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler,
        expand_timesteps=True,  # Wan 2.2 TI2V: the first frame's latent is kept clean, per-token timesteps
    )
    _save_atomically(pipe, folder)


# Qwen2.5-Instruct's chat template without its tool-calling branches (the rewriter sends no tools): the given
# system turn or Qwen's default one, then each turn as <|im_start|>role\n...<|im_end|>\n.
QWEN25_CHAT_TEMPLATE = r"""{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- else %}
    {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""


def build_tiny_causal_lm(folder: Path) -> None:
    """Write a tiny Qwen2-architecture chat model to `folder`, set up like Qwen2.5-Instruct: its chat template,
    `<|im_start|>`/`<|im_end|>` special tokens, and `<|im_end|>` as the end of a turn and of generation."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.eos_token = "<|im_end|>"  # Qwen2.5-Instruct's tokenizer: eos is the end of a turn
    tokenizer.chat_template = QWEN25_CHAT_TEMPLATE
    end_of_turn, end_of_text = tokenizer.convert_tokens_to_ids(["<|im_end|>", "</s>"])  # </s>: <|endoftext|>'s role
    model = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=end_of_turn,
            pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
        )
    )
    # Qwen2.5-Instruct's generation_config.json: either end token stops, with its sampling defaults
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=[end_of_turn, end_of_text],
        pad_token_id=tokenizer.pad_token_id, do_sample=True, temperature=0.7, top_p=0.8, top_k=20,
        repetition_penalty=1.05,
    )

    class _Bundle:  # saves model and tokenizer together, like a hub repo
        def save_pretrained(self, path):
            model.save_pretrained(path)
            tokenizer.save_pretrained(path)

    _save_atomically(_Bundle(), folder)


def build_tiny_vl(folder: Path) -> None:
    """Write a tiny Qwen2.5-VL-architecture model (vision tower, mRoPE language model), its tokenizer with the
    vision tokens and chat template, and its image processor to `folder`."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp))
    tokenizer.add_special_tokens({"additional_special_tokens": list(_VISION_TOKENS.values())})
    tokenizer.chat_template = (  # Qwen2.5-VL's layout: an image part becomes start, placeholder, end
        "{% for m in messages %}<s>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
        "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
        "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}</s>\n{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
    )
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in _VISION_TOKENS.items()}
    model = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(
            text_config=dict(
                vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},  # halves of the 8-wide heads
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
            ),
            vision_config=dict(
                depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32,
                fullatt_block_indexes=[0], window_size=56, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
            ),
            tie_word_embeddings=True, **ids,
        )
    )
    image_processor = Qwen2VLImageProcessorPil(min_pixels=4 * 28 * 28, max_pixels=64 * 28 * 28)

    class _Bundle:  # saves model, tokenizer and image processor together, like a hub repo
        def save_pretrained(self, path):
            model.save_pretrained(path)
            tokenizer.save_pretrained(path)
            image_processor.save_pretrained(path)

    _save_atomically(_Bundle(), folder)


_VISION_TOKENS = {  # config name -> Qwen2.5-VL's token
    "vision_start_token_id": "<|vision_start|>",
    "image_token_id": "<|image_pad|>",
    "vision_end_token_id": "<|vision_end|>",
    "video_token_id": "<|video_pad|>",
}


def ensure_tiny(kind: str, cache_root: Path) -> Path:
    """Return the folder of a tiny model ("wan", "wan-i2v", "lm" or "vl"), building it once."""
    builders = {"wan": build_tiny_wan, "wan-i2v": build_tiny_wan_i2v, "lm": build_tiny_causal_lm, "vl": build_tiny_vl}
    folder = cache_root / f"tiny-random-{kind}-v{TINY_VERSIONS[kind]}"
    if not (folder / ".complete").exists():
        builders[kind](folder)
    return folder


def _save_atomically(obj, folder: Path) -> None:
    """Save into a temporary sibling and rename, so a crash never leaves a half-written model."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        obj.save_pretrained(tmp)
        (tmp / ".complete").write_text(folder.name)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
