import re

import pytest
import torch

from prompts.topic import SentenceGate, fault, register

VOCAB = "dog frisbee grass park sun light camera blog click my cat story wind".split()


def bag(texts: list[str]) -> torch.Tensor:
    """A stand-in embedding: unit word-count vectors over a small vocabulary (plus one slot for the rest)."""
    rows = []
    for text in texts:
        words = re.findall(r"[a-z]+", text.lower())
        row = torch.tensor([float(words.count(w)) for w in VOCAB] + [0.1 + sum(w not in VOCAB for w in words)])
        rows.append(row / row.norm())
    return torch.stack(rows)


@pytest.mark.parametrize(
    ("sentence", "why"),
    [
        (" I love this park more than anything.", "person"),
        (" Your eyes follow the frisbee.", "person"),
        (" Click here to see more of the park.", "page or photo"),
        (" This photo was taken last summer.", "page or photo"),
        (" A dog catching a frisbee in the park.", "repeats"),
    ],
)
def test_fault_names_what_a_scene_description_never_needs(sentence, why):
    assert why in fault(sentence, "A dog catching a frisbee in the park.", "a dog catching a frisbee in the park")


def test_fault_passes_scene_sentences_and_the_ideas_own_words():
    before = "A dog catching a frisbee."
    assert fault(" The golden retriever leaps high over the grass.", before, "a dog catching a frisbee") is None
    # the idea asks for them, so they are not held against the sentence
    assert fault(" The photo shows my grandmother smiling.", "", "my grandmother in an old photo") is None
    # a sentence may reuse a few of the words before it, not mostly repeat them
    assert fault(" The dog catching the frisbee lands softly.", before, "a dog catching a frisbee") is None


def test_gate_scores_the_whole_text_against_idea_plus_register():
    register_vector = bag(["sun light camera"])[0]
    gate = SentenceGate("a dog catching a frisbee", bag, register_vector)
    before = "A dog catching a frisbee."
    on, off, bad = gate.judge([" Warm sun light on the grass.", " The wind.", " My cat watches."], before)
    assert on.ok and off.ok and not bad.ok and bad.score == -1.0 and "person" in bad.reason
    assert on.score > off.score  # closer to a described scene of the idea
    assert on.score == pytest.approx(gate.score(before + " Warm sun light on the grass."))
    # the register pulls the aim away from the idea alone: light and camera words count
    assert gate.score("dog frisbee sun light camera") > gate.score("dog frisbee cat cat cat")


def test_gate_judges_every_candidate_even_when_all_fail():
    gate = SentenceGate("a dog", bag, bag(["sun"])[0])
    verdicts = gate.judge([" I run.", " You run."], "A dog.")
    assert [v.ok for v in verdicts] == [False, False]


def test_register_is_a_unit_vector_from_the_examples_sentences_after_the_first():
    examples = (
        ("a dog", "A dog runs. Warm light falls on the grass. The camera tracks it."),
        ("a cat", "A cat sleeps. Soft light fills the room."),
    )
    vector = register(examples)
    assert vector.shape == (384,) and float(vector.norm()) == pytest.approx(1.0, abs=1e-4)
    only_first = register((("a dog", "A dog runs. Warm light falls on the grass. The camera tracks it."),))
    assert not torch.allclose(vector, only_first)  # every example counts


def test_fault_refuses_a_third_telling_of_the_same_words():
    before = "A red barn in a meadow. The red barn in a meadow glows at dusk."
    assert "repeats" in fault(" Swallows circle the red barn in a meadow.", before, "a red barn in a meadow")
    assert fault(" Swallows circle the barn.", before, "a red barn in a meadow") is None
