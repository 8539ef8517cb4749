"""Benchmarks run end to end on tiny models and print one JSON line (smoke tests, no timing asserts)."""

import json


def test_rewriter_benchmark_prints_one_json_line(capsys, tmp_path):
    from benchmarks.rewriter import main

    data = str(tmp_path / "none.jsonl")
    main(
        [
            "--rewriter",
            "tiny-random",
            "--target",
            "tiny-random",
            "--prompts",
            "2",
            "--data",
            data,
            "--threads",
            "1",
            "--drafts",
            "2",
        ]
    )
    line = capsys.readouterr().out.strip().splitlines()[-1]
    report = json.loads(line)
    assert set(report["results"]) == {"shipped", "threads=1", "drafts=2"}
    entry = report["results"]["shipped"]
    assert report["prompts"] == 2 and entry["load_s"] > 0 and entry["seconds_per_rewrite"] > 0
    assert entry["first_token_s"] >= entry["load_s"] and entry["decode_tokens_per_s"] > 0
    assert 0.0 <= entry["fallback"] <= 1.0
    assert report["ratios"]["shipped/threads=1"]["decode_tokens_per_s"] > 0


def test_pipeline_benchmark_prints_one_json_line(capsys):
    from benchmarks.pipeline import main

    main(["--runs", "1", "--steps", "1", "--frames", "5", "--height", "32", "--width", "32"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["ours_median_s"] > 0 and report["bare_median_s"] > 0
    ours, bare = report["ours_median_s"], report["bare_median_s"]
    # Each figure is rounded to 4 decimals, so the ratio of the rounded medians can be off by
    # that rounding carried through the division, plus the ratio's own rounding.
    slack = 5e-5 / (bare - 5e-5) * (1 + ours / bare) + 5e-5
    assert abs(report["ratio"] - ours / bare) <= slack
