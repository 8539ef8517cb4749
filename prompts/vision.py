"""A vision-language rewriter (Qwen2.5-VL): the base rewriter's loop, with the reference image in its prompt."""

from __future__ import annotations

import logging

from pipeline.devices import bitsandbytes_supported, torch_dtype
from pipeline.hub import ensure_downloaded
from prompts.presets import RewriterSpec
from prompts.rewriter import Rewriter

log = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 640 * 28 * 28  # ~500k pixels: at most 640 image tokens (28x28 pixels each after merging)


class ProcessorTokenizer:
    """A multimodal processor behind the tokenizer interface the rewriter uses: its chat template places the
    image (a message part {"type": "image", "image": PIL image}) and tokenizes; everything else is the tokenizer's."""

    def __init__(self, processor):
        self.processor = processor
        self.tokenizer = processor.tokenizer

    def apply_chat_template(self, messages, **kwargs):
        return self.processor.apply_chat_template(messages, tokenize=True, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


class VisionRewriter(Rewriter):
    """Rewrites with the image in view: image templates in "seen" mode (prompts.image_templates) put it in the
    last user turn; without an image it rewrites from text like any chat rewriter."""

    @classmethod
    def load(cls, spec: RewriterSpec, device: str) -> VisionRewriter:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        # 1. Weights, and 4-bit nf4 where bitsandbytes runs (the vision tower stays in bf16: small, and
        #    quantizing it costs more accuracy than it saves memory)
        folder = ensure_downloaded(spec.hub_id, spec.download_gb)
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
        if device == "cpu":
            log.warning("%s on CPU is slow; expect minutes per rewrite", spec.name)

        # 2. Model and processor; the processor caps the image's tokens
        model = AutoModelForImageTextToText.from_pretrained(folder, **kwargs).eval()
        if "device_map" not in kwargs:
            model.to(device)
        processor = AutoProcessor.from_pretrained(folder, max_pixels=MAX_IMAGE_PIXELS)
        return cls(spec, model, ProcessorTokenizer(processor), device, quant)

    def _ensure_on_device(self) -> None:
        if self._offloaded and self.model is None:  # dropped because it could not move: load it again
            fresh = VisionRewriter.load(self.spec, self.device)
            self.model, self.tokenizer, self._offloaded = fresh.model, fresh.tokenizer, False
            return
        super()._ensure_on_device()


def load_rewriter(spec: RewriterSpec, device: str) -> Rewriter:
    """A rewriter preset loaded by its kind: a vision-language model sees the reference image."""
    return (VisionRewriter if spec.vision else Rewriter).load(spec, device)
