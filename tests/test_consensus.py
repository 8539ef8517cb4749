"""Consensus selection over rewrite_eval runs at several seeds (benchmarks.consensus), on synthetic run files."""

import json

import pytest

from benchmarks.consensus import consensus, load_runs, main

PROMPT = "a fox in the snow"
AGREE = "A red fox trots through deep fresh snow at dawn, its breath misting in the cold blue light of the forest."
ALSO = "A red fox walks through deep snow at dawn in a quiet forest, cold blue light on the white ground."
ODD = "A fox in the snow while a crowd of tourists cheers and music plays from a loud radio on a picnic table."


def record(text, seed, fallback=None, prompt=PROMPT):
    return {"prompt": prompt, "rewritten": text, "seed": seed, "fallback": fallback, "target": "wan2.1-t2v-1.3b",
            "words": len(text.split()), "dimension": "user"}  # fmt: skip


def test_consensus_keeps_the_draft_the_others_agree_with():
    assert consensus([record(ODD, 0), record(AGREE, 1), record(ALSO, 2)])["seed"] in (1, 2)
    # a fallback is no candidate; with one usable draft left it is kept
    assert consensus([record(PROMPT, 0, "too short"), record(ODD, 1)])["seed"] == 1
    assert consensus([record(PROMPT, 0, "too short"), record(PROMPT, 1, "too short")])["seed"] == 0


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_runs_report_each_seed_and_the_consensus(tmp_path, capsys):
    other = "a kite over a beach"
    runs = [
        write(tmp_path / "s0.jsonl", [record(ODD, 0), record(other + ", wind", 0, prompt=other)]),
        write(tmp_path / "s1.jsonl", [record(AGREE, 1), record(other + ", sun", 1, prompt=other)]),
        write(tmp_path / "s2.jsonl", [record(ALSO, 2)]),  # the kite is not in every run: left out
    ]
    assert list(load_runs(runs)) == [PROMPT]
    data = write(tmp_path / "data.jsonl", [{"prompt": PROMPT, "dimension": "scene", "reference_gpt4": AGREE}])
    picks = tmp_path / "picks.jsonl"
    main([*map(str, runs), "--data", str(data), "--picks", str(picks)])
    report = json.loads(capsys.readouterr().out)
    assert report["prompts"] == 1 and report["with_reference"] == 1
    s0, s1 = report["runs"][str(runs[0])], report["runs"][str(runs[1])]
    assert s1["ref_f1"] == 1.0 and s0["ref_f1"] < 0.5 and s0["invented_people"] == 1.0
    assert report["consensus"]["3"]["ref_f1"] > s0["ref_f1"]
    assert json.loads(picks.read_text())["seed"] in (1, 2)


def test_bad_runs_get_a_message(tmp_path, capsys):
    one = write(tmp_path / "one.jsonl", [record(AGREE, 0)])
    with pytest.raises(SystemExit):
        main([str(one)])
    assert "two runs or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(one), str(tmp_path / "missing.jsonl")])
    assert "no such run file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(one), str(one)])
    assert "given twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(one), str(write(tmp_path / "two.jsonl", [record(ALSO, 1)])), "--data", str(tmp_path / "no.jsonl")])
    assert "no such data file" in capsys.readouterr().err
    # not a rewrite_eval run: lines that are no JSON, or JSON without a rewrite (the --data file by mistake)
    (tmp_path / "bad.jsonl").write_text('not json\n[1, 2]\n{"prompt": "a fox", "reference_gpt4": "A fox."}\n')
    with pytest.raises(SystemExit, match="no rewrite_eval --out record"):
        main([str(one), str(tmp_path / "bad.jsonl")])
    # a line cut short by a killed run is skipped, the rest is read
    cut = write(tmp_path / "cut.jsonl", [record(ALSO, 1)])
    cut.write_text(cut.read_text() + '{"prompt": "a fox in the sn')
    main([str(one), str(cut)])
    assert json.loads(capsys.readouterr().out)["prompts"] == 1
