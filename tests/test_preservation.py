from prompts.preservation import content_words, missing_words


def test_content_words_skip_stopwords():
    assert content_words("A cat on the left of a dog") == ["cat", "left", "dog"]


def test_stems_match_inflections():
    assert missing_words("two dogs running", "Two dog runs across the field.") == []
    assert missing_words("a red ball bouncing", "A blue ball rolls.") == ["red", "bouncing"]
