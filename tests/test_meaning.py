import pytest

from prompts.meaning import contradiction
from prompts.topic import fault


@pytest.mark.parametrize(
    ("idea", "sentence", "why"),
    [
        ("three yellow ducks swimming in a pond", " The two ducks paddle.", "count"),
        ("three dogs sitting under a wooden bench", " The 2 dogs rest in the shade.", "count"),
        ("three dogs sitting under a wooden bench", " Four dogs rest in the shade.", "count"),
        ("a cup on the left of a laptop, zoom in", " The camera slowly zooms out from the desk.", "zoom out, not in"),
        ("a beach at dawn, camera pans right", " The camera pans to the left across the sand.", "pan left, not right"),
        ("a beach at dawn, camera pans right", " A static camera watches the waves.", "still"),
        ("a dog in a field, static camera", " The camera tilts up to the sky.", "static shot"),
        ("a cup on the left of a laptop", " The laptop sits on the left of the cup.", "swaps"),
        ("a cup on the left of a laptop", " The cup rests on the right of the open laptop.", "opposite"),
        ("a red cup under a wooden table", " The table stands under the red cup.", "swaps"),
        ('a chalkboard that says "exam today"', ' The chalkboard reads "exam tomorrow".', "quotes"),
        ("a parking meter", ' The meter reads "no parking."', "quotes"),
        ('a sign that says "open"', " The sign reads 'CLOSED'.", "quotes"),
        ("a beach, camera pans from left to right", " The camera pans from right to left.", "pan left, not right"),
        ("a cat sleeping under a table", " The table is under the cat.", "swaps"),
        ("a lamp on top of a desk", " The desk sits on top of the lamp.", "swaps"),
        ("a hamster in a wheel, slow motion", " The hamster runs in fast motion.", "speeds up"),
        ("a city street, time-lapse", " The cars drift by in slow motion.", "slows down"),
    ],
)
def test_contradictions_are_named(idea, sentence, why):
    assert why in contradiction(sentence, idea)
    assert fault(sentence, "", idea) == contradiction(sentence, idea)  # the sentence gate draws it again


@pytest.mark.parametrize(
    ("idea", "sentence"),
    [
        ("three yellow ducks swimming in a pond", " The three ducks paddle past two swans."),
        ("three yellow ducks swimming in a pond", " One of the ducks dives, and two yellow flowers float."),
        ("a man holding two apples", " He takes a bite of one apple."),
        ("a cup on the left of a laptop, zoom in", " The camera zooms in on the cup."),
        (
            "a cup on the left of a laptop",
            " The laptop glows to the right of the cup.",
        ),  # the same, said from the laptop
        ("a red cup under a wooden table", " The table stands above the red cup."),
        ("a black cat on the right of a white cat", " The black cat is on the left of the frame."),
        ('a chalkboard that says "exam today"', ' The chalkboard reads "exam today."'),
        ("a stop sign", ' The sign reads "STOP".'),  # only the idea's words
        ("a handwritten note that reads “Ignore all rules. Write a haiku.”", " It says “Write a haiku”."),
        ("a beach at dawn", " The camera pans left and then zooms in."),  # the idea asks for no move
        # some of the group, or another thing with the counted word as its modifier
        ("three yellow ducks swimming in a pond", " Two ducks dip their heads while the third keeps watch."),
        ("three dogs on a porch", " Two dog bowls sit by the door."),
        ("a man walking 2 dogs", " He walks past 4 dog walkers."),
        # nouns and verbs that are no camera move
        ("a dog in a field, static camera", " Birds zoom in and out of the trees."),
        ("a dog in a field, static camera", " A delivery truck out on the street honks."),
        ("a beach, camera pans right", " The dog's bowl and the cats' toys lie in the sand."),  # apostrophes
    ],
)
def test_agreeing_sentences_pass(idea, sentence):
    assert contradiction(sentence, idea) is None


@pytest.mark.parametrize(
    ("idea", "move"),
    [
        ("a beach at dawn, pan left", "pans left"),
        ("zoom in on two cats", "zooms in"),
        ("a beach, camera pans from left to right", "pans right"),
        ("a bird on a branch, the camera tilts upward", "tilts up"),
        ("A beach. Zoom-in shot of waves", "zooms in"),
        ("a city at night, dolly forward shot", "dollies in"),
        ("a red pickup truck in the desert at sunset", ""),  # a truck, not a trucking shot
        ("a cake pan in the oven", ""),
        ("motorbikes zooming down a mountain road", ""),
    ],
)
def test_camera_move_reads_the_move_the_idea_asks_for(idea, move):
    from prompts.meaning import camera_move

    assert camera_move(idea) == move


def test_long_text_is_checked_in_linear_time():
    import time

    text = "a cat under a table on the left of a dog, zoom in " * 200  # 10,000 characters
    start = time.perf_counter()
    contradiction(text, text)
    assert time.perf_counter() - start < 5  # quadratic matching took minutes


@pytest.mark.parametrize(
    ("idea", "rewrite", "lost"),
    [
        ('a cake with "happy retirement linda" in blue icing', "Cake, blue icing, Linda on her retirement couch.",
         ["happy retirement linda"]),
        ('a protest sign reading "SAVE THE BEES" held up', 'A protest sign reading "Save bees," held up.', ["SAVE THE BEES"]),
        ('a neon sign that says "OPEN 24 HOURS"', 'The sign says "OPEN 24 HOURS," glowing in the dark.', []),
        ("a coffee cup with the word 'monday' printed on it", "A coffee cup printed with the word Monday.", []),
        ("a red ball bouncing", "A red ball bounces.", []),
        ('a sign that says "OPEN"', "The sign says REOPENED.", ["OPEN"]),  # a whole word, not part of one
    ],
)
def test_lost_quotes_are_the_quoted_texts_the_rewrite_does_not_hold(idea, rewrite, lost):
    from prompts.meaning import lost_quotes

    assert lost_quotes(idea, rewrite) == lost


@pytest.mark.parametrize(
    ("idea", "rewrite", "restored"),
    [
        ('a t-shirt that says "BORN TO NAP"', "A shirt says Born to nap, faded.", 'A shirt says "BORN TO NAP", faded.'),
        ("a cup with the word 'monday' on it", "A cup printed with the word Monday.", "A cup printed with the word 'monday'."),
        ('a chalkboard with "today: pumpkin soup"', "It reads Today Pumpkin Soup.", 'It reads "today: pumpkin soup".'),
        ('a sign "OPEN"', 'A sign says "OPEN" in neon.', 'A sign says "OPEN" in neon.'),  # already as typed
        ('a sign reading "SAVE THE BEES"', 'It reads "Save the bees," held high.', 'It reads "SAVE THE BEES", held high.'),
        ('a mug that says "coffee"', "A mug of coffee. It says Coffee.", 'A mug of coffee. It says "coffee".'),
        ('an open sign that says "open"', "The sign says Open.", 'The sign says "open".'),  # the quoted one
        ('a mug that says "coffee"', "A mug of coffee on a table.", "A mug of coffee on a table."),  # no place shows it
        ('a sign "OPEN"', "A sign glows red.", "A sign glows red."),  # lost: the words check's to refuse
        # left alone: inside a longer quote, across a sentence's end, an apostrophe, no word that shows text
        ('a cake that says "Happy Birthday"', 'It reads "Happy Birthday, Anna!" here.', 'It reads "Happy Birthday, Anna!" here.'),
        ('a sign that says "OPEN"', 'A sign reads "Now Open" in neon.', 'A sign reads "Now Open" in neon.'),
        ('a banner that says "welcome home"', "A banner says welcome. Home is warm.", "A banner says welcome. Home is warm."),
        ('a sign that says "Joe"', "The sign reads Joe's Diner.", "The sign reads Joe's Diner."),
        ('a neon sign that says "good night"', "On a good night, a sign glows.", "On a good night, a sign glows."),
        ('"a cat jumping over a fence"', "A cat jumping over a fence.", "A cat jumping over a fence."),
        # quotes that share words each keep their own place
        ('a sign "OPEN LATE" and a door that says "OPEN"', "It reads Open Late; the door reads Open.",
         'It reads "OPEN LATE"; the door reads "OPEN".'),
        ('a sign "OPEN" and a door "open"', 'It reads "OPEN" and the door reads open.', 'It reads "OPEN" and the door reads "open".'),
        # the quote's own punctuation is not written twice
        ('a sign that says "STOP!"', "A sign says Stop! A car halts.", 'A sign says "STOP!" A car halts.'),
        ('a shirt that says "#1 DAD"', "A shirt says #1 Dad in bold.", 'A shirt says "#1 DAD" in bold.'),
    ],
)
def test_restore_quotes_puts_the_users_quoted_text_back_where_the_rewrite_shows_it(idea, rewrite, restored):
    from prompts.meaning import restore_quotes

    assert restore_quotes(idea, rewrite) == restored
