"""Does a sentence contradict what the idea states? Counts, camera moves, relations and quoted text.

The rewrite opens with the idea's own words, so they are always there; a small model may still go on
to say otherwise ("three dogs ... The two dogs", "zoom in ... the camera zooms out", "a cup on the
left of a laptop ... the laptop on the left of the cup", "says "open" ... reads "closed""). The
embedded rewriter draws such a sentence again (prompts.topic.fault). Words are compared by their
Snowball stems (prompts.preservation.stems), so "duck" and "ducks" are one word.
"""

from __future__ import annotations

import re

from prompts.preservation import stems

_NUMBERS = {
    w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split()) if i
}
_NUMBER = r"\b(\d+|" + "|".join(_NUMBERS) + r")\b"
_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”')

# camera moves: (what moves, which way); "static" allows none
_MOVE = re.compile(
    r"\b(pan|tilt|zoom|dolly|truck)(?:s|ing|ning|ed|ned)?\s+(?:slowly\s+|gently\s+)?(?:to\s+the\s+)?"
    r"(left|right|up|down|in|out|forward|back(?:ward)?)\b",
    re.IGNORECASE,
)
_STATIC = re.compile(r"\b(static|still|fixed|stationary|locked[- ]off)\s+(camera|shot)\b", re.IGNORECASE)
_SAME_WAY = {"backward": "back", "forward": "in"}  # a dolly forward is a dolly in

# relations and their opposites, as regular expressions over lower-case text
_RELATIONS = {
    "left of": r"(?:on|to) the left of",
    "right of": r"(?:on|to) the right of",
    "above": r"above",
    "below": r"below|beneath|underneath|under",
    "in front of": r"in front of",
    "behind": r"behind",
}
_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above",
             "in front of": "behind", "behind": "in front of"}  # fmt: skip
_WINDOW = 6  # words either side of a relation where its two things are looked for


def contradiction(sentence: str, idea: str) -> str | None:
    """What `sentence` says against `idea`, or None."""
    for check in (_quotes, _counts, _camera, _relations):
        if why := check(sentence, idea):
            return why
    return None


def _quotes(sentence: str, idea: str) -> str | None:
    said, words = [_bare(q) for q in _quoted(idea)], set(stems(idea))
    for quote in _quoted(sentence):
        # the idea's text, a part of it, or only words the idea uses (a stop sign reads "STOP")
        if not any(_bare(quote) in q for q in said) and not set(stems(quote)) <= words:
            return f"quotes text the idea does not ({quote!r})"
    return None


def _quoted(text: str) -> list[str]:
    return [a or b for a, b in _QUOTED.findall(text)]


def _bare(quote: str) -> str:
    return quote.strip(" .,!?;:").lower()


def _counts(sentence: str, idea: str) -> str | None:
    """A count the idea gives ("three yellow ducks") said as another number of the same thing ("two ducks")."""
    counted = {phrase[-1]: number for number, phrase in _numbered(idea)}  # the phrase's last word names it
    for number, phrase in _numbered(sentence):
        if number == 1:  # "a bite of one apple", "one ear up": one of them, not a count
            continue
        for word in phrase:
            if word in counted and counted[word] != number:
                return f"changes a count the idea gives ({number} instead of {counted[word]})"
    return None


def _numbered(text: str) -> list[tuple[int, list[str]]]:
    """(number, stems of the words after it) for "three yellow ducks", "2 cats": up to three words, up to a
    comma, "of" or another word that ends a noun phrase, or a word in -ing."""
    out = []
    for match in re.finditer(_NUMBER + r"((?:\s+[a-z][a-z'-]*){1,3})", text.lower()):
        phrase = []
        for w in match[2].split():
            if w in _PHRASE_ENDS or (w.endswith("ing") and phrase):
                break  # "one of the dogs" counts nothing
            phrase.append(w)
        if phrase:
            out.append((int(match[1]) if match[1].isdigit() else _NUMBERS[match[1]], stems(" ".join(phrase))))
    return out


_PHRASE_ENDS = frozenset(
    "is are was were and or of in on at with to from by for into onto over under near behind beside above below "
    "that which who while as the a an their its his her".split()
)


def _camera(sentence: str, idea: str) -> str | None:
    wanted = {what.lower(): _way(way) for what, way in _MOVE.findall(idea)}
    moves = [(what.lower(), _way(way)) for what, way in _MOVE.findall(sentence)]
    if _STATIC.search(idea) and moves:
        return f"moves the camera ({moves[0][0]} {moves[0][1]}) in a static shot"
    if wanted and _STATIC.search(sentence):
        return "holds the camera still against the move the idea asks for"
    for what, way in moves:
        if what in wanted and wanted[what] != way:
            return f"turns the camera's {what} {way}, not {wanted[what]}"
    return None


def camera_move(idea: str) -> str:
    """The first camera move the idea asks for, as a template's closing sentence says it ("pan left":
    "pans left", "zooming in": "zooms in"), or ""."""
    if match := _MOVE.search(idea):
        what = match[1].lower()
        return f"{what[:-1] + 'ies' if what.endswith('y') else what + 's'} {_way(match[2])}"
    return ""


def _way(way: str) -> str:
    return _SAME_WAY.get(way.lower(), way.lower())


def _relations(sentence: str, idea: str) -> str | None:
    """A relation the idea states between two things ("a cup on the left of a laptop"), said the other way
    round (the laptop on the left of the cup) or turned into its opposite (the cup on the right of it)."""
    for name, a, b in _stated(idea):
        for found, before, after in _around(sentence, {name, _OPPOSITE[name]}):
            x = next((w for w in reversed(before) if w in (a, b)), None)
            y = next((w for w in after if w in (a, b)), None)
            if found == name and (x, y) == (b, a):
                return f"swaps the things the idea puts {name}"
            if found != name and (x, y) == (a, b):
                return f"turns the relation the idea gives ({name}) into its opposite"
    return None


def _stated(idea: str) -> list[tuple[str, str, str]]:
    """(relation, stem of the thing before it, stem of the thing after it) the idea states: the last
    noun-like word before the relation and the last word of the phrase after it ("a cup on the left of
    a white laptop": cup, laptop). Relations between two things of one name are left out."""
    out = []
    for name, before, after in _around(idea, set(_RELATIONS)):
        a = next((w for w in reversed(before) if w not in _PHRASE_ENDS and not w.endswith("ing")), None)
        phrase = []
        for w in after:
            if w in ",.;:!?" or (w in _PHRASE_ENDS and phrase) or w.endswith("ing"):
                break
            if w not in _PHRASE_ENDS:
                phrase.append(w)
        if a and phrase and a != phrase[-1] and a not in ",.;:!?":
            out.append((name, a, phrase[-1]))
    return out


def _around(text: str, names: set[str]) -> list[tuple[str, list[str], list[str]]]:
    """(relation, stems of up to _WINDOW words and punctuation before it, and after it) for each relation
    of `names` in `text`."""
    low = text.lower()
    out = []
    for name in names:
        for match in re.finditer(rf"\b(?:{_RELATIONS[name]})\b", low):
            before = _tokens(low[: match.start()])[-_WINDOW:]
            after = _tokens(low[match.end() :])[:_WINDOW]
            out.append((name, before, after))
    return out


def _tokens(text: str) -> list[str]:
    """Stems of the words, and the punctuation marks, of `text` in order."""
    return [t if not t[0].isalpha() else stems(t)[0] for t in re.findall(r"[a-z][a-z'-]*|[,.;:!?]", text)]
