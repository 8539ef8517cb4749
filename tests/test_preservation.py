from prompts.preservation import content_words, missing_words


def test_content_words_skip_stopwords():
    assert content_words("A cat on the left of a dog") == ["cat", "left", "dog"]


def test_stems_match_inflections():
    assert missing_words("two dogs running", "Two dog runs across the field.") == []
    assert missing_words("a red ball bouncing", "A blue ball rolls.") == ["red", "bouncing"]


def test_curly_and_straight_apostrophes_are_one_word():
    assert missing_words("a dog’s toy", "The dog's toy squeaks.") == []
    assert missing_words("a dog's toy", "The dog’s toy squeaks.") == []


def test_quoted_text_and_hyphenated_words_count_word_by_word():
    assert missing_words('a sign that says "open late"', 'A sign says "open late".') == []
    assert missing_words('a sign that says "open late"', "A sign says open.") == ["late"]
    assert content_words("a well-lit room") == ["well", "lit", "room"]


def test_numbers_are_content_and_must_survive_as_written():
    assert content_words("3 dogs") == ["3", "dogs"]
    assert missing_words("3 dogs", "Three dogs run.") == ["3"]


def test_nothing_to_keep_in_an_empty_or_stopword_prompt():
    assert content_words("") == [] and missing_words("", "Anything.") == []
    assert missing_words("the one in there", "A cat.") == []


def test_case_and_accents():
    assert missing_words("A RED Car", "a red car drives.") == []
    assert missing_words("café crème", "A café crème on a table.") == []
    assert missing_words("café crème", "A cafe creme on a table.") == ["café", "crème"]  # accents are part of a word
