"""Smoke test of the rewriter's LoRA training on the tiny model: 2 steps, -100 masking, checkpoint, stop and resume."""

import json
import os
import signal

import pytest
import torch

from prompts.training import lora
from prompts.training.pairs import Pair, clean_target

TARGET = (
    "A red fox runs through a snowy forest at dawn, soft golden light falling across the snow. "
    "Mist drifts between the dark trees while the fox leaves small tracks behind it."
)
PAIRS = [
    Pair("a red fox in the snow", TARGET, "reference_qwen2.5_3b_wan", "animal"),
    Pair(
        "a cup of coffee on a table",
        "A steaming cup of coffee sits on a wooden table beside an open book.",
        "x",
        "food",
    ),
    Pair(
        "waves on a beach", "Waves roll onto the sandy beach under a pale blue sky, clouds drifting by.", "x", "scenery"
    ),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny causal LM's folder, built once through the app's tiny-model builder."""
    from runtime.tiny import ensure_tiny

    return ensure_tiny("lm", tmp_path_factory.mktemp("cache"))


def _load(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    fox = tokenizer(" fox", add_special_tokens=False)["input_ids"]
    ids = [i for i in range(len(tokenizer)) if i not in fox]  # a subset without "fox": its target tokens are masked
    return model, tokenizer, ids, fox


def _config(**kwargs):
    return lora.TrainConfig(batch_size=2, max_steps=2, rank=4, alpha=8, checkpoint_every=1, eval_every=100, **kwargs)


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_out_of_subset_targets_are_masked_and_the_loss_stays_finite(tiny):
    model, tokenizer, ids, fox = _load(tiny)
    loss_fn = lora.SubsetLoss(model.get_output_embeddings().weight, ids)
    tokens, start = lora.encode(tokenizer, PAIRS[0].prompt, PAIRS[0].target)
    _, mask, labels = lora.collate([(tokens, start)], tokenizer.pad_token_id)
    mapped = loss_fn.labels(labels)
    assert (labels[0, : start - 1] == lora.IGNORE).all()  # no loss on the idea
    assert int(((labels == fox[0]) & (mapped == lora.IGNORE)).sum()) == tokens[start:].count(fox[0]) > 0
    assert mapped.max() < len(ids)
    hidden = torch.randn(*labels.shape, model.config.hidden_size)
    loss, scored = loss_fn(hidden, mapped)
    assert torch.isfinite(loss) and scored == int((mapped != lora.IGNORE).sum())


def test_two_steps_log_checkpoint_and_resume_to_the_same_adapter(tiny, tmp_path):
    # 1. Two steps in one go
    model, tokenizer, ids, _ = _load(tiny)
    straight = lora.train(model, tokenizer, ids, PAIRS, PAIRS[:2], tmp_path / "a", _config())
    records = _records(tmp_path / "a")
    assert records[0]["event"] == "start" and records[0]["masked_out_of_subset"] > 0
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert records[-1]["event"] == "done" and records[-1]["val_loss"] > 0
    assert (tmp_path / "a" / "checkpoint" / "adapter_model.safetensors").exists()

    # 2. A stop signal in step 1 ends the run after it, with a checkpoint; running again resumes at step 2
    model, tokenizer, ids, _ = _load(tiny)
    original = lora.batch_loss

    def interrupted(*args):
        if torch.is_grad_enabled():  # a training step, not the step-0 validation
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args)

    lora.batch_loss = interrupted
    try:
        lora.train(model, tokenizer, ids, PAIRS, PAIRS[:2], tmp_path / "b", _config())
    finally:
        lora.batch_loss = original
    assert _records(tmp_path / "b")[-1] == {"step": 1, "event": "stopped"}
    model, tokenizer, ids, _ = _load(tiny)
    resumed = lora.train(model, tokenizer, ids, PAIRS, PAIRS[:2], tmp_path / "b", _config())
    assert [r["step"] for r in _records(tmp_path / "b") if "loss" in r] == [1, 2]
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters(), strict=True):
        if "lora_" in name:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        else:
            assert not a.requires_grad  # the embedding and every base weight stay frozen

    # 3. The adapter and the log are exported for committing
    lora.export(tmp_path / "b", tmp_path / "adapter")
    assert {p.name for p in (tmp_path / "adapter").iterdir()} == {
        "adapter_model.safetensors",
        "adapter_config.json",
        "train_log.jsonl",
    }
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == lora.BASE_MODEL and config["r"] == 4

    # 4. Running a finished run again adds nothing to its log
    model, tokenizer, ids, _ = _load(tiny)
    before = _records(tmp_path / "b")
    lora.train(model, tokenizer, ids, PAIRS, PAIRS[:2], tmp_path / "b", _config())
    assert _records(tmp_path / "b") == before


def test_cleaning_removes_invented_people_and_sounds_and_drops_targets_that_lose_the_prompts_words():
    counts = __import__("collections").Counter()
    reference = (
        TARGET + " A young woman watches from a cabin window. The crunch of snow sounds under its paws. "
        "Snowflakes settle on its thick coat and the pale sky brightens slowly over the quiet hills, "
        "where frozen pines stand in long rows under a thin layer of fresh powder."
    )
    target, why = clean_target("a red fox in the snow", reference, counts)
    assert why == "" and "woman" not in target and "sounds" not in target and target.startswith(TARGET)
    assert counts["sentences removed: invented people"] == 1 and counts["sentences removed: sound, smell or taste"] == 1
    assert clean_target("a red fox in the snow", TARGET, counts)[1] == "under 50 words after cleaning"
    assert clean_target("a blue whale", reference, counts)[1] == "loses a content word of the prompt"


SNOW = (
    " Snowflakes settle on its thick coat and the pale sky brightens slowly over the quiet hills, "
    "where frozen pines stand in long rows under a thin layer of fresh powder."
)


def test_a_preference_sets_the_cleaned_reference_against_it_with_its_faults_in_place_and_the_same_ending():
    from prompts.training.pairs import preference

    reference = TARGET + " They turn to face the viewer, their eyes calm. The crunch of snow sounds under its paws." + SNOW
    chosen, rejected, faults = preference("a red fox in the snow", reference + " A man sings loudly.")
    assert chosen == TARGET + SNOW  # a person's trace ("They turn to face the viewer") goes too, not only named people
    assert rejected == reference  # the fault after the chosen's last sentence is left out: both end alike
    assert faults == ("a person's traces", "sound, smell or taste")
    assert preference("a red fox in the snow", TARGET + SNOW) == "nothing to remove"
    assert preference("a red fox in the snow", TARGET + SNOW + " A man sings.") == "no faulty sentence within the chosen"
    # a prompt with a person keeps "they" (only the sound goes); one whose words the chosen would lose gives none
    hikers = TARGET.replace("fox", "hikers") + " They turn to face the viewer. The crunch of snow sounds loud." + SNOW
    chosen, rejected, faults = preference("hikers in the snow", hikers)
    assert "They turn" in chosen and faults == ("sound, smell or taste",)
    assert preference("a blue whale", reference) == "chosen loses a content word of the prompt"


def test_two_preference_steps_start_from_the_adapter_as_reference_and_move_the_margin(tiny, tmp_path):
    from peft import PeftModel

    from prompts.training import preference
    from prompts.training.pairs import Preference

    # 1. An adapter to continue, from one step of the first training
    model, tokenizer, ids, _ = _load(tiny)
    one_step = lora.TrainConfig(batch_size=2, max_steps=1, rank=4, alpha=8, eval_every=100)
    lora.train(model, tokenizer, ids, PAIRS, PAIRS[:2], tmp_path / "sft", one_step)
    lora.export(tmp_path / "sft", tmp_path / "init")

    # 2. Two preference steps; at step 0 the policy is its own reference: margin 0, DPO loss log 2
    prefs = [Preference(p.prompt, p.target, p.target + " A man sings loudly.", ("x",), p.dimension) for p in PAIRS]
    data = {"train": prefs, "validation": prefs[:2], "validation_pairs": PAIRS[:2]}
    config = preference.PreferenceConfig(batch_size=2, max_steps=2, checkpoint_every=1, eval_every=100, lr=1e-2)

    def run(folder):
        model, tokenizer, ids, _ = _load(tiny)
        peft_model = PeftModel.from_pretrained(model, tmp_path / "init", is_trainable=True)
        return preference.train(peft_model, tokenizer, ids, data, folder, config)

    run(tmp_path / "dpo")
    records = _records(tmp_path / "dpo")
    assert records[0]["event"] == "start" and records[0]["train_preferences"] == 3
    assert records[1]["val_margin"] == 0 and records[1]["val_dpo"] == pytest.approx(0.6931, abs=1e-3)
    assert [r["step"] for r in records if "dpo" in r] == [1, 2]
    assert records[-1]["event"] == "done" and records[-1]["val_margin"] > 0 and records[-1]["val_loss"] > 0
    assert (tmp_path / "dpo" / "reference.pt").exists()

    # 3. Running it again adds nothing; the adapter exports like the first training's
    stored = torch.load(tmp_path / "dpo" / "reference.pt")
    run(tmp_path / "dpo")
    assert _records(tmp_path / "dpo") == records
    assert torch.equal(torch.load(tmp_path / "dpo" / "reference.pt")["train"], stored["train"])

    # 4. Other pairs in the same folder: the stored reference is not reused for them
    data["train"] = prefs[::-1]
    run(tmp_path / "dpo")
    again = torch.load(tmp_path / "dpo" / "reference.pt")
    assert again["key"] != stored["key"] and torch.allclose(again["train"], stored["train"].flip(0))
    lora.export(tmp_path / "dpo", tmp_path / "adapter")
    config_json = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config_json["base_model_name_or_path"] == lora.BASE_MODEL and config_json["r"] == 4


def test_tuning_prompts_come_from_the_training_split_and_from_no_training_pair():
    from benchmarks.tuning_prompts import tuning_prompts
    from prompts.training.pairs import build_pairs, preference_pairs
    from prompts.training.splits import split

    long = TARGET + SNOW  # a reference that survives cleaning for "a red fox in the snow ..."
    words = ["fox", "snow", "forest", "dawn", "mist", "trees", "tracks", "coat", "hills", "pines"]
    prompts = [f"{a} and {b}" for k, a in enumerate(words) for b in words[k + 1 :]][:30]
    rows = [
        {"prompt": prompt, "dimension": f"d{i % 3}", "reference_gpt4": long if i % 2 else ""}
        for i, prompt in enumerate(prompts)
    ]
    picked = tuning_prompts(rows, 8, seed=7)
    train_rows, validation_rows = split(rows)
    in_pairs = {p.prompt for p in build_pairs(rows)[0]} | {p.prompt for p in preference_pairs(train_rows)[0]}
    assert len(picked) == 8 and len({p for _, p in picked}) == 8
    assert not {p for _, p in picked} & ({r["prompt"] for r in validation_rows} | in_pairs)
    assert in_pairs  # the rows with a reference made pairs, and none of them was picked
    assert {d for d, _ in picked} == {"d0", "d1", "d2"}  # drawn across the dimensions
    assert tuning_prompts(rows, 8, seed=7) == picked


def test_self_play_prefers_each_pairs_target_over_the_rewriters_own_draft_and_records_what_the_draft_gets_wrong(
    tmp_path,
):
    from prompts.training.pairs import draft_preferences, load_drafts

    pairs = [Pair("a red fox in the snow", TARGET + SNOW, "reference_gpt4", "d0"),
             Pair("a blue whale", "A blue whale glides.", "reference_gpt4", "d1"),
             Pair("a fox and a kite", "A fox chases a kite.", "reference_gpt4", "d2")]  # fmt: skip
    rows = [
        {"prompt": "a red fox in the snow", "rewritten": "A young girl hears a red fox howl in the snow.",
         "fallback": None},  # fmt: skip
        {"prompt": "a blue whale", "rewritten": "a blue whale", "fallback": "kept as written"},
        {"prompt": "a fox and a kite", "rewritten": "A fox chases a kite.", "fallback": None},
    ]
    path = tmp_path / "drafts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    drafts = load_drafts([path])
    assert set(drafts) == {"a red fox in the snow", "a fox and a kite"}  # a prompt kept as written is no draft

    prefs, counts = draft_preferences(pairs, drafts)
    assert [(p.prompt, p.chosen, p.rejected) for p in prefs] == [
        ("a red fox in the snow", TARGET + SNOW, "A young girl hears a red fox howl in the snow.")
    ]
    assert prefs[0].faults == ("invented people", "sound, smell or taste")
    assert counts["no draft"] == 1 and counts["draft equals the target"] == 1 and counts["preferences"] == 1
    # a draft that loses the prompt's words is used too, and says so
    lost, _ = draft_preferences(pairs[:1], {"a red fox in the snow": "A red animal sleeps in a quiet field."})
    assert lost[0].faults == ("loses a content word",)


def test_ranked_pairs_prefer_the_own_draft_closest_to_the_references_that_no_detector_faults(tmp_path):
    from prompts.training.pairs import load_draft_runs, ranked_preferences

    prompt = "a red fox in the snow"
    close = TARGET + SNOW  # the references' own words
    close_but_loud = "A young girl hears " + TARGET  # closer than `middle`, but it invents a person and a sound
    middle = "A red fox in the snow walks past a frozen lake under grey clouds, its coat dusted with white."
    far = "A red fox in the snow, a striking image with vivid colours and a dramatic cinematic mood overall."
    whale = "A blue whale glides through deep water."
    runs = []
    for k, rows in enumerate([
        [{"prompt": prompt, "rewritten": close_but_loud, "fallback": None},
         {"prompt": "a blue whale", "rewritten": whale, "fallback": None}],
        [{"prompt": prompt, "rewritten": far, "fallback": None}],
        [{"prompt": prompt, "rewritten": middle, "fallback": None},
         {"prompt": "a blue whale", "rewritten": "a blue whale", "fallback": "kept as written"}],
        [{"prompt": prompt, "rewritten": far, "fallback": None}],
    ]):  # fmt: skip
        runs.append(tmp_path / f"s{k}.jsonl")
        runs[-1].write_text("".join(json.dumps(r) + "\n" for r in rows))
    drafts = load_draft_runs(runs)
    assert drafts == {prompt: [close_but_loud, far, middle, far], "a blue whale": [whale]}  # in order, no fallback

    rows = [{"prompt": prompt, "dimension": "d0", "reference_gpt4": close, "reference_qwen2.5_3b_wan": close},
            {"prompt": "a blue whale", "dimension": "d1", "reference_gpt4": "A blue whale glides."}]  # fmt: skip
    prefs, counts = ranked_preferences(rows, drafts)
    assert [(p.prompt, p.chosen, p.rejected) for p in prefs] == [(prompt, middle, far)]
    assert counts["preferences"] == 1 and counts["one distinct draft"] == 1
    assert ranked_preferences(rows + rows[:1], drafts)[1]["prompt seen before"] == 1  # a repeated row: one pair
    # the only clean draft is the worst-scored one: nothing to prefer it over
    assert ranked_preferences(rows[:1], {prompt: [close_but_loud, far]})[1]["only the worst draft is clean"] == 1
    # with the clean best draft among them, it is chosen; drafts that score alike teach nothing
    assert ranked_preferences(rows[:1], {prompt: [far, close]})[0][0].chosen == close
    assert ranked_preferences(rows[:1], {prompt: [far, far + " Vivid."]})[0] == []


def test_the_paired_prompts_are_every_training_pairs_prompt_and_no_validation_prompt():
    from benchmarks.tuning_prompts import paired_prompts
    from prompts.training.pairs import build_pairs
    from prompts.training.splits import split

    words = ["fox", "snow", "forest", "dawn", "mist", "trees", "tracks", "coat", "hills", "pines"]
    prompts = [f"{a} and {b}" for k, a in enumerate(words) for b in words[k + 1 :]][:30]
    rows = [{"prompt": p, "dimension": "d0", "reference_gpt4": TARGET + SNOW} for p in prompts]
    picked = paired_prompts(rows)
    assert [p for _, p in picked] == [p.prompt for p in build_pairs(rows)[0]] and picked
    assert not {p for _, p in picked} & {r["prompt"] for r in split(rows)[1]}


def test_sequence_log_probabilities_are_the_target_tokens_log_softmax_over_the_subset(tiny):
    from peft import LoraConfig, get_peft_model

    from prompts.training import preference

    model, tokenizer, ids, fox = _load(tiny)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM")).eval()
    examples = [lora.encode(tokenizer, p.prompt, p.target) for p in PAIRS]
    loss_fn = lora.SubsetLoss(model.get_output_embeddings().weight, ids)
    with torch.no_grad():
        sums, counts = preference.sequence_logps(peft_model, loss_fn, examples, tokenizer.pad_token_id)
        for row, (tokens, start) in enumerate(examples):  # one at a time, no padding, the subset's own rows
            logits = model(input_ids=torch.tensor([tokens])).logits[0, :, sorted(set(ids))]
            logps = torch.log_softmax(logits, dim=-1)
            scored = [(t - 1, sorted(set(ids)).index(tok)) for t, tok in enumerate(tokens) if t >= start and tok not in fox]
            assert counts[row] == len(scored)
            torch.testing.assert_close(sums[row], sum(logps[pos, index] for pos, index in scored), rtol=1e-4, atol=1e-3)


def test_self_play_needs_its_own_run_folder_and_adapter_folder(tmp_path, capsys):
    from prompts.training.preference import main

    drafts = tmp_path / "drafts.jsonl"
    drafts.write_text("")
    with pytest.raises(SystemExit):  # the defaults would resume the shipped run and overwrite its adapter
        main(["--drafts", str(drafts), "--data", str(tmp_path / "missing.jsonl")])
    assert "--drafts needs its own --run-dir and --adapter-out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--ranked", str(drafts), "--data", str(tmp_path / "missing.jsonl")])
    assert "--ranked needs its own --run-dir and --adapter-out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--ranked", str(drafts), "--drafts", str(drafts), "--run-dir", "r", "--adapter-out", "a"])
    assert "pass one" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--ranked", str(tmp_path / "gone.jsonl"), "--run-dir", "r", "--adapter-out", "a"])
    assert "no such drafts file" in capsys.readouterr().err


def test_each_target_comes_from_the_first_reference_in_the_chosen_order_that_survives_cleaning():
    from prompts.training.pairs import PREFER, build_pairs, preference_pairs

    arctic = "An arctic fox pads across the snow at dawn, soft golden light on its fur."
    breath = " Its breath rises in small white clouds as it pauses beside a fallen log."
    gpt4 = arctic + " A young woman watches it from a cabin window." + SNOW + breath
    qwen = TARGET + " A man sings loudly." + SNOW
    words = ["fox", "snow", "dawn", "golden", "light", "coat", "pale", "hills", "pines", "powder"]
    prompts = [f"{a} and {b}" for k, a in enumerate(words) for b in words[k + 1 :]]  # words both references keep
    rows = [{"prompt": p, "dimension": "d0", "reference_gpt4": gpt4, "reference_qwen2.5_3b_wan": qwen} for p in prompts]
    rows.append({"prompt": "a fox in the snow", "dimension": "d0", "reference_gpt4": arctic + SNOW + breath,
                 "reference_qwen2.5_3b_wan": None})  # fmt: skip
    for name, column, opening in (("qwen2.5-3b", "reference_qwen2.5_3b_wan", "A red fox"), ("gpt4", "reference_gpt4", "An arctic")):
        train, validation, report = build_pairs(rows, PREFER[name])
        assert len(train) + len(validation) == len(rows) and report["train"][f"target from {column}"] >= 30
        assert {p.source for p in train + validation if p.prompt != "a fox in the snow"} == {column}
        assert all(p.target.startswith(opening) for p in train + validation if p.prompt != "a fox in the snow")
        prefs, _ = preference_pairs(rows, PREFER[name])
        assert len(prefs) == len(rows) - 1 and all(p.chosen.startswith(opening) for p in prefs)
        # a prompt with one reference gets it whatever the order
        assert [p.source for p in train + validation if p.prompt == "a fox in the snow"] == ["reference_gpt4"]


def test_with_cuts_cleaning_drops_the_sentences_that_tell_another_shot_and_only_those():
    from collections import Counter

    told = (
        TARGET + " The scene transitions to a close-up of its paws. Finally, the fox curls up under a pine."
        " The sky transitions to a deep orange as the sun climbs." + SNOW
    )
    counts = Counter()
    target, why = clean_target("a red fox in the snow", told, counts, cuts=True)
    assert why == "" and "scene transitions" not in target and "Finally" not in target
    assert "The sky transitions to a deep orange" in target  # a change of light is no cut
    assert counts["sentences removed: another shot"] == 2
    assert clean_target("a red fox in the snow", told, Counter())[0] == told  # off by default: the shipped targets


def test_with_shots_cleaning_drops_later_sentences_that_name_an_unasked_shot_type_and_only_those():
    from collections import Counter

    from prompts.training.pairs import preference

    framed = "Close-up of a red fox in the snow at dawn. " + TARGET + " Medium shot focusing on the fox's tracks." + SNOW
    counts = Counter()
    target, why = clean_target("a red fox in the snow", framed, counts, shots=True)
    assert why == "" and "Medium shot" not in target and target.endswith(SNOW.strip())
    assert target.startswith("Close-up of a red fox")  # the first sentence is kept: it carries the user's words
    assert counts["sentences removed: unasked shot type"] == 1
    # a prompt that asks for its framing keeps it; the library leaves it off unless asked (the CLI asks)
    assert "Medium shot" in clean_target("medium shot of a red fox in the snow", framed, Counter(), shots=True)[0]
    assert clean_target("a red fox in the snow", framed, Counter())[0] == framed
    # in a preference the framing sentence between the kept ones is a fault of the rejected side
    between = TARGET + " A low-angle shot looks up at the fox." + SNOW
    chosen, rejected, faults = preference("a red fox in the snow", between, shots=True)
    assert chosen == TARGET + SNOW and rejected == between and faults == ("unasked shot type",)
    assert preference("a red fox in the snow", between) == "nothing to remove"


@pytest.mark.parametrize("module", ["lora", "preference"])
def test_both_training_commands_clean_shot_types_unless_told_to_keep_them(module, monkeypatch):
    import importlib

    import prompts.training.pairs as pairs

    command = importlib.import_module(f"prompts.training.{module}")
    seen = []

    class Stop(Exception):
        pass

    def build_pairs(rows, references=pairs.REFERENCES, cuts=False, shots=False):
        seen.append(("pairs", shots))
        if module == "lora":
            raise Stop
        return [], [], {}

    def preference_pairs(rows, references=pairs.REFERENCES, shots=False):
        seen.append(("preferences", shots))
        if len(seen) == 3:  # the training split's, then the validation split's: stop before loading the model
            raise Stop
        return [], {}

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # leave this process's threads as they are
    monkeypatch.setattr(pairs, "load_rows", lambda path: [])
    monkeypatch.setattr(pairs, "build_pairs", build_pairs)
    monkeypatch.setattr(pairs, "preference_pairs", preference_pairs)
    for argv, shots in (([], True), (["--keep-shots"], False)):
        seen.clear()
        with pytest.raises(Stop):
            command.main(argv)
        assert seen and all(flag is shots for _, flag in seen), (argv, seen)
        assert len(seen) == (1 if module == "lora" else 3)
