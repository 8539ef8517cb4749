import pytest

from prompts.language import looks_english


@pytest.mark.parametrize(
    "text",
    ["a unicorn eating spaghetti", "A cat on the left of a dog, zoom in", "3 dogs", "Van Gogh style café at night",
     "a sign that says \"hola\"", "Tokyo street at night, neon"],
)
def test_english(text):
    assert looks_english(text)


@pytest.mark.parametrize(
    "text",
    ["un gato comiendo espaguetis en la cocina", "une voiture rouge dans la rue avec des arbres",
     "ein Hund spielt mit einem Ball auf der Wiese", "一只猫在弹钢琴", "кошка играет на пианино"],
)
def test_not_english(text):
    assert not looks_english(text)
