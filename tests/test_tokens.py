from prompts.tokens import TokenCounter, estimate_tokens


def test_exact_count_uses_the_targets_tokenizer(tiny_engine):
    counter = tiny_engine.counter
    assert counter.exact
    tok = tiny_engine.video.pipe.tokenizer
    text = "A red fox runs through the snowy forest."
    assert counter.count(text).tokens == len(tok(text).input_ids)
    assert counter.count(text).label().startswith(f"{len(tok(text).input_ids)} / 512")


def test_estimate_is_labelled_and_grows_with_text():
    counter = TokenCounter(limit=512)
    short, long = counter.count("a cat"), counter.count("a cat " * 50)
    assert not short.exact and short.label().startswith("≈") and "estimate" in short.label()
    assert long.tokens > short.tokens >= 3
    assert estimate_tokens("word " * 100) >= 100


def test_fit_drops_whole_sentences_until_within_limit():
    counter = TokenCounter(limit=30)
    text = " ".join(f"Sentence number {i} has six words." for i in range(10))
    fitted = counter.fit(text)
    assert counter.count(fitted).tokens <= 30
    assert fitted.endswith(".") and text.startswith(fitted)
