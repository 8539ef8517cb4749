"""The reader-visible fault detectors, on the failures quoted in issue 19 and on their near misses."""

import pytest

from prompts.faults import (
    camera_moves,
    faults,
    invented_people,
    ref_f1,
    senses,
    sentences,
    shot_types,
    starts_verbatim,
    the_openers,
)

VOLCANO = "drone shot over a volcano erupting at sunset"


@pytest.mark.parametrize(
    ("prompt", "rewrite", "found"),
    [
        (VOLCANO, "Below, a group of teenagers flying drones waves at the sky.", ["group", "teenagers"]),
        ("a bowl of ramen on a wooden table", "A little girl leans over the steaming bowl.", ["girl"]),
        ("a bowl of dumplings", "Four children eat with chopsticks.", ["children"]),
        ("a beach at dawn", "A lone figure walks the shore while a crowd gathers.", ["lone figure", "crowd"]),
        ("a man playing guitar on a porch", "A crowd of people gathers to listen.", ["crowd", "people"]),
        ("a street at night", "Pedestrians hurry past, a couple under one umbrella.", ["Pedestrians", "couple"]),
        ("a neon-lit alley", "Guests fill the diner; distant figures pass like ghosts.", ["Guests", "distant figures"]),
    ],
)
def test_invented_people(prompt, rewrite, found):
    assert invented_people(prompt, rewrite) == found


@pytest.mark.parametrize(
    ("prompt", "rewrite"),
    [
        ("a man walking a dog", "The man walks his dog along the river; the man smiles."),
        ("two friends laughing at a cafe", "The friends laugh as a crowd passes outside."),  # the prompt names a group
        ("a family of ducks crossing a road", "A family of ducks waddles across the road in a neat line."),
        ("hands kneading dough", "A baker's hands press and fold the dough."),  # a person was already there
        ("a red bicycle", "A red bicycle with a hand-painted frame leans on a human-made wall."),
        ("a chess set", "A couple of pawns lie toppled beside the king."),
        ("puppies in the snow", "The puppies chase each other like little kids."),  # a comparison
        ("a meadow", "The camera drifts, allowing the audience to see the grass."),  # the audience is the viewer
        ("a cake", "Sugar figures stand behind the cake."),
    ],
)
def test_no_invented_people(prompt, rewrite):
    assert invented_people(prompt, rewrite) == []


def test_senses_the_prompt_did_not_use():
    assert senses("a butcher shop at dawn", "Inside, the smell of fresh meat fills the air.") == ["smell"]
    assert senses("a campfire", "Logs crackle, their sound echoing; smoke with a sweet aroma.") == [
        "crackle",
        "sound",
        "echoing",
        "aroma",
    ]
    assert senses("a bakery smelling of bread", "Warm scent of bread, the hum of ovens.") == ["hum"]
    assert senses("bacon frying in a pan", "Strips of bacon sizzle, delicious and salty.") == [
        "sizzle",
        "delicious",
        "salty",
    ]


def test_senses_the_prompt_asked_for_or_that_are_not_senses():
    assert senses("the sound of rain on a tin roof", "Rain drums on the roof; its sounds fill the night.") == []
    assert senses("a fragrant rose garden", "Roses bloom, their fragrance heavy in the warm air.") == []
    assert senses("a quiet street", "A quiet, silent street with a sweet old bakery under bitter cold.") == []
    assert senses("a humming bird", "A hummingbird hovers by a flower.") == []


@pytest.mark.parametrize(
    ("prompt", "rewrite", "found"),
    [
        ("a red bicycle leaning on a wall", "A red bicycle leaning on a wall, camera pans left.", ["camera pans"]),
        ("a lighthouse in a storm", "The camera slowly pushes in on the tower.", ["camera slowly pushes"]),
        ("a quiet forest", "A sweeping aerial shot glides over the canopy.", ["aerial"]),
        ("a city street", "Handheld, the view follows a taxi; then a slow zoom out.", ["Handheld", "zoom"]),
        ("a castle", "Slowly pulling back to reveal the walls, a drone shot rises.", ["pulling back", "drone shot"]),
        ("a river", "The camera is slowly tracking it; it tilts up.", ["camera is slowly tracking", "tilts up"]),
    ],
)  # fmt: skip
def test_unasked_camera_moves(prompt, rewrite, found):
    assert camera_moves(prompt, rewrite) == found


@pytest.mark.parametrize(
    ("prompt", "rewrite"),
    [
        (VOLCANO, "An aerial view of lava pouring down the slopes, the camera gliding over the crater."),
        ("slow push in on a typewriter", "The camera pushes in on the keys."),
        ("macro close-up of a bee", "The camera drifts across the pollen."),
        ("top-down view of a desk", "From above, the camera slides over papers."),
        ("handheld footage of a market", "The camera weaves between stalls."),
        ("eggs in a frying pan", "Eggs sizzle in a hot pan as oil pops."),  # a pan, not a pan shot
        ("a dog in a garden", "The dog tilts its head; train tracks run past; a woman pulls back the curtain."),
        ("a dancer", "The camera captures a woman moving gracefully."),  # the woman moves, not the camera
    ],
)
def test_no_unasked_camera_moves(prompt, rewrite):
    assert camera_moves(prompt, rewrite) == []


@pytest.mark.parametrize(
    ("prompt", "rewrite", "found"),
    [  # the endings blind readers counted on 2026-12-07
        ("a bakery window", "Fresh bread. Medium shot focusing on the intricate details.", ["Medium shot"]),
        ("four penguins on the ice", "They waddle. Low-angle view from above.", ["Low-angle"]),
        ("a cyclist at a night market", "Lanterns glow. Long lens wide-angle view.", ["Long lens", "wide-angle"]),
        ("a snowflake on a mitten", "Close-up of the crystal, a side profile view.", ["Close-up", "side profile view"]),
        ("a red apple", "An eye-level shot of it. An overhead view.", ["eye-level shot", "overhead view"]),
        ("a cat and a glass", "Soft focus shot from behind the glass.", ["Soft focus shot"]),
        ("clouds over a ridge", "Long exposure shot at dusk, a worm's-eye view.", ["Long exposure shot", "worm's-eye"]),
    ],
)
def test_unasked_shot_types(prompt, rewrite, found):
    assert shot_types(prompt, rewrite) == found


@pytest.mark.parametrize(
    ("prompt", "rewrite"),
    [
        ("macro close-up of a bee", "Medium shot of the hive."),  # the prompt has camera language: not judged
        ("a bartender at work", "She pours two shots of whiskey into a full shot glass."),
        ("a willow by a pond", "Branches hang at eye level over water that shows a wide view of the sky."),
        ("a basketball game", "A long-range shot swishes through the net."),
        ("a flower shop at dusk", "They close up the shop as sunlight falls at a low angle."),
    ],
)
def test_no_unasked_shot_types(prompt, rewrite):
    assert shot_types(prompt, rewrite) == []


def test_later_sentences_opening_with_the():
    assert the_openers("The cat sits. The sun sets. A breeze. The end! “The quote.”") == (3, 4)
    assert the_openers("One sentence only.") == (0, 0)
    assert sentences('He said "Go." Then 3 cats ran. e.g. this stays') == [
        'He said "Go."',
        "Then 3 cats ran. e.g. this stays",
    ]


def test_starts_verbatim():
    assert starts_verbatim("a red ball.", "A red  ball bounces on the floor.")
    assert not starts_verbatim("a red ball", "A bright red ball bounces.")
    assert not starts_verbatim("", "Anything.")


def test_ref_f1_uses_content_word_stems():
    assert ref_f1("the cats run", "a cat running") == 1.0  # stopwords out, stems match
    assert ref_f1("red ball", "blue cube") == 0.0
    assert ref_f1("red ball rolls", "red ball") == pytest.approx(0.8)  # precision 2/3, recall 1
    assert ref_f1("", "red ball") == 0.0


def test_faults_gathers_every_detector_and_is_deterministic():
    rewrite = "A red bicycle. The camera pans left. The smell of oil. A girl rides it."
    result = faults("a red bicycle", rewrite, reference="A red bicycle in the sun.")
    assert result == faults("a red bicycle", rewrite, reference="A red bicycle in the sun.")
    assert result["invented_people"] == ["girl"] and result["senses"] == ["smell"]
    assert result["camera_moves"] == ["camera pans"]
    assert (result["the_openers"], result["later_sentences"]) == (2, 3)
    assert result["starts_verbatim"] and 0 < result["ref_f1"] < 1
    assert faults("a red bicycle", rewrite)["ref_f1"] is None
