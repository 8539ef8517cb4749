"""The evaluation harness on synthetic rows (tests never read ../shared)."""

import json

import pytest

from benchmarks.rewrite_eval import attribute_kept, main, sample, score
from pipeline.loading import rewrite_target
from pipeline.presets import get_video_spec
from prompts.preservation import stems


def rows():
    ref = "A red ball bounces on a wooden floor in warm light, the camera following it slowly. " * 3
    return [
        {
            "prompt": f"a red ball number {i}",
            "dimension": d,
            "attributes": a,
            "reference_gpt4": ref,
            "reference_qwen2.5_3b_wan": ref if i % 2 else None,
        }
        for i, (d, a) in enumerate(
            [
                ("color", {"color_en": "red"}),
                ("scene", None),
                ("scene", None),
                ("object_class", {"object_en": "ball"}),
                ("category:food", None),
            ]
        )
    ]


def test_sample_is_stratified_seeded_and_keeps_attribute_rows():
    data = rows()
    picked = sample(data, 3, seed=1)
    assert picked == sample(data, 3, seed=1)
    assert {r["dimension"] for r in picked[:3]} == {"category:food", "color", "object_class"}
    assert all(r in picked for r in data if r["attributes"])


def test_attribute_phrases_match_by_stems_in_order():
    assert attribute_kept("Van Gogh style", stems("painted in Van Gogh style with bold strokes"))
    assert not attribute_kept("Van Gogh style", stems("a Gogh van style"))
    assert attribute_kept("red", stems("Red balls"))


def test_score_counts_defects():
    target = rewrite_target(get_video_spec("tiny-random"))
    s = score("a red ball", "Sure! Here is a blue ball.", {"color_en": "red"}, target)
    assert not s["clean"] and not s["keep_all"] and s["attr"] == [False] and not s["in_range"]


METRICS = {
    "words_median", "in_range", "over_limit", "clean", "keep_all", "keep_mean", "attr", "loops", "sim_raw",
    "sim_ref", "fallback", "seconds_per_rewrite", "tokens_per_s", "tokens_exact",
    "invented_people", "senses", "camera_moves", "the_openers", "starts_verbatim", "ref_f1",
}  # fmt: skip


@pytest.mark.parametrize("local_tokenizer", [True, False], ids=["exact", "estimated"])
def test_harness_prints_metrics_and_references(tmp_path, capsys, monkeypatch, local_tokenizer):
    import pipeline.loading

    if not local_tokenizer:  # the target's tokenizer is not on this machine: token counts are estimates
        monkeypatch.setattr(pipeline.loading, "local_tokenizer", lambda spec: None)
    monkeypatch.setattr(score, "counters", {})  # no counter kept from an earlier run
    data = tmp_path / "dev.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows()))
    main(["--rewriter", "tiny-random", "--target", "tiny-random", "--limit", "3", "--data", str(data)])
    out = capsys.readouterr().out.splitlines()
    report = json.loads(out[0])
    assert METRICS <= set(report), METRICS - set(report)
    assert report["tokens_exact"] is local_tokenizer
    assert report["rows"] == 3 and 0 <= report["keep_all"] <= 1 and 0 <= report["over_limit"] <= 1
    assert set(report["references"]) == {"gpt4", "qwen2.5-3b"} and report["references"]["gpt4"]["n"] == 1
    assert any(line.startswith("color") for line in out)


def test_harness_writes_as_it_goes_and_resumes(tmp_path, capsys, monkeypatch):
    from prompts.rewriter import Rewriter

    data, out = tmp_path / "dev.jsonl", tmp_path / "run.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows()))
    argv = [
        "--rewriter",
        "tiny-random",
        "--target",
        "tiny-random",
        "--limit",
        "3",
        "--data",
        str(data),
        "--out",
        str(out),
    ]
    main(argv)
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    lines = out.read_text().splitlines()
    assert len(lines) == first["rows"]
    out.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # a run killed mid-line
    calls = []
    real = Rewriter.rewrite
    monkeypatch.setattr(Rewriter, "rewrite", lambda self, *a, **k: calls.append(a[0]) or real(self, *a, **k))
    with pytest.raises(SystemExit, match="--resume"):  # --out exists: runs are not mixed by accident
        main(argv)
    main([*argv, "--resume"])
    again = json.loads(capsys.readouterr().out.splitlines()[0])
    assert len(calls) == 1 and again["keep_all"] == first["keep_all"] and again["rows"] == first["rows"]
    records = [json.loads(line) for line in out.read_text().splitlines()[-1:]]  # the redone row, on its own line
    assert records[0]["prompt"] == calls[0]


def test_shards_split_the_rewrites_and_resume_scores_their_joined_files(tmp_path, capsys, monkeypatch):
    from prompts.rewriter import Rewriter

    data = tmp_path / "dev.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows()))
    argv = ["--rewriter", "tiny-random", "--target", "tiny-random", "--limit", "3", "--data", str(data)]
    parts = [tmp_path / f"part{k}.jsonl" for k in range(2)]
    for k, part in enumerate(parts):
        main([*argv, "--out", str(part), "--shard", f"{k}/2"])
    assert "shard 1/2" in capsys.readouterr().out  # no report: a shard is not the whole run
    done = [[json.loads(line)["prompt"] for line in p.read_text().splitlines()] for p in parts]
    assert done[0] and done[1] and not set(done[0]) & set(done[1])
    joined = tmp_path / "run.jsonl"
    joined.write_text(parts[0].read_text() + parts[1].read_text())
    calls = []
    monkeypatch.setattr(Rewriter, "rewrite", lambda self, *a, **k: calls.append(a[0]))
    main([*argv, "--out", str(joined), "--resume"])
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert calls == [] and report["rows"] == len(done[0]) + len(done[1])
    with pytest.raises(SystemExit):
        main([*argv, "--shard", "2/2", "--out", str(tmp_path / "x.jsonl")])


def test_drafts_runs_are_named_apart_so_resume_never_mixes_them(tmp_path, capsys, monkeypatch):
    from prompts.rewriter import Rewriter

    data, out = tmp_path / "dev.jsonl", tmp_path / "run.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows()))
    argv = ["--rewriter", "tiny-random", "--target", "tiny-random", "--limit", "3", "--data", str(data)]
    main([*argv, "--out", str(out), "--drafts", "2"])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and {r["rewriter"] for r in records} == {"tiny-random+drafts=2"}
    capsys.readouterr()
    calls = []
    real = Rewriter.rewrite
    monkeypatch.setattr(Rewriter, "rewrite", lambda self, *a, **k: calls.append(a[0]) or real(self, *a, **k))
    main([*argv, "--out", str(out), "--resume"])  # one draft: nothing of the two-draft run is reused
    assert len(calls) == len(records)
    calls.clear()
    main([*argv, "--out", str(out), "--resume", "--drafts", "2"])
    assert calls == []
    with pytest.raises(SystemExit):
        main([*argv, "--drafts", "0"])


def test_validation_split_is_stratified_fixed_by_the_prompt_and_never_shares_a_prompt():
    from prompts.training.splits import split

    data = [{"prompt": f"prompt {d} {i}", "dimension": d} for d in ("a", "b") for i in range(40)]
    data.append({"prompt": "Prompt  a 1", "dimension": "b"})  # a prompt listed under two dimensions
    train, validation = split(data)
    assert len(train) + len(validation) == len(data)
    for d in ("a", "b"):
        assert sum(r["dimension"] == d for r in validation) >= 0.15 * sum(r["dimension"] == d for r in data)
    key = lambda r: " ".join(r["prompt"].lower().split())  # noqa: E731
    assert not {key(r) for r in train} & {key(r) for r in validation}
    assert split(list(reversed(data)))[1] == list(reversed(validation))  # the order of the file does not matter
    assert split(data + [{"prompt": "new", "dimension": "c"}])[1][: len(validation)] == validation


def test_user_prompts_file_has_40_prompts_under_kinds():
    from benchmarks.rewrite_eval import USER_PROMPTS, load_user_prompts

    prompts = load_user_prompts(USER_PROMPTS)
    assert len(prompts) == 40 and len({p["prompt"] for p in prompts}) == 40
    assert {"camera", "look", "count", "quoted text", "action", "product", "vague"} == {p["dimension"] for p in prompts}
    assert all(p["reference_gpt4"] is None and p["attributes"] is None for p in prompts)


def test_score_reports_the_faults_a_reader_sees():
    target = rewrite_target(get_video_spec("tiny-random"))
    s = score(
        "a red ball", "A red ball, camera pans left. The smell of rubber. A girl kicks it.", None, target, "A red ball."
    )
    assert s["invented_people"] == ["girl"] and s["senses"] == ["smell"] and s["camera_moves"] == ["camera pans"]
    assert s["shot_types"] == [] and score("a red ball", "A red ball. Medium shot.", None, target)["shot_types"]
    assert s["starts_verbatim"] and (s["the_openers"], s["later_sentences"]) == (1, 2) and 0 < s["ref_f1"] < 1
    assert score("a red ball", "A red ball.", None, target)["ref_f1"] is None


def test_validation_rows_with_both_references_report_ref_f1_and_faults_for_ours_and_qwen(tmp_path, capsys):
    from prompts.training.splits import split

    data = tmp_path / "dev.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows()))
    argv = ["--rewriter", "tiny-random", "--target", "tiny-random", "--data", str(data), "--validation"]
    main([*argv, "--both-references"])
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    held = [r for r in split(rows())[1] if r["reference_qwen2.5_3b_wan"]]
    assert report["rows_from"] == "validation+both" and report["rows"] == len(held) > 0
    assert 0 <= report["ref_f1"] <= 1 and report["ours_on_reference_rows"]["n"] == len(held)
    qwen, gpt4 = report["references"]["qwen2.5-3b"], report["references"]["gpt4"]
    assert qwen["ref_f1"] == 1.0  # the synthetic Qwen rewrite is the GPT-4 one
    assert "ref_f1" not in gpt4
    assert {"invented_people", "senses", "camera_moves", "shot_types", "the_openers"} <= set(gpt4)
    assert gpt4["camera_moves"] == 1.0  # "the camera following it" in a prompt without camera language


def test_user_prompts_run_without_references(tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a comment\n[camera]\ndrone shot over a lake\n\n[vague]\nloneliness\n")
    main(["--rewriter", "tiny-random", "--target", "tiny-random", "--prompts", str(prompts)])
    out = capsys.readouterr().out.splitlines()
    report = json.loads(out[0])
    assert report["rows_from"] == "prompts:prompts.txt" and report["rows"] == 2
    assert "sim_ref" not in report and "ref_f1" not in report and report["references"] == {"gpt4": {}, "qwen2.5-3b": {}}
    assert {line.split()[0] for line in out[2:]} == {"dimension", "camera", "vague"}


def test_a_prompts_file_row_that_is_a_data_row_is_scored_against_its_references(tmp_path, capsys):
    data = tmp_path / "dev.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows()))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("[tuning]\na red ball number 1\na red ball number 2\ndrone shot over a lake\n")
    main(["--rewriter", "tiny-random", "--target", "tiny-random", "--prompts", str(prompts), "--data", str(data)])
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert report["rows"] == 3 and 0 <= report["ref_f1"] <= 1
    assert report["ours_on_reference_rows"]["n"] == 1  # only "number 1" has a Qwen2.5-3B rewrite too
    assert report["references"]["qwen2.5-3b"]["ref_f1"] == 1.0
    main(["--rewriter", "tiny-random", "--target", "tiny-random", "--prompts", str(prompts), "--data", str(tmp_path / "none")])
    assert "ref_f1" not in json.loads(capsys.readouterr().out.splitlines()[0])  # without the data: no references


def test_temperature_reaches_the_tuned_path_too(tmp_path, monkeypatch):
    from prompts.rewriter import Rewriter

    specs = []

    def load(spec, device):
        specs.append(spec)
        raise SystemExit("loaded")

    monkeypatch.setattr(Rewriter, "load", load)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("[any]\na red fox\n")
    with pytest.raises(SystemExit):
        main(["--rewriter", "gemma-3-270m", "--prompts", str(prompts), "--temperature", "0.3"])
    assert specs[0].temperature == 0.3 and specs[0].tuned_spec("any-adapter").temperature == 0.3
    with pytest.raises(SystemExit):
        main(["--rewriter", "gemma-3-270m", "--prompts", str(prompts), "--temperature", "0"])
    assert len(specs) == 1  # refused before loading anything
