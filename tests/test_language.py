import pytest

from prompts.language import looks_english, other_language


@pytest.mark.parametrize(
    "text",
    [
        "a unicorn eating spaghetti",
        "A cat on the left of a dog, zoom in",
        "3 dogs",
        "Van Gogh style café at night",
        'a sign that says "hola"',
        "Tokyo street at night, neon",
        "a croissant on a café table",
        "a fiesta in Madrid",
        "tacos al pastor on a plate",
        "a piñata party",
        "barn",
        "piano",
        "a latte",
        "Pokémon in a field",
        "!!!",
    ],
)
def test_english(text):
    assert looks_english(text)


@pytest.mark.parametrize(
    "text",
    [
        "un gato comiendo espaguetis en la cocina",
        "une voiture rouge dans la rue avec des arbres",
        "ein Hund spielt mit einem Ball auf der Wiese",
        "一只猫在弹钢琴",
        "кошка играет на пианино",
        # short prompts: few or no function words to go by
        "une voiture rouge",
        "Hund spielt im Park",
        "gatto nero che dorme",
        "El gato duerme",
        "un perro corriendo",
        "Schmetterling fliegt über Blumen",
        "um gato dormindo no sofá",
        "een hond in het park",
        "kot śpi na kanapie",
        "Katze",
    ],
)
def test_not_english(text):
    assert not looks_english(text)


@pytest.mark.parametrize(
    "text",
    ['a neon sign that reads "ラーメン" in a narrow alley', 'a banner that reads "新年快乐" over a red door',
     'a sign that says "hola amigos, bienvenidos a la fiesta"'],
)  # fmt: skip
def test_quoted_text_in_another_language_is_content_of_an_english_prompt(text):
    assert looks_english(text)


def test_a_prompt_that_is_only_a_quote_is_judged_by_the_quote():
    assert not looks_english('"一只猫在钢琴上睡觉"') and looks_english('"a cat asleep on a piano"')


def test_other_language_names_the_language_a_prompt_leans_to():
    assert other_language("une voiture rouge".split())[0] == "fr"
    assert other_language("gatto nero che dorme".split())[0] == "it"
    lang, lean = other_language("a red car on a wet street".split())
    assert lean < 0
