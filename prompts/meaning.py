"""Does a sentence contradict what the idea states? Counts, camera moves, pace, relations and quoted text.

The rewrite opens with the idea's own words, so they are always there; a small model may still go on
to say otherwise ("three dogs ... The two dogs", "zoom in ... the camera zooms out", "slow motion ...
in fast motion", "a cup on the left of a laptop ... the laptop on the left of the cup", "says "open"
... reads "closed""). The embedded rewriter draws such a sentence again (prompts.topic.fault).
Relations compare words by their Snowball stems (prompts.preservation.stems).
"""

from __future__ import annotations

import bisect
import re

from prompts.preservation import stem_words, stems

_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
    if i
}
# a number, and whether "the", "these", "all" and the like make it the whole group ("the two dogs")
_COUNT = re.compile(
    r"(?:\b(the|these|those|all(?:\s+the)?|its|their)\s+)?\b(\d+|"
    + "|".join(_NUMBERS)
    + r")\b((?:\s+[a-z][a-z'-]*){1,3})"
)
_PHRASE_ENDS = frozenset(
    "is are was were and or of in on at with to from by for into onto over under near behind beside above below "
    "that which who while as the a an their its his her".split()
)
_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|«([^»]+)»|(?<!\w)\'([^\'\n]+)\'(?!\w)')

# camera moves: the verb, which ways it goes, and the clause around it naming the camera or starting with it
_MOVE = re.compile(
    r"\b(pan|tilt|zoom|doll(?:y|ie)|truck)(?:s|ing|ning|ed|ned)?(?:\s+|-)(?:slowly\s+|gently\s+|quickly\s+)?"
    r"(?:(?:from\s+(?:the\s+)?(?:left|right|top|bottom)\s+)?to\s+(?:the\s+)?)?"
    r"(left|right|up|down|in|into|out|forward|back(?:ward)?|upwards?|downwards?)\b",
    re.IGNORECASE,
)
_WAYS = {"pan": {"left", "right"}, "tilt": {"up", "down"}, "zoom": {"in", "out"}, "dolly": {"in", "out"},
         "truck": {"left", "right"}}  # fmt: skip
_SAME_WAY = {"into": "in", "forward": "in", "back": "out", "backward": "out", "upward": "up", "upwards": "up",
             "downward": "down", "downwards": "down"}  # fmt: skip
_CAMERA = re.compile(r"\b(camera|shot|lens|view|footage|video|frame|filmed|film)\b", re.IGNORECASE)
_STATIC = re.compile(r"\b(static|still|fixed|stationary|locked[- ]off)\s+(camera|shot)\b", re.IGNORECASE)
_SLOW = re.compile(r"\bslow[- ]?(?:motion|mo)\b", re.IGNORECASE)
_FAST = re.compile(r"\b(?:fast[- ]motion|sped[- ]up|time[- ]?lapse|fast[- ]forward(?:ed)?|hyperlapse)\b", re.IGNORECASE)

# relations and their opposites, as regular expressions over lower-case text
_RELATIONS = {
    "left of": r"(?:on|to) the left(?: side)? of",
    "right of": r"(?:on|to) the right(?: side)? of",
    "above": r"above|on top of|atop",
    "below": r"below|beneath|underneath|under",
    "in front of": r"in front of",
    "behind": r"behind",
}
_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above",
             "in front of": "behind", "behind": "in front of"}  # fmt: skip
_WINDOW = 6  # words either side of a relation where its two things are looked for


def contradiction(sentence: str, idea: str) -> str | None:
    """What `sentence` says against `idea`, or None."""
    for check in (_quotes, _counts, _camera, _pace, _relations):
        if why := check(sentence, idea):
            return why
    return None


def camera_move(idea: str) -> str:
    """The first camera move the idea asks for, as a template's closing sentence says it ("pan left":
    "pans left", "zooming in": "zooms in"), or ""."""
    for what, way in _moves(idea):
        return f"{what[:-1] + 'ies' if what.endswith('y') else what + 's'} {way}"
    return ""


def _quotes(sentence: str, idea: str) -> str | None:
    said, words = [_bare(q) for q in quoted_texts(idea)], set(stems(idea))
    for quote in quoted_texts(sentence):
        # the idea's text, a part of it, or only words the idea uses (a stop sign reads "STOP")
        if not any(_bare(quote) in q for q in said) and not set(stems(quote)) <= words:
            return f"quotes text the idea does not ({quote!r})"
    return None


def lost_quotes(idea: str, rewrite: str) -> list[str]:
    """The idea's quoted texts ("a sign that says "OPEN"") that `rewrite` does not hold word for word (case and
    punctuation aside): the words on a sign, a cake or a shirt are what the user asked the video to show."""
    return [quote for quote in quoted_texts(idea) if not holds_quote(rewrite, quote)]


def holds_quote(text: str, quote: str) -> bool:
    """`text` holds `quote` word for word, case and punctuation aside (an empty quote is always held)."""
    return not _plain(quote) or f" {_plain(quote)} " in f" {_plain(text)} "


# Words that show text ("a sign that reads ...", "printed with the word ..."), up to three words before it.
_SHOWS_TEXT = re.compile(
    r"\b(?:says|saying|said|reads|reading|read|written|writes|printed|spells|spelling|spelled|word|words|text|"
    r"letters|lettering|sign|label|inscription|titled|caption)\W+(?:\w+\W+){0,3}$",
    re.IGNORECASE,
)
_MARKS = "\"“”«»‘’'"
_STOPS = ".,!?;:"
_WITHIN_SENTENCE = r"(?:[^\w.!?]|[.!?](?!\s))+"  # what may stand between a quote's words: never a sentence's end


def restore_quotes(idea: str, rewrite: str) -> str:
    """`rewrite` with each quoted text of the idea that it holds only loosely ("shirt says Born to nap" for
    "BORN TO NAP") put back as the user typed it, quote marks and case: the video model renders those letters.

    Only where the rewrite shows that text: a quoted span of exactly those words ('reads "Save the bees,"'), or
    the bare words after words that show text (says, reads, printed, word, sign...). Words inside a longer quote
    ('"Happy Birthday, Anna!"'), across a sentence's end, or anywhere else ("on a good night") are left alone,
    and so is a span an earlier quote of the idea took."""
    taken: list[tuple[int, int]] = []
    for quoted in _QUOTED.finditer(idea):
        typed, quote = quoted.group(0), next(g for g in quoted.groups() if g)
        words = re.findall(r"\w+", quote)
        if not words or quote != quote.strip():  # 'a 6" tall ... says "': no quote
            continue
        if (at := rewrite.find(typed)) >= 0:  # already as typed: that span is this quote's
            taken.append((at, at + len(typed)))
            continue
        lead = quote[: quote.find(words[0])]  # "#1 DAD", "...and action"
        tail = quote[quote.rfind(words[-1]) + len(words[-1]) :]  # "STOP!", "C++", "100%"
        loose = re.compile(
            rf"(?P<open>[{_MARKS}])?(?:{re.escape(lead)})?\b{_WITHIN_SENTENCE.join(map(re.escape, words))}\b"
            rf"(?:{re.escape(tail)})?(?:(?P<stop>[{_STOPS}]?)(?P<close>[{_MARKS}])(?!\w))?(?!['’]?\w)",
            re.IGNORECASE,
        )
        spans = [m.span() for m in _QUOTED.finditer(rewrite)]
        for m in loose.finditer(rewrite):
            if _overlaps(m, taken):
                continue
            if m.group("open") and m.group("close"):
                ok = m.span() in spans  # a quoted span of exactly these words
            else:
                ok = not m.group("open") and not m.group("close") and not _overlaps(m, spans)
                ok = ok and bool(_SHOWS_TEXT.search(rewrite[: m.start()][-60:]))
            if ok:
                stop = "" if quote[-1] in _STOPS else m.group("stop") or ""  # a stop inside the marks moves out
                rewrite = rewrite[: m.start()] + typed + stop + rewrite[m.end() :]
                shift = len(typed) + len(stop) - (m.end() - m.start())
                taken = [(a + shift, b + shift) if a >= m.end() else (a, b) for a, b in taken]
                taken.append((m.start(), m.start() + len(typed)))
                break
    return rewrite


def _overlaps(match: re.Match, spans: list[tuple[int, int]]) -> bool:
    return any(a < match.end() and match.start() < b for a, b in spans)


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def quoted_texts(text: str) -> list[str]:
    """The texts `text` quotes, in "double", “curly”, «angle» or 'single' quotes."""
    return [next(g for g in groups if g) for groups in _QUOTED.findall(text)]


def _bare(quote: str) -> str:
    return quote.strip(" .,!?;:").lower()


def _counts(sentence: str, idea: str) -> str | None:
    """A count the idea gives ("three yellow ducks") said as another number of the same thing: of the whole
    group ("the two ducks") or more of them ("four ducks"). "Two ducks dive" may be two of the three, and
    "two dog bowls" counts bowls: only the same word as the idea's, plural and all, is the same thing."""
    counted = {words[-1]: number for number, words, _ in _numbered(idea)}  # the phrase's last word names it
    for number, words, whole in _numbered(sentence):
        for word in words:
            if word in counted and counted[word] != number and (whole or number > counted[word]):
                return f"changes a count the idea gives ({number} {word} instead of {counted[word]})"
    return None


def _numbered(text: str) -> list[tuple[int, list[str], bool]]:
    """(number, the words after it, whether it counts the whole group) for "three yellow ducks", "the 2 cats":
    up to three words, up to a word that ends a noun phrase ("one of the dogs" counts nothing) or one in -ing."""
    out = []
    for match in _COUNT.finditer(text.lower()):
        words = []
        for w in match[3].split():
            if w in _PHRASE_ENDS or (w.endswith("ing") and words):
                break
            words.append(w)
        if words:
            out.append((int(match[2]) if match[2].isdigit() else _NUMBERS[match[2]], words, bool(match[1])))
    return out


def _moves(text: str) -> list[tuple[str, str]]:
    """(verb, way) of each camera move in `text`: a clause that names the camera, or starts with the move
    ("zoom in on two cats", "..., pan left"); "a pickup truck in the desert" or "birds zoom in and out of
    the trees" move no camera."""
    out = []
    for match in _MOVE.finditer(text):
        what = "dolly" if match[1].lower().startswith("doll") else match[1].lower()
        way = _SAME_WAY.get(match[2].lower(), match[2].lower())
        start = max(text.rfind(p, 0, match.start()) for p in ",.;:!?") + 1
        ends = [i for i in (text.find(p, match.end()) for p in ",.;:!?") if i >= 0]
        clause = text[start : min(ends) if ends else len(text)]
        leads = not re.sub(r"(?i)\b(?:then|and|slowly|now|the|camera)\b", "", text[start : match.start()]).strip()
        if way in _WAYS[what] and (leads or _CAMERA.search(clause)):
            out.append((what, way))
    return out


def _camera(sentence: str, idea: str) -> str | None:
    wanted = dict(reversed(_moves(idea)))  # the first move of each kind
    moves = _moves(sentence)
    if _STATIC.search(idea) and moves:
        return f"moves the camera ({moves[0][0]} {moves[0][1]}) in a static shot"
    if wanted and _STATIC.search(sentence):
        return "holds the camera still against the move the idea asks for"
    for what, way in moves:
        if what in wanted and wanted[what] != way:
            return f"turns the camera's {what} {way}, not {wanted[what]}"
    return None


def _pace(sentence: str, idea: str) -> str | None:
    slow, fast = bool(_SLOW.search(idea)), bool(_FAST.search(idea))
    if slow and not fast and _FAST.search(sentence):
        return "speeds up the slow motion the idea asks for"
    if fast and not slow and _SLOW.search(sentence):
        return "slows down the fast motion or time-lapse the idea asks for"
    return None


def _relations(sentence: str, idea: str) -> str | None:
    """A relation the idea states between two things ("a cup on the left of a laptop"), said the other way
    round (the laptop on the left of the cup) or turned into its opposite (the cup on the right of it)."""
    stated = _stated(idea)
    if not stated:
        return None
    said = _around(sentence.lower(), set(_RELATIONS), stem=True)
    for name, a, b in stated:
        for found, before, after in said:
            if found not in (name, _OPPOSITE[name]):
                continue
            x = next((w for w in reversed(before) if w in (a, b)), None)
            y = next((w for w in after if w in (a, b)), None)
            if found == name and (x, y) == (b, a):
                return f"swaps the things the idea puts {name}"
            if found != name and (x, y) == (a, b):
                return f"turns the relation the idea gives ({name}) into its opposite"
    return None


def _stated(idea: str) -> set[tuple[str, str, str]]:
    """(relation, stem of the thing before it, stem of the thing after it) the idea states: the last
    noun-like word before the relation and the last word of the phrase after it ("a cup sitting on the
    left of a white laptop": cup, laptop). Relations between two things of one name are left out."""
    out = set()
    for name, before, after in _around(idea.lower(), set(_RELATIONS)):
        a = next((w for w in reversed(before) if w not in _PHRASE_ENDS and not w.endswith("ing")), None)
        phrase = []
        for w in after:
            if w in ",.;:!?" or (w in _PHRASE_ENDS and phrase) or w.endswith("ing"):
                break
            if w not in _PHRASE_ENDS:
                phrase.append(w)
        if a and phrase and a not in ",.;:!?":
            a, b = stem_words([a, phrase[-1]])
            if a != b:
                out.add((name, a, b))
    return out


def _around(low: str, names: set[str], stem: bool = False) -> list[tuple[str, list[str], list[str]]]:
    """(relation, up to _WINDOW words and punctuation marks before it, and after it; their stems with
    `stem`) for each relation of `names` in lower-case text `low`."""
    found = [(m.start(), m[0]) for m in re.finditer(r"[a-z][a-z'-]*|[,.;:!?]", low)]
    offsets = [offset for offset, _ in found]
    words = [w for _, w in found]
    if stem:
        words = stem_words(words)
    out = []
    for name in names:
        for match in re.finditer(rf"\b(?:{_RELATIONS[name]})\b", low):
            first, last = bisect.bisect_left(offsets, match.start()), bisect.bisect_left(offsets, match.end())
            out.append((name, words[max(0, first - _WINDOW) : first], words[last : last + _WINDOW]))
    return out
