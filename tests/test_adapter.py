"""A LoRA adapter of the embedded model: merged before fusing and int8, and part of every cache key."""

import pytest
import torch

from prompts.embedded import adapter_hash, gemma_cache_path, load_gemma_270m
from prompts.llm import LLM
from tests.conftest import tiny_gemma3

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
IDS = torch.tensor([[3, 17, 42, 8, 25, 60, 11]])


@pytest.fixture
def cache_dir(tmp_path):
    """A cache folder holding a 'converted' tiny Gemma 3, where load_gemma_270m looks for the real one."""
    from runtime.tiny import build_tokenizer

    folder = gemma_cache_path(tmp_path / "cache")
    tiny_gemma3().save_pretrained(folder)
    build_tokenizer(folder)
    return tmp_path / "cache"


def write_adapter(folder, seed: int) -> None:
    """A LoRA adapter with non-zero weights (peft starts B at zero, which would change nothing)."""
    from peft import LoraConfig, get_peft_model

    base = tiny_gemma3()
    torch.manual_seed(seed)  # after the base model, which seeds itself
    config = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(folder)


def logits(model) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=IDS).logits


def test_the_merged_adapter_gives_peft_s_own_logits(cache_dir, tmp_path):
    from peft import PeftModel

    write_adapter(tmp_path / "adapter", seed=1)
    merged, _ = load_gemma_270m(cache_dir, quantize="none", vocabulary="full", adapter=tmp_path / "adapter")
    reference = PeftModel.from_pretrained(tiny_gemma3(), str(tmp_path / "adapter")).eval()
    assert torch.allclose(logits(merged), logits(reference), atol=1e-4)
    assert not torch.allclose(logits(merged), logits(tiny_gemma3()), atol=1e-3)


def test_a_new_adapter_with_warm_caches_changes_the_output(cache_dir, tmp_path):
    adapter = tmp_path / "adapter"
    base, _ = load_gemma_270m(cache_dir, quantize="int8-dynamic", vocabulary="full")  # warms the base int8 cache
    write_adapter(adapter, seed=1)
    first, _ = load_gemma_270m(cache_dir, quantize="int8-dynamic", vocabulary="full", adapter=adapter)
    old = adapter_hash(adapter)
    write_adapter(adapter, seed=2)  # retrained in place: same folder, same preset, new weights
    second, _ = load_gemma_270m(cache_dir, quantize="int8-dynamic", vocabulary="full", adapter=adapter)
    assert adapter_hash(adapter) != old
    assert not torch.allclose(logits(first), logits(base), atol=1e-3)
    assert not torch.allclose(logits(second), logits(first), atol=1e-3)
    again, _ = load_gemma_270m(cache_dir, quantize="int8-dynamic", vocabulary="full", adapter=adapter)  # cache hit
    assert torch.equal(logits(again), logits(second))
    caches = sorted(p.name for p in gemma_cache_path(cache_dir).glob("int8-dynamic-full-*.safetensors"))
    assert caches == sorted(["int8-dynamic-full-base.safetensors", f"int8-dynamic-full-adapter-{old}.safetensors",
                             f"int8-dynamic-full-adapter-{adapter_hash(adapter)}.safetensors"])


def test_prefix_kv_caches_are_keyed_by_the_weights(tmp_path):
    from prompts.presets import get_rewriter_spec
    from prompts.rewriter import Rewriter
    from runtime.tiny import build_tokenizer

    rewriter = Rewriter(LLM(get_rewriter_spec("gemma-3-270m"), tiny_gemma3(), build_tokenizer(tmp_path / "tok"), "cpu", "none"))
    rewriter.llm.prefix_store = tmp_path
    base = rewriter.llm.prefill([3, 17, 42])
    rewriter.llm.weights = "adapter-0123456789abcdef"
    rewriter.llm.model = tiny_gemma3()
    with torch.no_grad():
        rewriter.llm.model.model.layers[0].self_attn.k_proj.weight.mul_(2.0)  # other weights: other keys
    tuned = rewriter.llm.prefill([3, 17, 42])
    assert len(list(tmp_path.glob("prefix-*.safetensors"))) == 2
    assert not torch.allclose(tuned[0][0], base[0][0])
