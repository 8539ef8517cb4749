"""A vision-language rewriter (Qwen2.5-VL): the base rewriter's loop, with the reference image in its prompt."""

from __future__ import annotations

import logging
from pathlib import Path

from prompts.llm import LLM
from prompts.presets import RewriterSpec
from prompts.rewriter import Rewriter
from runtime.devices import bitsandbytes_supported, torch_dtype
from runtime.hub import cache_root, ensure_downloaded
from runtime.tiny import ensure_tiny

log = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 640 * 28 * 28  # ~500k pixels: at most 640 image tokens (28x28 pixels each after merging)
IMAGE_TOKEN = "<|image_pad|>"  # Qwen2.5-VL's placeholder, repeated once per merged image patch


class ImagePromptTokenizer:
    """The tokenizer interface the rewriter uses, for chats whose messages hold images ({"type": "image",
    "image": PIL image}): what Qwen2.5-VL's processor does for images, without its video half (which needs
    torchvision). It renders the chat template, repeats each image placeholder once per image token,
    tokenizes, and adds the pixel values; everything else is the tokenizer's."""

    def __init__(self, tokenizer, image_processor):
        self.tokenizer = tokenizer
        self.image_processor = image_processor

    def apply_chat_template(self, messages, add_generation_prompt: bool = True, return_tensors: str = "pt", **kwargs):
        # 1. The chat as text, one placeholder per image
        images = [
            part["image"]
            for message in messages
            if not isinstance(message["content"], str)
            for part in message["content"]
            if part.get("type") == "image"
        ]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

        # 2. Pixels, and as many placeholder tokens as the vision tower yields per image
        vision = {}
        if images:
            vision = dict(self.image_processor(images=images, return_tensors=return_tensors))
            merge = self.image_processor.merge_size**2
            counts = [int(grid.prod()) // merge for grid in vision["image_grid_thw"]]
            pieces = text.split(IMAGE_TOKEN)
            if len(pieces) != len(counts) + 1:
                raise ValueError(f"the chat template placed {len(pieces) - 1} images for {len(counts)} given")
            text = pieces[0] + "".join(IMAGE_TOKEN * n + rest for n, rest in zip(counts, pieces[1:], strict=True))

        # 3. Tokens (the template already holds the special tokens)
        return {**self.tokenizer(text, return_tensors=return_tensors, add_special_tokens=False), **vision}

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def load_vision_llm(spec: RewriterSpec, device: str) -> LLM:
    """A vision-language preset as the rewriter's LLM: its tokenizer places images (ImagePromptTokenizer)."""
    from transformers import AutoModelForImageTextToText, AutoTokenizer, Qwen2VLImageProcessorPil

    # 1. Weights (a tiny local model for tests), and 4-bit nf4 where bitsandbytes runs; the vision tower
    #    stays in bf16: small, and quantizing it costs more accuracy than it saves memory
    folder = ensure_tiny("vl", cache_root()) if spec.source == "tiny" else ensure_downloaded(spec.hub_id, spec.download_gb)
    quant = spec.quantization.get(device, "none")
    kwargs: dict = {"dtype": torch_dtype(spec.dtype, device)}
    if quant == "nf4" and bitsandbytes_supported(device):
        import torch
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if device == "cuda" else torch.float32,
            llm_int8_skip_modules=["visual", "lm_head"],
        )
        kwargs["device_map"] = device
    else:
        quant = "none"
    if device == "cpu" and not spec.is_test_model:
        log.warning("%s on CPU is slow; expect minutes per rewrite", spec.name)

    # 2. Model, tokenizer (its chat template places images) and the image processor, which caps the tokens
    model = AutoModelForImageTextToText.from_pretrained(folder, **kwargs).eval()
    if "device_map" not in kwargs:
        model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = tokenizer.chat_template or _processor_chat_template(Path(folder))
    pixels = {} if spec.is_test_model else {"max_pixels": MAX_IMAGE_PIXELS}
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(folder, **pixels)
    return LLM(spec, model, ImagePromptTokenizer(tokenizer, image_processor), device, quant, loader=load_vision_llm)


class VisionRewriter(Rewriter):
    """Rewrites with the image in view: image templates in "seen" mode (prompts.image_templates) put it in the
    last user turn; without an image it rewrites from text like any chat rewriter."""

    @classmethod
    def load(cls, spec: RewriterSpec, device: str) -> VisionRewriter:
        return cls(load_vision_llm(spec, device))


def _processor_chat_template(folder: Path) -> str | None:
    """The processor's chat template (chat_template.jinja, or chat_template.json from older exports)."""
    import json

    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if (folder / "chat_template.json").is_file():
        return json.loads((folder / "chat_template.json").read_text(encoding="utf-8")).get("chat_template")
    return None


def load_rewriter(spec: RewriterSpec, device: str) -> Rewriter:
    """A rewriter preset loaded by its kind: a vision-language model sees the reference image."""
    return (VisionRewriter if spec.vision else Rewriter).load(spec, device)
