"""The two command lines, run as users run them (subprocesses)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args, stdin=None, outputs: Path | None = None):
    """`python -m ARGS`; runs are recorded in `outputs` (RR_OUTPUTS), never in the checkout's outputs folder."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    if outputs is not None:
        env["RR_OUTPUTS"] = str(outputs)
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def test_prompts_rewrite_jsonl_from_stdin():
    proc = run("prompts", "rewrite", "--rewriter", "tiny-random", "--target", "tiny-random", "--seed", "3", "--jsonl",
               stdin="a red ball\n\na blue box\n")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["prompt"] for r in rows] == ["a red ball", "a blue box"]
    for r in rows:
        assert {"prompt", "rewritten", "rewriter", "target", "seed", "tokens", "seconds", "fallback"} <= set(r)
        assert r["rewriter"] == "tiny-random" and r["target"] == "tiny-random" and r["seed"] == 3
        assert r["tokens"] > 0 and (r["fallback"] is None or isinstance(r["fallback"], str))


def test_pipeline_generate_writes_video_and_sidecar_and_refuses_overwrite(tmp_path):
    from pipeline.gallery import DB_NAME, Gallery

    out, outputs = tmp_path / "elsewhere" / "clip.mp4", tmp_path / "outputs"
    args = ("pipeline", "generate", "a red ball", "--rewriter", "none", "--video", "tiny-random",
            "--seed", "5", "--steps", "2", "--frames", "5", "--out", str(out))
    proc = run(*args, outputs=outputs)
    assert proc.returncode == 0, proc.stderr
    sidecar = Path(proc.stdout.strip().splitlines()[-1])
    assert sidecar == out.with_suffix(".json") and out.stat().st_size > 0
    record = json.loads(sidecar.read_text())
    assert record["seed"] == 5 and record["settings"]["num_frames"] == 5 and record["rewrite"]["rewriter"] is None
    [row] = Gallery(outputs).list()  # in the app's gallery, not in a database beside the clip
    assert row.status == "completed" and row.files["video"] == str(out) and not (out.parent / DB_NAME).exists()

    before = out.read_bytes()
    again = run(*args, outputs=outputs)
    assert again.returncode != 0 and "exists" in again.stderr
    assert out.read_bytes() == before


def test_pipeline_generate_reports_bad_settings_without_traceback(tmp_path):
    proc = run("pipeline", "generate", "a red ball", "--rewriter", "none", "--video", "tiny-random",
               "--frames", "6", "--out", str(tmp_path / "x.mp4"), outputs=tmp_path / "outputs")
    assert proc.returncode == 2 and "4k+1" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    proc = run("pipeline", "generate", "a red ball", "--video", "tiny-random", "--image", str(bad))
    assert proc.returncode == 2 and "not a readable image" in proc.stderr and "Traceback" not in proc.stderr


def test_pipeline_compare_writes_both_videos_one_sidecar_and_a_gallery_row(tmp_path):
    from pipeline.gallery import Gallery

    stem = tmp_path / "pair"
    rewritten = "A red ball rolls slowly across a wooden table in warm afternoon light."
    args = ("pipeline", "compare", "a red ball", "--rewriter", "none", "--rewritten", rewritten, "--video", "tiny-random",
            "--seed", "6", "--steps", "1", "--frames", "5", "--out", str(stem))
    proc = run(*args, "--outputs", str(tmp_path / "outputs"))
    assert proc.returncode == 0, proc.stderr
    sidecar = Path(proc.stdout.strip().splitlines()[-1])
    assert sidecar == tmp_path / "pair.json"
    record = json.loads(sidecar.read_text())
    assert record["videos"] == {"raw": "pair.raw.mp4", "rewritten": "pair.rewritten.mp4"} and record["seed"] == 6
    assert record["runs"]["rewritten"]["prompt_used"] == rewritten and record["settings"]["num_frames"] == 5
    for name in record["videos"].values():
        assert (tmp_path / name).stat().st_size > 0
    [row] = Gallery(tmp_path / "outputs").list()  # recorded in the --outputs folder's gallery
    assert (row.kind, row.status, row.seed, row.rewritten) == ("compare", "completed", 6, rewritten)

    before = (tmp_path / "pair.raw.mp4").read_bytes()
    again = run(*args, "--outputs", str(tmp_path / "outputs"))
    assert again.returncode != 0 and "exists" in again.stderr
    assert (tmp_path / "pair.raw.mp4").read_bytes() == before


def test_pipeline_generate_no_record_writes_the_video_and_no_gallery(tmp_path):
    from pipeline.gallery import DB_NAME

    outputs = tmp_path / "outputs"
    proc = run("pipeline", "generate", "a red ball", "--rewriter", "none", "--video", "tiny-random", "--steps", "1",
               "--frames", "5", "--no-record", outputs=outputs)
    assert proc.returncode == 0, proc.stderr
    sidecar = Path(proc.stdout.strip().splitlines()[-1])
    assert sidecar.parent == outputs and sidecar.with_suffix(".mp4").stat().st_size > 0
    assert not list(tmp_path.rglob(DB_NAME)) and json.loads(sidecar.read_text())["run_id"] is None


def test_pipeline_compare_reports_usage_errors_without_traceback(tmp_path):
    proc = run("pipeline", "compare", "a red ball", "--rewriter", "none", "--video", "tiny-random",
               "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "needs a rewrite" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("pipeline", "compare", "a red ball", "--video", "tiny-random", "--out", str(tmp_path / "x.mp4"))
    assert proc.returncode == 2 and "stem" in proc.stderr and "Traceback" not in proc.stderr
