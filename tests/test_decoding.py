"""The fast rewriter path on tiny models: sampler, stop holding, English output layer, caches."""

import importlib.metadata
import json
from dataclasses import replace

import pytest
import torch

from prompts.decoding import HoldStops, KeepWords, TopKSampler
from prompts.generation import Draft
from prompts.templates import load_template
from prompts.vocabulary import SubsetHead, english_token_ids
from tests.conftest import tiny_gemma3


def test_top_k_sampler_leaves_one_finite_logit_among_the_top_k():
    scores = torch.tensor([[0.0, 5.0, 1.0, 4.0, -2.0, 3.0]])
    top3 = {1, 3, 5}
    picks = set()
    for seed in range(40):
        torch.manual_seed(seed)
        out = TopKSampler(top_k=3, temperature=1.0)(None, scores.clone())
        finite = torch.isfinite(out[0]).nonzero().flatten().tolist()
        assert len(finite) == 1 and finite[0] in top3
        picks.add(finite[0])
    assert picks == top3  # every candidate gets drawn, not just the best


def test_top_k_sampler_is_seeded_and_k1_is_greedy():
    scores = torch.randn(2, 500)
    torch.manual_seed(7)
    a = TopKSampler(40, 0.7)(None, scores.clone())
    torch.manual_seed(7)
    b = TopKSampler(40, 0.7)(None, scores.clone())
    assert torch.equal(a.argmax(-1), b.argmax(-1))
    greedy = TopKSampler(1, 0.7)(None, scores.clone()).argmax(-1)
    assert torch.equal(greedy, scores.argmax(-1))
    with pytest.raises(ValueError):
        TopKSampler(0, 1.0)


def test_top_k_sampler_matches_the_softmax_distribution():
    scores = torch.tensor([[2.0, 1.0, 0.0, -5.0]])
    torch.manual_seed(0)
    counts = torch.zeros(4)
    for _ in range(3000):
        counts[TopKSampler(3, 1.0)(None, scores.clone()).argmax()] += 1
    expected = torch.softmax(torch.tensor([2.0, 1.0, 0.0]), -1)
    assert torch.allclose(counts[:3] / 3000, expected, atol=0.03) and counts[3] == 0


def test_hold_stops_forbids_stops_only_until_min_new_tokens():
    hold = HoldStops([2, 5], prompt_length=10, min_new_tokens=3)
    early = hold(torch.zeros(1, 12, dtype=torch.long), torch.zeros(1, 8))
    assert early[0, 2] == float("-inf") and early[0, 5] == float("-inf") and early[0, 0] == 0
    late = hold(torch.zeros(1, 13, dtype=torch.long), torch.zeros(1, 8))
    assert torch.equal(late, torch.zeros(1, 8))


def test_keep_words_favours_the_prompts_unused_words_piece_by_piece(tmp_path):
    from runtime.tiny import build_tokenizer

    tok = build_tokenizer(tmp_path / "tok")
    prompt_ids = [5, 6, 7]
    keep = KeepWords(tok, "a marmalade lighthouse", len(prompt_ids), bias=2.0)
    word = tok(" marmalade", add_special_tokens=False)["input_ids"]
    assert len(word) > 1  # a word of several pieces, so the continuation is tested too

    def boosted(new: list[int]) -> set[int]:
        scores = torch.zeros(1, len(tok))
        out = keep(torch.tensor([prompt_ids + new]), scores.clone())
        return set(torch.nonzero(out[0] == 2.0).flatten().tolist())

    first = boosted([])
    assert word[0] in first and tok(" lighthouse", add_special_tokens=False)["input_ids"][0] in first
    assert tok(" a", add_special_tokens=False)["input_ids"][0] not in first  # a stopword is not the user's idea
    assert word[1] in boosted(word[:1])  # after its first piece, the word's next piece
    used = tok(" the marmalade", add_special_tokens=False)["input_ids"]
    assert word[0] not in boosted(used)  # once written, its bonus ends
    assert tok(" lighthouse", add_special_tokens=False)["input_ids"][0] in boosted(used)  # the other word keeps it
    ramped = KeepWords(tok, "a marmalade lighthouse", len(prompt_ids), bias=2.0, ramp=4)
    bonus = [ramped(torch.tensor([prompt_ids + [9] * n]), torch.zeros(1, len(tok)))[0, word[0]].item() for n in range(6)]
    assert bonus == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])  # rises over `ramp` tokens, then holds


def test_keep_words_continues_a_quote_once_started_until_the_text_holds_it(tmp_path):
    from runtime.tiny import build_tokenizer

    tok = build_tokenizer(tmp_path / "tok")
    prompt_ids = [5, 6, 7]
    keep = KeepWords(tok, 'a chalkboard that says "exam today"', len(prompt_ids), bias=2.0)
    quote = tok(" Exam Today", add_special_tokens=False)["input_ids"]
    today = tok(" Today", add_special_tokens=False)["input_ids"][0]
    assert set(quote) <= set(keep.token_ids())  # the output layer must be able to write them (SubsetHead.allow)

    def boosted(text: str) -> set[int]:
        new = tok(text, add_special_tokens=False)["input_ids"]
        out = keep(torch.tensor([prompt_ids + new]), torch.zeros(1, len(tok)))
        return set(torch.nonzero(out[0] >= 4.0).flatten().tolist())  # a quote's next token: twice the bias

    # both words written, not as the quote: the quote's next token is favoured right after its first, only there
    assert today in boosted('Today an exam. It reads "Exam')
    assert today not in boosted("Today an exam. It reads")
    assert today not in boosted('Today an exam. It reads "Exam Today". Exam')  # the text holds it: done


def test_subset_head_scores_exactly_the_subset_and_nothing_else():
    torch.manual_seed(0)
    weight = torch.randn(50, 8)
    hidden = torch.randn(2, 3, 8)
    ids = [1, 4, 9, 30, 49]
    full = hidden @ weight.T
    out = SubsetHead(weight, ids, int8=False)(hidden)
    assert out.shape == full.shape
    assert torch.allclose(out[..., ids], full[..., ids], atol=1e-6)
    mask = torch.ones(50, dtype=torch.bool)
    mask[ids] = False
    assert torch.isneginf(out[..., mask]).all()
    # int8 keeps the subset's ranking close enough that greedy picks agree on these rows
    q = SubsetHead(weight, ids, int8=True)(hidden)
    assert torch.equal(q.argmax(-1), out.argmax(-1))


@pytest.mark.parametrize("int8", [False, True])
def test_subset_head_scores_allowed_ids_outside_the_subset_until_reset(int8):
    torch.manual_seed(0)
    weight, hidden, ids = torch.randn(50, 8), torch.randn(1, 2, 8), [1, 4, 9]
    head = SubsetHead(weight, ids, int8=int8)
    head.allow([7, 4, 33], weight)  # 4 is in the subset already
    out, full = head(hidden), hidden @ weight.T
    assert torch.allclose(out[..., [7, 33]], full[..., [7, 33]], atol=1e-6)  # the full layer's own logits
    assert sorted(head.candidates().tolist()) == [1, 4, 7, 9, 33]
    assert torch.isneginf(out[..., [0, 2, 20, 49]]).all()
    head.allow([], weight)
    assert torch.isneginf(head(hidden)[..., [7, 33]]).all() and head.candidates().tolist() == ids


@pytest.fixture()
def tiny_tokenizer(tmp_path):
    from runtime.tiny import build_tokenizer

    return build_tokenizer(tmp_path / "tok")


def test_english_vocabulary_is_cached_and_rebuilt_when_wordfreq_changes(tiny_tokenizer, tmp_path, monkeypatch):
    cache = tmp_path / "english_vocabulary.json"
    ids = english_token_ids(tiny_tokenizer, cache, words=2000)
    assert ids == sorted(set(ids)) and 0 < len(ids) <= len(tiny_tokenizer)
    assert tiny_tokenizer.eos_token_id in ids
    assert set(tiny_tokenizer("the red ball", add_special_tokens=False)["input_ids"]) <= set(ids)
    assert json.loads(cache.read_text())["ids"] == ids

    import prompts.vocabulary as vocabulary

    calls = []
    real = vocabulary._english_ids
    monkeypatch.setattr(vocabulary, "_english_ids", lambda *a: calls.append(1) or real(*a))
    assert english_token_ids(tiny_tokenizer, cache, words=2000) == ids and calls == []  # read back
    version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "0.0-other" if name == "wordfreq" else version(name)
    )
    english_token_ids(tiny_tokenizer, cache, words=2000)
    assert calls == [1] and json.loads(cache.read_text())["key"]["wordfreq"] == "0.0-other"
    assert vocabulary.cached_english_ids(cache, words=2000) == ids
    assert vocabulary.cached_english_ids(cache, words=3000) is None  # another word count: rebuilt
    cache.write_text("{not json")
    assert english_token_ids(tiny_tokenizer, cache, words=2000) == ids  # a corrupt cache is rebuilt


def test_converted_model_cache_is_keyed_by_the_package_version(tmp_path, monkeypatch):
    import prompts.embedded as embedded

    version = importlib.metadata.version
    current = embedded.gemma_cache_path(tmp_path)
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "9.9.9" if name == embedded.GGUF_PACKAGE else version(name)
    )
    bumped = embedded.gemma_cache_path(tmp_path)
    assert bumped != current and bumped.name.endswith("9.9.9")
    current.mkdir(parents=True)  # an older version's conversion on disk is not reused
    converted = []

    def fake_convert(folder):
        converted.append(folder)
        raise RuntimeError("stop after the conversion decision")

    monkeypatch.setattr(embedded, "_convert_gguf", fake_convert)
    with pytest.raises(RuntimeError, match="conversion decision"):
        embedded.load_gemma_270m(tmp_path)
    assert converted == [bumped]


@pytest.fixture()
def completion_rewriter(tiny_engine):
    """The tiny model driven like the embedded base model: few-shot completion text."""
    rewriter = tiny_engine.rewriter
    saved = rewriter.spec
    rewriter.spec = replace(saved, style="completion", min_new_tokens=0)
    rewriter.llm.prefixes.clear()
    yield rewriter
    rewriter.spec = saved
    rewriter.llm.prefixes.clear()


def test_prefix_cache_gives_the_same_text_as_a_full_prefill(completion_rewriter):
    template = load_template("wan")
    texts = {}
    for use_cache in (False, True):
        completion_rewriter.spec = replace(completion_rewriter.spec, prefix_cache=use_cache)
        texts[use_cache] = [
            [t for t, _ in completion_rewriter.writer.write(Draft(template, idea, 11), None)][-1]
            for idea in ("a red ball", "two cats on a sofa, zoom in", "a storm over the sea")
        ]
    assert texts[True] == texts[False]
    (entry,) = completion_rewriter.llm.prefixes.values()
    assert entry is not None and len(entry[0]) > 50  # the prefix really was cached and reused


def test_prefix_cache_copies_are_independent(completion_rewriter):
    template = load_template("wan")
    ids = completion_rewriter.llm.tokenizer(template.completion_prompt("a red ball")[0])["input_ids"]
    first = completion_rewriter.llm.prefix_cache(template, ids)
    second = completion_rewriter.llm.prefix_cache(template, ids)
    assert first is not second and first.get_seq_length() == second.get_seq_length() < len(ids)
    kept = second.layers[0].keys.clone()
    first.layers[0].keys.add_(1.0)  # a generation writing into its copy leaves every other copy alone
    third = completion_rewriter.llm.prefix_cache(template, ids)
    assert torch.equal(second.layers[0].keys, kept) and torch.equal(third.layers[0].keys, kept)


def test_paragraph_end_ids_are_saved_beside_the_prefix_caches(completion_rewriter, tmp_path, monkeypatch):
    completion_rewriter.llm.prefix_store, completion_rewriter.llm.stop_ids = tmp_path, None
    try:
        ids = completion_rewriter.llm.paragraph_end_ids()
        assert ids and all("\n" in completion_rewriter.llm.tokenizer.decode([i]) for i in ids)
        assert json.loads((tmp_path / "paragraph-ends.json").read_text())["ids"] == ids
        completion_rewriter.llm.stop_ids = None
        monkeypatch.setattr(completion_rewriter.llm.tokenizer, "get_vocab", lambda: pytest.fail("listed again"))
        assert completion_rewriter.llm.paragraph_end_ids() == ids
    finally:
        completion_rewriter.llm.prefix_store, completion_rewriter.llm.stop_ids = None, None


def test_top_k_sampler_over_candidates_matches_the_full_search():
    scores = torch.full((1, 100), float("-inf"))
    ids = torch.tensor([3, 17, 42, 64, 99])
    scores[0, ids] = torch.tensor([1.0, 4.0, 2.0, 0.5, 3.0])
    for seed in range(10):
        torch.manual_seed(seed)
        a = TopKSampler(3, 0.8)(None, scores.clone())
        torch.manual_seed(seed)
        b = TopKSampler(3, 0.8, candidates=ids)(None, scores.clone())
        assert torch.equal(a, b) and a.argmax().item() in (17, 42, 99)


def test_completion_prefix_ends_before_the_request_block_for_text_and_image_templates():
    from prompts.image_templates import load_image_template

    for template in (load_template("wan"), load_image_template("wan", "a red barn in snow")):
        prefix = template.completion_prefix()
        for idea in ("a red ball", "two cats"):
            text, _ = template.completion_prompt(idea)
            assert text.startswith(prefix) and prefix.endswith("\n\n")
            assert idea not in prefix and text[len(prefix) :].count("\n\n") == 0


def test_prefix_cache_persists_across_runs_and_survives_a_damaged_file(completion_rewriter, tmp_path):
    template = load_template("wan")
    completion_rewriter.llm.prefix_store = tmp_path
    try:
        fresh = [t for t, _ in completion_rewriter.writer.write(Draft(template, "a red ball", 5), None)][-1]
        (saved,) = tmp_path.glob("prefix-*.safetensors")
        completion_rewriter.llm.prefixes.clear()  # as after a restart: only the file remains
        calls = []
        model = completion_rewriter.llm.model
        real_forward = model.forward
        model.forward = lambda *a, **k: calls.append(k["input_ids"].shape[-1]) or real_forward(*a, **k)
        try:
            again = [t for t, _ in completion_rewriter.writer.write(Draft(template, "a red ball", 5), None)][-1]
        finally:
            del model.forward
        assert again == fresh
        assert max(calls) < 40  # the prefix (hundreds of tokens) was read, not recomputed
        saved.write_bytes(b"damaged")
        completion_rewriter.llm.prefixes.clear()
        assert [t for t, _ in completion_rewriter.writer.write(Draft(template, "a red ball", 5), None)][-1] == fresh
        assert saved.stat().st_size > 1000  # rewritten
    finally:
        completion_rewriter.llm.prefix_store = None


def test_rewriter_searches_only_the_english_subset_when_its_output_layer_has_one(completion_rewriter):
    from prompts.vocabulary import restrict_output

    def sampler():
        draft = Draft(load_template("wan"), "a red ball", 0)
        return completion_rewriter.writer.sampling(completion_rewriter.writer._inputs(draft, None, print))["logits_processor"][-1]

    assert sampler().candidates is None
    model = completion_rewriter.llm.model
    full_head = model.get_output_embeddings()
    try:
        restrict_output(model, list(range(0, model.config.vocab_size, 2)), int8=False)
        assert torch.equal(sampler().candidates, model.get_output_embeddings().ids)
    finally:
        model.set_output_embeddings(full_head)


def _two_layers(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8, bias=False))


def test_int8_cache_gives_the_quantized_model_and_is_rebuilt_when_stale_or_damaged(tmp_path, caplog, monkeypatch):
    from prompts.quantize import quantize_int8_dynamic

    x = torch.randn(3, 16)
    cache = tmp_path / "int8.safetensors"
    fresh = _two_layers(0)
    quantize_int8_dynamic(fresh, {torch.nn.Linear}, cache=cache, tag="a")
    assert cache.is_file()

    # Read back into a float model with the same weights: identical outputs, no re-quantization
    cached = _two_layers(0)
    with monkeypatch.context() as patch:
        patch.setattr(torch.ao.quantization, "quantize_dynamic", lambda *a, **k: pytest.fail("quantized again"))
        quantize_int8_dynamic(cached, {torch.nn.Linear}, cache=cache, tag="a")
    assert isinstance(cached[2], torch.ao.nn.quantized.dynamic.Linear)
    assert torch.equal(cached(x), fresh(x))
    written = cache.read_bytes()

    # Another tag (new weights or vocabulary) quantizes the model anew and rewrites the file
    other = _two_layers(1)
    quantize_int8_dynamic(other, {torch.nn.Linear}, cache=cache, tag="b")
    reference = _two_layers(1)
    quantize_int8_dynamic(reference, {torch.nn.Linear})
    assert torch.equal(other(x), reference(x)) and cache.read_bytes() != written  # mtime can tie within a tick

    # Other targets (only the last layer) do not take the file either
    last_only = _two_layers(1)
    quantize_int8_dynamic(last_only, {"2"}, cache=cache, tag="b")
    assert type(last_only[0]) is torch.nn.Linear and isinstance(last_only[2], torch.ao.nn.quantized.dynamic.Linear)

    # A damaged file is ignored with a warning and replaced
    cache.write_bytes(b"not a safetensors file")
    damaged = _two_layers(1)
    quantize_int8_dynamic(damaged, {torch.nn.Linear}, cache=cache, tag="b")
    assert torch.equal(damaged(x), reference(x)) and "unreadable int8 cache" in caplog.text
    assert cache.stat().st_size > 100


def test_fused_rms_norm_matches_gemmas_norm():
    from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm

    from prompts.embedded import FusedRMSNorm, fuse_rms_norms

    torch.manual_seed(0)
    for shape in ((1, 1, 64), (1, 4, 5, 32)):
        norm = Gemma3RMSNorm(shape[-1], eps=1e-6)
        torch.nn.init.normal_(norm.weight)
        x = torch.randn(*shape) * 3
        assert torch.allclose(FusedRMSNorm(norm)(x), norm(x), atol=1e-5, rtol=1e-5)
    model = torch.nn.Sequential(Gemma3RMSNorm(8), torch.nn.Sequential(Gemma3RMSNorm(8)))
    fuse_rms_norms(model)
    assert isinstance(model[0], FusedRMSNorm) and isinstance(model[1][0], FusedRMSNorm)


def test_int8_cache_fills_empty_weights_only_when_it_cannot_be_used(tmp_path):
    from prompts.quantize import quantize_int8_dynamic

    x = torch.randn(3, 16)
    cache, real = tmp_path / "int8.safetensors", _two_layers(0)

    def shaped_but_empty() -> torch.nn.Module:
        model = _two_layers(0)
        model[2] = torch.nn.Linear(32, 8, bias=False, device="meta")
        return model

    def fill(model) -> None:
        model[2] = real[2]

    reference = _two_layers(0)
    quantize_int8_dynamic(reference, {torch.nn.Linear})
    missed = shaped_but_empty()  # no cache yet: filled, quantized, saved
    quantize_int8_dynamic(missed, {torch.nn.Linear}, cache=cache, fill=lambda: fill(missed))
    assert torch.equal(missed(x), reference(x)) and cache.is_file()
    hit = shaped_but_empty()  # the cache holds every layer: nothing to fill
    quantize_int8_dynamic(hit, {torch.nn.Linear}, cache=cache, fill=lambda: pytest.fail("filled"))
    assert torch.equal(hit(x), reference(x))


@pytest.mark.parametrize("int8", [False, True])
def test_fused_projections_give_the_unfused_models_logits(int8):
    from prompts.embedded import FusedMLP, FusedQKV, fuse_projections, fuse_rms_norms
    from prompts.quantize import quantize_int8_dynamic

    ids = torch.randint(0, 64, (1, 9))
    reference, fused = tiny_gemma3(0), tiny_gemma3(0)
    fuse_projections(fused)
    fuse_rms_norms(fused)
    assert sum(isinstance(m, FusedMLP) for m in fused.modules()) == 2
    assert sum(isinstance(m, FusedQKV) for m in fused.modules()) == 2
    if int8:
        quantize_int8_dynamic(reference, {torch.nn.Linear})
        quantize_int8_dynamic(fused, {torch.nn.Linear})
        assert (
            sum(type(m) is torch.ao.nn.quantized.dynamic.Linear for m in fused.modules()) == 2 * 4 + 1
        )  # per layer: qkv, o, gate_up, down; and the output layer
    with torch.inference_mode():
        assert torch.allclose(fused(input_ids=ids).logits, reference(input_ids=ids).logits, atol=1e-4, rtol=1e-4)
        # token by token through the cache, as generation runs (int8 scales its input per call, so
        # token-by-token logits differ from the whole-sequence ones: compare like with like)
        assert torch.allclose(_stepwise(fused, ids), _stepwise(reference, ids), atol=1e-4, rtol=1e-4)


def _stepwise(model, ids: torch.Tensor) -> torch.Tensor:
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    steps = [
        model(input_ids=ids[:, k : k + 1], past_key_values=cache, use_cache=True).logits for k in range(ids.shape[1])
    ]
    return torch.cat(steps, dim=1)


def test_fused_projections_fill_their_rows_only_when_asked():
    from prompts.embedded import fuse_projections

    ids = torch.randint(0, 64, (1, 5))
    reference, fused = tiny_gemma3(1), tiny_gemma3(1)
    fills = fuse_projections(fused, rows=False)
    assert {p.device.type for n, p in fused.named_parameters() if "gate_up" in n or ".linear." in n} == {"meta"}
    for fill in fills:
        fill()
    with torch.inference_mode():
        assert torch.allclose(fused(input_ids=ids).logits, reference(input_ids=ids).logits, atol=1e-5)
    # k or v asked for on a new input without q first is still right (computed afresh)
    attention = fused.model.layers[0].self_attn
    x = torch.randn(1, 3, 32)
    k = attention.k_proj(x)
    assert torch.allclose(k, reference.model.layers[0].self_attn.k_proj(x), atol=1e-6)


def test_compact_merges_keep_the_tokenization(tiny_tokenizer, tmp_path):
    from tokenizers import Tokenizer

    from prompts.embedded import compact_merges

    path = tmp_path / "tok" / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in data["model"]["merges"]]
    path.write_text(json.dumps(data), encoding="utf-8")  # the pair form, as transformers saves Gemma's
    text = "A red ball rolls slowly to the left; zoom in on the small, blue box!"
    before = Tokenizer.from_file(str(path)).encode(text).ids
    assert compact_merges(path)
    assert all(isinstance(m, str) for m in json.loads(path.read_text(encoding="utf-8"))["model"]["merges"])
    assert Tokenizer.from_file(str(path)).encode(text).ids == before and len(before) > 5
    data["model"]["merges"][0] = ["a b", "c"]  # a piece with a space: left as pairs
    path.write_text(json.dumps(data), encoding="utf-8")
    assert not compact_merges(path)
