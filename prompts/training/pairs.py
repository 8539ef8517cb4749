"""Training pairs for the rewriter: (short prompt -> cleaned reference rewrite), from the VBench rows outside the
validation split.

Each prompt gives at most one pair. Its target is the Qwen2.5-3B rewrite (made with Wan's own extender, the register
Wan expects) when that survives cleaning, else GPT-4's (`PREFER["gpt4"]` reverses the order). Cleaning uses the
reader-visible fault detectors of `prompts.faults` on the TARGETS only (never on model outputs): a sentence with a
person the prompt did not ask for, a sound, smell or taste, or a camera move the prompt did not ask for is removed,
and so is a sentence with he/she/his/her when the prompt has no person (the invented person's later sentences).
Two options remove more: `shots`, a sentence after the first that names a shot size, angle or lens the prompt did not
ask for (the training commands' default since 2026-12-07; `--keep-shots` turns it off), and `cuts`, a sentence that
tells another shot (`lora --drop-cuts`). Then
the target is capped at the Wan preset's 150 words by dropping trailing sentences, and dropped when it has under 50
words or loses one of the user's content words (`prompts.preservation`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from prompts.cleaning import word_count
from prompts.faults import camera_moves, invented_people, ref_f1, senses, sentences, shot_types
from prompts.preservation import missing_words
from prompts.training.splits import prompt_hash, split

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "eval" / "vbench" / "dev.jsonl"
REFERENCES = ("reference_qwen2.5_3b_wan", "reference_gpt4")  # in order of preference
# The reference each prompt's target comes from first, by name (`--prefer` of the training commands)
PREFER = {"qwen2.5-3b": REFERENCES, "gpt4": REFERENCES[::-1]}
WORD_RANGE = (50, 150)  # the Wan preset's accepted range (wan2.1-t2v-1.3b)
_PRONOUN = re.compile(r"\b(?:he|she|his|her|hers|him|himself|herself)\b", re.IGNORECASE)
# Traces of a person the detectors leave out on purpose (prompts.faults: kin words, "they", a figure without an
# adjective), read in the references of prompts with nobody in them: "They turn to face the viewer", "The figure
# maintains a serene expression", "the gamer's hands", "They are all wearing stylish clothing". Used to build the
# preference pairs only (the first training's targets stay as they were, so its adapter reproduces).
_PERSON_TRACE = re.compile(
    r"^(?:they|their)\b|\bthey (?:are|were|walk|look|turn|stand|sit|smile|gaze|stroll|hold|wear|move|pause|seem)\b"
    r"|\bfigures?\b|\bsilhouettes? of (?:a|an|two) (?!tree|bird|mountain|building)|\b(?:wearing|dressed|attire|clothing|outfits?)\b"
    r"|\bexpressions? (?:is|are|of)\b|\btheir (?:faces?|expressions?|gaze|eyes|hands|smiles?)\b"
    r"|\b(?:father|mother|daughter|brother|sister|parents|grandparents|owner|owners|gamer|gamers|player|players)\b",
    re.IGNORECASE,
)

# A sentence that tells another shot: "The scene transitions to...", "The scene shifts to...", "Finally, ...", "cuts
# to". GPT-4's references tell a few seconds of video as several shots (14% of them); an adapter trained on them wrote
# it in 30% of its rewrites, a cut nobody asked for and the source of many contradictions (benchmarks/RESULTS.md).
_CUT = re.compile(
    r"\bscene (?:transitions|shifts|cuts|changes|then moves)\b|^finally\b|\bcuts? (?:to|away)\b"
    r"|\bscene (?:begins|opens|starts|ends|closes) (?:with|on)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Pair:
    prompt: str
    target: str
    source: str  # the reference column the target came from
    dimension: str


def load_rows(path: Path) -> list[dict]:
    """The JSONL rows of `path` (one dict a line)."""
    if not path.exists():
        raise FileNotFoundError(f"no training data at {path}; pass --data PATH (see ../shared/eval/README.md)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sentence_faults(
    prompt: str, reference: str, traces: bool = False, cuts: bool = False, shots: bool = False
) -> list[tuple[str, str | None]]:
    """(sentence, the fault it brings or None) for each sentence of `reference`, a rewrite of `prompt`; with
    `traces`, a person's traces count too when the prompt has nobody in it; with `cuts`, a sentence that tells
    another shot ("The scene transitions to...") counts too; with `shots`, a later sentence that names a shot size,
    angle or lens the prompt did not ask for ("Medium shot focusing on...") counts too."""
    has_person = not invented_people(prompt, "a person")  # the detector flags any person when the prompt has none
    out = []
    for i, sentence in enumerate(sentences(reference)):
        fault = (
            "invented people"
            if invented_people(prompt, sentence) or (not has_person and _PRONOUN.search(sentence))
            else "a person's traces"
            if traces and not has_person and _PERSON_TRACE.search(sentence) and not _PERSON_TRACE.search(prompt)
            else "sound, smell or taste"
            if senses(prompt, sentence)
            else "unasked camera move"
            if camera_moves(prompt, sentence)
            else "another shot"
            if cuts and _CUT.search(sentence)
            else "unasked shot type"
            if shots and i and shot_types(prompt, sentence)
            else None
        )
        out.append((sentence, fault))
    return out


def clean_target(
    prompt: str, reference: str, counts: Counter, cuts: bool = False, shots: bool = False
) -> tuple[str | None, str]:
    """(cleaned target, "") or (None, why it was dropped); `counts` gathers the sentences removed, by fault; with
    `cuts`, sentences that tell another shot go too, and with `shots`, later sentences that name an unasked shot type."""
    kept = []
    for sentence, fault in sentence_faults(prompt, reference, cuts=cuts, shots=shots):
        if fault:
            counts[f"sentences removed: {fault}"] += 1
        else:
            kept.append(sentence)
    while kept and word_count(" ".join(kept)) > WORD_RANGE[1]:
        kept.pop()
        counts["sentences removed: over 150 words"] += 1
    target = " ".join(kept)
    if word_count(target) < WORD_RANGE[0]:
        return None, f"under {WORD_RANGE[0]} words after cleaning"
    if missing_words(prompt, target):
        return None, "loses a content word of the prompt"
    return target, ""


def build_pairs(
    rows: list[dict], references: tuple[str, ...] = REFERENCES, cuts: bool = False, shots: bool = False
) -> tuple[list[Pair], list[Pair], dict]:
    """(train pairs, validation pairs, report of what was kept and dropped and why); each target comes from the first
    of `references` that survives cleaning (with `cuts`, cleaning also drops sentences that tell another shot; with
    `shots`, later sentences that name an unasked shot type).

    The validation split is prompts.training.splits' (never trained on); its pairs are cleaned the same way so the
    validation loss measures the same task. A prompt listed under two dimensions gives one pair.
    """
    train_rows, validation_rows = split(rows)
    report = {}
    out = []
    for name, side in (("train", train_rows), ("validation", validation_rows)):
        counts, pairs, seen = Counter(), [], set()
        for row in side:
            key = prompt_hash(row["prompt"])
            if key in seen:
                counts["duplicate prompt"] += 1
                continue
            seen.add(key)
            chosen = None
            for column in references:
                if not row.get(column):
                    continue
                target, why = clean_target(row["prompt"], row[column], counts, cuts, shots)
                if target is None:
                    counts[f"{column}: {why}"] += 1
                elif chosen is None:
                    chosen = Pair(row["prompt"], target, column, row["dimension"])
            if chosen is None:
                counts["dropped: no reference survives cleaning"] += 1
            else:
                counts[f"target from {chosen.source}"] += 1
                pairs.append(chosen)
        report[name] = {"rows": len(side), "pairs": len(pairs), **dict(sorted(counts.items()))}
        out.append(pairs)
    return out[0], out[1], report


@dataclass(frozen=True)
class Preference:
    prompt: str
    chosen: str  # the cleaned target, as training pairs have it (ranked_preferences: the best of own drafts)
    # the same reference with its faulty sentences in place (preference_pairs), or the rewriter's own first draft
    # of the prompt (draft_preferences), or its worst draft (ranked_preferences)
    rejected: str
    faults: tuple[str, ...]  # what the rejected adds that a detector sees, one entry a fault
    dimension: str


def preference(prompt: str, reference: str, shots: bool = False) -> tuple[str, str, tuple[str, ...]] | str:
    """(chosen, rejected, the faults the rejected adds) from one reference rewrite of `prompt`, or why none.

    chosen: the reference's fault-free sentences (person traces counted too), capped at 150 words; it must keep
    the prompt's content words and reach 50 words, as a training target does. rejected: the chosen with the faulty
    sentences that stood before or between its sentences put back in place. Faulty sentences after the chosen's last one are
    left out, so both texts end alike: the pair differs in what a sentence says, never in where the text stops (a
    rejected text that runs on past the chosen's end would teach stopping early).
    """
    marked = sentence_faults(prompt, reference, traces=True, shots=shots)
    if not any(f for _, f in marked):
        return "nothing to remove"
    kept = [s for s, f in marked if f is None]
    while kept and word_count(" ".join(kept)) > WORD_RANGE[1]:
        kept.pop()
    chosen = " ".join(kept)
    if word_count(chosen) < WORD_RANGE[0]:
        return f"chosen under {WORD_RANGE[0]} words"
    if missing_words(prompt, chosen):
        return "chosen loses a content word of the prompt"
    rejected, faults, clean_left = [], [], len(kept)
    for sentence, fault in marked:
        if not clean_left:
            break
        rejected.append(sentence)
        if fault:
            faults.append(fault)
        else:
            clean_left -= 1
    if not faults:
        return "no faulty sentence within the chosen"
    return chosen, " ".join(rejected), tuple(faults)


def preference_pairs(
    rows: list[dict], references: tuple[str, ...] = REFERENCES, shots: bool = False
) -> tuple[list[Preference], dict]:
    """(preferences, counts) from `rows` (one side of the split): for each prompt, the first reference (in the
    order of `references`) that gives a preference; with `shots`, an unasked shot type is a fault too."""
    counts: Counter = Counter()
    out, seen = [], set()
    for row in rows:
        key = prompt_hash(row["prompt"])
        if key in seen:
            continue
        seen.add(key)
        for column in references:
            if not row.get(column):
                continue
            made = preference(row["prompt"], row[column], shots)
            if isinstance(made, str):
                counts[f"{column}: {made}"] += 1
                continue
            chosen, rejected, faults = made
            counts.update(f"rejected adds: {f}" for f in set(faults))
            out.append(Preference(row["prompt"], chosen, rejected, faults, row["dimension"]))
            break
    counts["preferences"] = len(out)
    return out, dict(sorted(counts.items()))


def draft_preferences(pairs: list[Pair], drafts: dict[str, str]) -> tuple[list[Preference], dict]:
    """(preferences, counts): for each training pair whose prompt has a draft in `drafts` (prompt -> the shipped
    rewriter's own first draft, written by `benchmarks.rewrite_eval --no-words-check`), chosen is the pair's cleaned
    target and rejected is that draft (self-play: the model learns to prefer the reference over what it writes now).

    A draft equal to its target gives nothing to learn and is left out. `faults` lists what the detectors and the
    words check see in the draft (for the record; every draft is used, faulty or not, so the step also learns from
    what no detector sees: a dropped action, a contradiction).
    """
    counts: Counter = Counter()
    out = []
    for pair in pairs:
        draft = drafts.get(pair.prompt)
        if draft is None:
            counts["no draft"] += 1
            continue
        if draft.strip() == pair.target.strip():
            counts["draft equals the target"] += 1
            continue
        found = _draft_faults(pair.prompt, draft)
        counts.update(f"draft has: {f}" for f in found)
        out.append(Preference(pair.prompt, pair.target, draft, tuple(found), pair.dimension))
    counts["preferences"] = len(out)
    return out, dict(sorted(counts.items()))


def load_drafts(paths: list[Path]) -> dict[str, str]:
    """prompt -> rewrite, from `benchmarks.rewrite_eval --out` files (JSONL rows with "prompt" and "rewritten");
    a row kept as written (a fallback) is not the model's writing and is left out. The last row of a prompt wins."""
    return {prompt: texts[-1] for prompt, texts in load_draft_runs(paths).items()}


def load_draft_runs(paths: list[Path]) -> dict[str, list[str]]:
    """prompt -> its rewrites over every file (runs at other seeds), in file order; fallbacks left out as load_drafts
    does."""
    out: dict[str, list[str]] = {}
    for path in paths:
        for row in load_rows(path):
            if row.get("fallback") is None and row.get("rewritten"):
                out.setdefault(row["prompt"], []).append(row["rewritten"])
    return out


MIN_RANK_GAP = 0.05  # ranked_preferences: drafts closer than this to the references in F1 teach nothing


def ranked_preferences(rows: list[dict], drafts: dict[str, list[str]]) -> tuple[list[Preference], dict]:
    """(preferences, counts) between the rewriter's own drafts of each prompt of `rows` (one side of the split).

    Each draft is scored by its content-word F1 (prompts.faults.ref_f1) against the row's references, the mean over
    those it has. chosen: the best-scored draft in which no detector sees an invented person, a sound, smell or taste,
    or an unasked camera move, and which keeps the prompt's content words; rejected: the worst-scored draft. Both are
    the model's own writing, of about the same length, so a pair differs in what the drafts say about the scene
    rather than in register or length. Pairs closer than MIN_RANK_GAP are left out; a prompt gives one pair at most.
    """
    counts: Counter = Counter()
    out, seen = [], set()
    for row in rows:
        if row["prompt"] in seen:
            counts["prompt seen before"] += 1
            continue
        seen.add(row["prompt"])
        texts = list(dict.fromkeys(drafts.get(row["prompt"], [])))  # distinct, in order
        references = [row[k] for k in REFERENCES if row.get(k)]
        if not references:
            counts["no reference"] += 1
            continue
        if len(texts) < 2:
            counts["one distinct draft" if texts else "no draft"] += 1
            continue
        scored = sorted(((sum(ref_f1(t, r) for r in references) / len(references), t) for t in texts), reverse=True)
        faults = {t: _draft_faults(row["prompt"], t) for t in texts}
        clean = [(score, t) for score, t in scored if not faults[t]]
        if not clean:
            counts["no clean draft"] += 1
            continue
        (best, chosen), (worst, rejected) = clean[0], scored[-1]
        if chosen == rejected:
            counts["only the worst draft is clean"] += 1
            continue
        if best - worst < MIN_RANK_GAP:
            counts[f"drafts within {MIN_RANK_GAP} of each other"] += 1
            continue
        counts.update(f"rejected has: {f}" for f in faults[rejected])
        out.append(Preference(row["prompt"], chosen, rejected, tuple(faults[rejected]), row["dimension"]))
    counts["preferences"] = len(out)
    return out, dict(sorted(counts.items()))


def _draft_faults(prompt: str, draft: str) -> list[str]:
    """What the detectors and the words check see in a draft of `prompt`."""
    found = [name for name, check in (("invented people", invented_people), ("sound, smell or taste", senses),
                                      ("unasked camera move", camera_moves)) if check(prompt, draft)]  # fmt: skip
    if missing_words(prompt, draft):
        found.append("loses a content word")
    return found
