"""Faults a reader sees in a rewrite: invented people, sound/smell/taste, unasked camera moves, a fixed skeleton.

Every detector is a word list or a regex, deterministic and fixed before any training, so a rate
moves only when the rewrites do. They measure; nothing in the product filters or redraws with them.
`shot_types` came later (2026-12-07, after training): blind readers counted unasked framing ("Medium shot
focusing on...") as the most common fault, which the camera-move detector does not count. Since the sixth session
of that day it also cleans the training targets (prompts.training.pairs), so the shipped adapter's rate of 0 partly
measures what training removed; the readers' framing counts in benchmarks/RESULTS.md are the check.
"""

from __future__ import annotations

import re

from prompts.preservation import content_words, stem_words, stems


def _words(text: str) -> str:
    """A regex alternation of the whitespace-separated words of `text`."""
    return "|".join(text.split())


# People. Ambiguous nouns are left out on purpose: cook (a verb), player (record player), model, fan,
# guard, king/queen (chess, bees), artist/painter (named by a style), kin words (a mother duck), diner
# (a restaurant), audience (most often the viewer: "allowing the audience to see"), and pronouns (a
# cat's "her tail").
# "Figure" counts only as a person: "a lone figure", "distant figures".
_ONE_PERSON = _words(
    """
    man woman boy girl child kid baby toddler teenager teen person adult guy lady gentleman someone somebody
    human chef baker butcher jogger farmer fisherman worker dancer singer musician guitarist drummer pianist
    violinist photographer rider cyclist biker skier surfer skater skateboarder swimmer diver climber hiker
    athlete driver pilot astronaut soldier knight warrior samurai ninja policeman officer firefighter doctor
    nurse teacher student scientist detective waiter waitress bartender barista vendor shopkeeper customer
    tourist traveler traveller pedestrian passenger stranger villager monk nun priest bride grandmother
    grandfather grandma grandpa husband wife girlfriend boyfriend friend neighbor neighbour wizard witch
    clown cowboy sailor businessman businesswoman hunter gardener shepherd onlooker spectator actor actress
    passerby bystander visitor guest
    """
)
_PLURAL_PERSON = _words(
    """
    men women boys girls children kids babies toddlers teenagers teens people persons adults guys ladies
    gentlemen humans chefs butchers joggers farmers fishermen workers dancers singers musicians riders
    cyclists skiers surfers skaters skateboarders swimmers divers climbers hikers athletes soldiers knights
    warriors students tourists travelers travellers pedestrians passengers strangers villagers monks friends
    neighbors neighbours onlookers spectators actors customers vendors shoppers commuters locals passersby
    bystanders visitors guests diners partygoers revelers residents
    """
)
_FIGURE = r"(?:lone|solitary|distant|hooded|cloaked|shadowy|human|single|dark) figures?"
# A group noun names people unless something else follows "of": "a family of ducks" is not people.
_GROUP = (
    r"(?:crowd|crowds|group|groups|family|families|couple|couples|team|teams|choir)"
    rf"(?! of (?!{_PLURAL_PERSON})\w)"
)
_PERSON = re.compile(rf"(?<![-\w])(?:{_ONE_PERSON}|{_PLURAL_PERSON}|{_GROUP}|{_FIGURE})(?![-\w])", re.IGNORECASE)
_PEOPLE_GROUP = re.compile(rf"(?<![-\w])(?:{_PLURAL_PERSON}|{_GROUP}|{_FIGURE})(?![-\w])", re.IGNORECASE)
# A person in a comparison is not in the scene: "chasing each other like little kids".
_LIKE = re.compile(r"\b(?:like|as if|as though)\s+(?:[\w'-]+\s+){0,2}$", re.IGNORECASE)
# A prompt that shows only part of a person (or speaks as one) still has a person in it.
_PERSON_IN_PROMPT = re.compile(
    r"(?<![-\w])(?:hands?|fingers?|he|she|they|i|me|my|we|our|you|your|selfie|pov)(?![-\w])", re.IGNORECASE
)

# Sound, smell and taste: words that can only be about them (Wan renders silent video). "Quiet",
# "silent" (a calm street, a silent film) and "sweet" or "bitter" (a sweet smile, bitter cold) are left out.
_SENSE_WORDS = {
    "sound": "sounds?|sounding|noises?|noisy|hear|hears|heard|hearing|audible|listen(?:s|ing)?|echo(?:es|ing|ed)?|"
    "music|melod(?:y|ies|ic)|songs?|birdsong|chirp(?:s|ing)?|buzz(?:es|ing)?|hum(?:s|ming)?|whisper(?:s|ing)?|"
    "crackl(?:e|es|ing)|rustl(?:e|es|ing)|roar(?:s|ing)?|murmur(?:s|ing)?|clatter(?:s|ing)?|sizzl(?:e|es|ing)|"
    "chiming|thunderous|deafening|loud|loudly",
    "smell": "smell(?:s|ing|ed)?|scents?|scented|aromas?|aromatic|fragran(?:t|ce|ces)|odou?rs?|stench|whiff",
    "taste": "tastes?|tasting|tasty|flavou?rs?|flavou?rful|delicious|savou?ry|salty|tangy|mouth-?watering",
}
_SENSES = {
    sense: re.compile(rf"(?<![-\w])(?:{words})(?![-\w])", re.IGNORECASE) for sense, words in _SENSE_WORDS.items()
}

# A camera move in a rewrite: the camera moving, or a shot that only a moving camera makes.
_CAMERA_VERBS = (
    "moves?|moving|pans?|panning|tilts?|tilting|zooms?|zooming|doll(?:y|ies|ying)|push(?:es|ing)?|pull(?:s|ing)?|"
    "glides?|gliding|sweeps?|sweeping|tracks?|tracking|follows?|following|circles?|circling|orbits?|orbiting|"
    "rotates?|rotating|rises?|rising|descends?|descending|swoops?|swooping|flies|flying|drifts?|drifting|"
    "cranes?|craning|travels?|travell?ing|approaches|approaching|spins?|spinning|soars?|soaring|hovers?|"
    "hovering|slides?|sliding|shakes?|shaking|lowers?|lowering|lifts?|lifting|backs? away|retreats?|"
    "closes? in|creeps?|creeping|weaves?|weaving|dives?|diving|rolls?|rolling"
)
_CAMERA_MOVE = re.compile(
    rf"\bcamera\s+(?:(?:is|was|begins to|starts to|continues to|then|also|now|\w+ly)\s+){{0,3}}(?:{_CAMERA_VERBS})\b"
    r"|\bpan(?:s|ning|ned)?\s+(?:slowly\s+)?(?:left|right|across|over|up|down|around|along|to|from)\b|\bpanning\b"
    r"|\b(?:slow|camera|sweeping|pan)\s+pans?\b|\bpan shot\b"
    r"|\btilt(?:s|ing|ed)?\s+(?:slowly\s+)?(?:up|down|upward|downward)s?\b"
    r"|\bzoom(?:s|ing|ed)?\b|\bdolly\b|\bdollies\b"
    r"|\bpush(?:es|ing)?[- ]in\b(?!to)|\bpull(?:s|ing)?[- ](?:back|out|away)\b(?=[\w\s,]{0,20}\breveal)"
    r"|\bcrane (?:shot|up|down)\b|\btracking (?:shot|camera)\b|\borbit(?:ing)? (?:shot|camera|around)\b"
    r"|\bhand-?held\b|\bdrone (?:shot|footage|view|camera|perspective|flight)\b|\baerial\b|\bbird'?s[- ]eye\b"
    r"|\bfly-?through\b|\bfpv\b|\bsteadicam\b|\bgimbal\b|\bwhip pan\b",
    re.IGNORECASE,
)
# Framing a prompt did not ask for: shot sizes, angles and lenses ("Medium shot", "Low-angle view", "close-up").
_SHOT_TYPE = re.compile(
    r"\b(?:extreme[- ])?close-ups?\b|\bcloseups?\b|\bclose up (?:of|shot|view)\b"  # not "they close up the shop"
    r"|\b(?:medium|mid|wide|long|tight|establishing|macro|overhead|top-?down|profile|over-the-shoulder|master|insert"
    r"|point-of-view|pov|soft[- ]focus|long[- ]exposure)[- ]?shots?\b"  # not "two shots" (of espresso), "full shot"
    r"|\b(?:low|high|dutch)-angle\b|\b(?:low|high|dutch) angle (?:shot|view|perspective)\b"  # not "at a low angle"
    r"|\b(?:bird|worm)'?s[- ]eye\b|\beye[- ]level (?:view|shot|perspective|angle)\b"
    r"|\b(?:wide|long|telephoto|fish-?eye|macro)[- ]?lens\b|\bwide[- ]angle\b"
    r"|\bside[- ]profile (?:view|shot)\b|\b(?:top-?down|overhead) (?:view|perspective)\b",
    re.IGNORECASE,
)
# Camera language in a prompt: any move above, or framing, or naming the camera or the shot.
_CAMERA_LANGUAGE = re.compile(
    r"\b(?:camera|shot|shots|footage|filmed|lens|pov|point of view|first[- ]person|close-?ups?|close up|"
    r"extreme close|macro|top-?down|overhead|wide[- ]angle|fish-?eye|low[- ]angle|high[- ]angle|"
    r"pan|pans|panning|tilt|zoom|dolly|crane|tracking|orbit|orbits|orbiting|drone|aerial|handheld|"
    r"hand-held|push in|pull back|16mm|35mm|8mm|vhs|camcorder)\b",
    re.IGNORECASE,
)

_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)]))\s+(?=[\"'“‘(]?[A-Z0-9])")


def sentences(text: str) -> list[str]:
    """The sentences of `text`, split after . ! or ? before a capital or a digit."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def _new_words(found: list[str], prompt: str) -> list[str]:
    """The words of `found` whose stem the prompt does not have."""
    have = set(stems(prompt))
    return [w for w in found if stem_words(w.split())[-1] not in have]


def _in_scene(pattern: re.Pattern, text: str) -> list[str]:
    """The matches of `pattern` in `text` that are not in a comparison."""
    return [m.group(0) for m in pattern.finditer(text) if not _LIKE.search(text[max(0, m.start() - 40) : m.start()])]


def invented_people(prompt: str, rewrite: str) -> list[str]:
    """People the rewrite adds: any person when the prompt has none, else any group the prompt did not name."""
    if not _PERSON.search(prompt) and not _PERSON_IN_PROMPT.search(prompt):
        return _in_scene(_PERSON, rewrite)
    if _PEOPLE_GROUP.search(prompt):
        return []
    return _new_words(_in_scene(_PEOPLE_GROUP, rewrite), prompt)


def senses(prompt: str, rewrite: str) -> list[str]:
    """Sound, smell or taste words of the rewrite, for each sense the prompt does not speak of."""
    return [word for sense in _SENSES.values() if not sense.search(prompt) for word in sense.findall(rewrite)]


def camera_moves(prompt: str, rewrite: str) -> list[str]:
    """Camera moves in the rewrite of a prompt with no camera language (none when the prompt has some)."""
    if _CAMERA_LANGUAGE.search(prompt):
        return []
    return [m.group(0) for m in _CAMERA_MOVE.finditer(rewrite)]


def shot_types(prompt: str, rewrite: str) -> list[str]:
    """Shot sizes, angles and lenses in the rewrite of a prompt with no camera language (none when it has some)."""
    if _CAMERA_LANGUAGE.search(prompt):
        return []
    return [m.group(0) for m in _SHOT_TYPE.finditer(rewrite)]


def the_openers(rewrite: str) -> tuple[int, int]:
    """(later sentences opening with "The", later sentences): the first sentence is the user's to open."""
    later = sentences(rewrite)[1:]
    return sum(s.split(maxsplit=1)[0].strip("\"'“‘(") == "The" for s in later), len(later)


def starts_verbatim(prompt: str, rewrite: str) -> bool:
    """The rewrite opens with the prompt word for word (case and spacing aside, its final stop optional)."""
    norm = lambda text: " ".join(text.lower().split())  # noqa: E731
    head = norm(prompt).rstrip(".!?")
    return bool(head) and norm(rewrite).startswith(head)


def ref_f1(rewrite: str, reference: str) -> float:
    """F1 of the sets of content-word stems (prompts.preservation's stopwords and stems) against `reference`."""
    ours, theirs = set(stem_words(content_words(rewrite))), set(stem_words(content_words(reference)))
    shared = len(ours & theirs)
    if not shared:
        return 0.0
    precision, recall = shared / len(ours), shared / len(theirs)
    return 2 * precision * recall / (precision + recall)


def faults(prompt: str, rewrite: str, reference: str | None = None) -> dict:
    """Every detector on one rewrite; `ref_f1` is None without a reference."""
    the, later = the_openers(rewrite)
    return {
        "invented_people": invented_people(prompt, rewrite),
        "senses": senses(prompt, rewrite),
        "camera_moves": camera_moves(prompt, rewrite),
        "shot_types": shot_types(prompt, rewrite),
        "the_openers": the,
        "later_sentences": later,
        "starts_verbatim": starts_verbatim(prompt, rewrite),
        "ref_f1": None if reference is None else ref_f1(rewrite, reference),
    }
