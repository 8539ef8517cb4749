import pytest

from prompts.cleaning import clean, has_loop, problems, trim_to_sentence, word_count

BODY = "A fox runs through snow at dawn. The camera follows it."


@pytest.mark.parametrize(
    "raw",
    [
        f"Sure! Here is the rewritten prompt: {BODY}",
        f"Here's a detailed description:\n\n{BODY}",
        f"Scene: {BODY}",
        f"**Prompt:** {BODY}",
        f'"{BODY}"',
        f"“{BODY}”",
        f"{BODY}\n\nIdea: a cat\nDescription: A cat sits.",
        f"{BODY}<end_of_turn>",
        f"{BODY}<|im_end|>",  # Qwen's end of turn, and a next turn after it
        f"{BODY}<|im_end|>\n<|im_start|>user\nIdea: a cat<|im_end|>",
        f"# Title\n{BODY}",
        f"Sure. Description: {BODY}",
    ],
)
def test_clean_strips_scaffolding_to_one_paragraph(raw):
    out = clean(raw)
    assert out == BODY
    assert problems(out) == []


def test_clean_joins_paragraphs_and_keeps_inner_quotes():
    out = clean('A sign says "open".\n\nRain falls on it.')
    assert out == 'A sign says "open". Rain falls on it.'
    assert "\n" not in out


def test_problems_names_each_defect():
    assert "preamble" in problems("Sure, here it is: a cat.")
    assert "label" in problems("Scene: a cat.")
    assert "markdown" in problems("A **bold** cat.")
    assert "several paragraphs" in problems("A cat.\n\nA dog.")
    assert "leaked scaffolding" in problems("A cat. Idea: a dog")
    assert "wrapping quotes" in problems('"A cat."')


def test_trim_to_sentence_drops_unfinished_and_excess():
    assert trim_to_sentence("One two. Three four. Five six") == "One two. Three four."
    assert trim_to_sentence("One two. Three four. Five six.", max_words=4) == "One two. Three four."
    assert trim_to_sentence("no end at all") == "no end at all"


def test_loops_detected():
    assert has_loop("the red ball rolls " * 3)
    assert not has_loop(BODY)
    assert word_count(BODY) == 11


def test_forced_opening_is_kept_verbatim_and_only_the_rest_is_cleaned():
    opening = 'Okay sign held by "Scene: one" robot'
    raw = opening + " in a park.\n\nIdea: another"
    assert clean(raw, opening) == opening + " in a park."
    assert clean(opening + ", **bright** light.", opening) == opening + ", bright light."


def test_word_counts_read_as_english():
    from prompts.cleaning import words_label

    assert [words_label(t) for t in ("", "cat", "a cat")] == ["0 words", "1 word", "2 words"]
