"""The run gallery: recording, durability across restarts and crashes, concurrency, export, votes, scoping."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipeline.gallery import DB_NAME, Gallery, RunStart, private_runs
from pipeline.gallery_export import load_export

ROOT = Path(__file__).resolve().parent.parent
REWRITTEN = "A red ball rolls slowly across a wooden table in warm afternoon light."


@pytest.fixture
def engine(tiny_engine, tmp_path):
    from pipeline.engine import Engine

    return Engine(tiny_engine.video, tiny_engine.rewriter, tmp_path / "outputs")


def fake_run(gallery: Gallery, folder: Path, kind="generate", session=None, prompt="a red ball", **done) -> int:
    """A run recorded without rendering: its 'video' is a small file written before completing."""
    run_id = gallery.begin(
        RunStart(
            kind,
            prompt,
            "tiny-random",
            7,
            {"height": 64, "width": 112},
            session=session,
            rewritten=done.get("rewritten"),
        )
    )
    video = folder / f"run-{run_id}.mp4"
    video.write_bytes(b"\x00" * 16)
    files = {"raw": video, "rewritten": video.with_suffix(".b.mp4")} if kind == "compare" else {"video": video}
    for path in files.values():
        path.write_bytes(b"\x00" * 16)
    gallery.complete(
        run_id,
        files,
        prompt_used=done.get("rewritten") or prompt,
        rewritten=done.get("rewritten"),
        timings={"denoise_s": 0.5},
    )
    return run_id


def test_every_generate_is_recorded_with_prompts_settings_files_and_timings(engine):
    result = engine.generate("a red ball", rewritten=REWRITTEN, seed=5, num_inference_steps=1, session="abc")
    [run] = engine.gallery.list()
    assert (run.kind, run.status, run.seed, run.seeds) == ("generate", "completed", 5, (5,))
    assert (run.prompt, run.rewritten, run.prompt_used) == ("a red ball", REWRITTEN, REWRITTEN)
    assert run.settings["num_inference_steps"] == 1 and run.settings["height"] == engine.spec.height
    assert run.rewrite.rewriter == "edited or supplied by the user" and "denoise_s" in run.timings
    assert engine.gallery.file(run.files["video"]) == Path(result.video_path)
    assert engine.gallery.file(run.files["sidecar"]) == Path(result.sidecar_path)
    assert json.loads(Path(result.sidecar_path).read_text())["run_id"] == run.id
    assert engine.gallery.list(session="abc") == [run] and engine.gallery.list(session="other") == []
    assert (engine.outputs / DB_NAME).exists()
    with sqlite3.connect(engine.outputs / DB_NAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_history_survives_a_restart_and_reruns_repeat_a_run(engine, tiny_engine):
    from pipeline.engine import Engine

    first = engine.generate("a red ball", use_raw=True, seed=9, num_inference_steps=1)
    restarted = Engine(tiny_engine.video, tiny_engine.rewriter, engine.outputs)  # a new process would do the same
    [run] = restarted.gallery.list()
    assert run.status == "completed" and restarted.gallery.file(run.files["video"]) == Path(first.video_path)

    same = restarted.gallery.get(restarted.rerun(run.id))
    assert (same.seed, same.prompt, same.parent_id, same.rewritten) == (9, "a red ball", run.id, None)
    assert same.settings == run.settings
    other = restarted.gallery.get(restarted.rerun(run.id, new_seed=True))
    assert other.status == "completed" and other.parent_id == run.id  # a fresh random seed
    assert [r.id for r in restarted.gallery.list()] == [other.id, same.id, run.id]  # newest first


def test_a_crash_between_file_write_and_commit_leaves_no_dangling_row(tmp_path):
    """A process killed (SIGKILL) after writing the video, before committing: restart marks it failed."""
    outputs = tmp_path / "outputs"
    script = (
        "import os, signal, sys\n"
        "from pipeline.engine import Engine\n"
        "from pipeline.gallery import Gallery\n"
        "def crash(self, run_id, files, **kwargs):\n"
        "    assert all(os.path.exists(p) for p in files.values())\n"
        "    print('files written', flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "engine = Engine.load('none', 'tiny-random', sys.argv[1], device='cpu')\n"
        "Gallery.complete = crash\n"
        "engine.generate('a red ball', use_raw=True, seed=1, num_inference_steps=1)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(outputs)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -9 and "files written" in proc.stdout, proc.stderr

    # before restart: the row is still 'running', the video under its final name, nothing committed
    with sqlite3.connect(outputs / DB_NAME) as db:
        status, planned = db.execute("SELECT status, planned FROM runs").fetchone()
    planned = [Path(p) for p in json.loads(planned)]
    assert status == "running" and planned[0].exists() and planned[0].suffix == ".mp4"

    # restart: the interrupted run is failed and its uncommitted files are gone
    gallery = Gallery(outputs)
    [run] = gallery.list()
    assert run.status == "failed" and "interrupted" in run.error and run.files == {}
    assert not any(p.exists() for p in planned)
    assert not list(outputs.glob("*.mp4")) and not list(outputs.glob(".*part*"))


def test_a_failure_after_the_video_is_written_removes_it_and_marks_the_run_failed(engine, monkeypatch):
    import pipeline.engine

    def disk_full(path, record):
        raise OSError("disk full")

    monkeypatch.setattr(pipeline.engine, "write_sidecar", disk_full)
    with pytest.raises(OSError, match="disk full"):
        engine.generate("a red ball", use_raw=True, seed=1, num_inference_steps=1)
    [run] = engine.gallery.list()
    assert run.status == "failed" and "disk full" in run.error and run.files == {}
    assert not list(engine.outputs.glob("*.mp4")) and not list(engine.outputs.glob(".*part*"))


def test_requests_refused_by_validation_write_no_gallery_row(engine):
    too_long = "a " * 900  # within the character limit, over the 512 tokens tiny-random reads
    refusals = [
        lambda: engine.generate(too_long, use_raw=True, num_inference_steps=1),
        lambda: engine.generate("a red ball", rewritten=too_long, num_inference_steps=1),
        lambda: engine.generate("a red ball", use_raw=True, height=24),
        lambda: engine.compare(too_long, rewritten=REWRITTEN, num_inference_steps=1),
        lambda: engine.variations(too_long, use_raw=True, count=2),
    ]
    for refuse in refusals:
        with pytest.raises(ValueError):
            refuse()
    assert engine.gallery.list() == []


def test_the_gallery_table_says_why_a_run_failed(engine, monkeypatch):
    from demo.gallery_tab import HEADERS, _row

    def refused(*args, **kwargs):
        raise ValueError("The rewritten prompt is the same as your prompt.")

    monkeypatch.setattr(engine, "render", refused)
    with pytest.raises(ValueError):
        engine.generate("a red ball", use_raw=True, num_inference_steps=1)
    [run] = engine.gallery.list()
    row = dict(zip(HEADERS, _row(run.to_dict()), strict=True))
    assert row["status"] == "failed" and row["why it failed"] == "The rewritten prompt is the same as your prompt."
    done = fake_run(engine.gallery, engine.outputs)
    assert dict(zip(HEADERS, _row(engine.gallery.get(done).to_dict()), strict=True))["why it failed"] == ""


def test_a_live_run_is_not_taken_for_an_interrupted_one(tmp_path):
    first = Gallery(tmp_path)
    run_id = first.begin(RunStart("generate", "a red ball", "tiny-random", 1, {}))
    Gallery(tmp_path)  # a second process opening the database while this one renders
    assert first.get(run_id).status == "running"


def test_concurrent_writes_from_threads_keep_every_row(tmp_path):
    shared = Gallery(tmp_path)
    threads, errors, per_thread = 8, [], 15

    def worker(n: int):
        gallery = shared if n % 2 else Gallery(tmp_path, recover=False)  # shared object, or like another process
        try:
            for i in range(per_thread):
                kind = "compare" if i % 3 == 0 else "generate"
                run_id = fake_run(
                    gallery,
                    tmp_path,
                    kind,
                    session=f"s{n}",
                    prompt=f"thread {n} run {i}",
                    rewritten=REWRITTEN if kind == "compare" else None,
                )
                if kind == "compare":
                    gallery.vote(run_id, "raw", session=f"s{n}")
                gallery.list(limit=5)
        except Exception as err:  # collected: an assertion in a thread would be lost
            errors.append(err)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    runs = shared.list(limit=1000)
    assert len(runs) == threads * per_thread and len({r.id for r in runs}) == len(runs)
    assert all(r.status == "completed" for r in runs)
    assert shared.summary().pairs == threads * 5 and shared.summary().raw == threads * 5
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_round_trips(tmp_path, fmt):
    gallery = Gallery(tmp_path)
    fake_run(gallery, tmp_path, prompt='a "quoted", comma-separated prompt\nover two lines, ünïcode')
    pair = fake_run(gallery, tmp_path, "compare", rewritten=REWRITTEN)
    gallery.vote(pair, "tie")
    gallery.begin(RunStart("variations", "still running", "tiny-random", 3, {"preview": {"height": 32}}, seeds=(3, 4)))

    exported = gallery.export(fmt, tmp_path / f"runs.{fmt}")
    assert load_export(exported) == [run.to_dict() for run in reversed(gallery.list())]
    assert "session" not in load_export(exported)[0]
    with pytest.raises(FileExistsError):
        gallery.export(fmt, exported)
    with pytest.raises(ValueError, match="csv, jsonl"):
        gallery.export("xml", tmp_path / "runs.xml")


def test_bad_run_ids_and_bad_votes_get_clear_errors(tmp_path):
    gallery = Gallery(tmp_path)
    single = fake_run(gallery, tmp_path)
    pair = fake_run(gallery, tmp_path, "compare", rewritten=REWRITTEN)
    for bad in (0, -3, "abc", 1.5, True, None):
        with pytest.raises(ValueError, match="positive whole number"):
            gallery.get(bad)
    with pytest.raises(ValueError, match="There is no run 999"):
        gallery.vote(999, "raw")
    for bad in ("maybe", "", None, 1):
        with pytest.raises(ValueError, match="raw, rewritten, tie"):
            gallery.vote(pair, bad)
    with pytest.raises(ValueError, match="only compare pairs take votes"):
        gallery.vote(single, "raw")
    assert gallery.vote(f"#{pair}", " Rewritten ").vote == "rewritten"  # ids and choices as typed in a UI
    assert gallery.summary().win_rate == 1.0
    with pytest.raises(ValueError, match="limit"):
        gallery.list(limit=0)


def test_delete_removes_files_and_cleanup_marks_rows_expired(tmp_path):
    gallery = Gallery(tmp_path)
    doomed, gone, old = (fake_run(gallery, tmp_path) for _ in range(3))
    video = gallery.file(gallery.get(doomed).files["video"])
    assert gallery.delete(doomed) == [video] and not video.exists()
    with pytest.raises(ValueError, match="no run"):
        gallery.get(doomed)

    gallery.file(gallery.get(gone).files["video"]).unlink()  # removed by hand or by a disk policy
    assert gallery.expire_missing() == 1 and gallery.get(gone).status == "expired"
    assert gallery.expire_older_than(0, now=gallery.get(old).created + 1) == 1
    expired = gallery.get(old)
    assert expired.status == "expired" and not gallery.file(expired.files["video"]).exists()

    running = gallery.begin(RunStart("generate", "busy", "tiny-random", 1, {}))
    with pytest.raises(ValueError, match="still running"):
        gallery.delete(running)


def test_delete_and_cleanup_remove_only_files_in_the_gallery_folder(tmp_path):
    gallery = Gallery(tmp_path / "outputs")
    elsewhere = tmp_path / "elsewhere"  # a CLI run written with --out outside the outputs folder
    elsewhere.mkdir()
    outside, old = (fake_run(gallery, elsewhere) for _ in range(2))
    clip = gallery.file(gallery.get(outside).files["video"])
    assert clip.parent == elsewhere and gallery.delete(outside) == [] and clip.exists()
    assert gallery.expire_older_than(0, now=gallery.get(old).created + 1) == 1
    assert gallery.file(gallery.get(old).files["video"]).exists()


def test_text_filter_and_limit(tmp_path):
    gallery = Gallery(tmp_path)
    fox = fake_run(gallery, tmp_path, prompt="a fox in the snow")
    fake_run(gallery, tmp_path, prompt="a 100% red_ball")
    pair = fake_run(gallery, tmp_path, "compare", prompt="a cat", rewritten="A cat naps on a sunny windowsill.")
    assert [r.id for r in gallery.list("fox")] == [fox]
    assert [r.id for r in gallery.list("windowsill")] == [pair]  # the rewrite is searched too
    assert [r.id for r in gallery.list("compare")] == [pair]
    assert [r.prompt for r in gallery.list("%")] == [r.prompt for r in gallery.list("_")] == ["a 100% red_ball"]
    assert [r.id for r in gallery.list(str(pair))] == [pair]  # an id (or a seed)
    assert len(gallery.list(limit=2)) == 2


def test_session_scoping(tmp_path):
    gallery = Gallery(tmp_path)
    mine = fake_run(gallery, tmp_path, "compare", session="alice", rewritten=REWRITTEN)
    theirs = fake_run(gallery, tmp_path, "compare", session="bob", rewritten=REWRITTEN)
    assert [r.id for r in gallery.list(session="alice")] == [mine]
    assert {r.id for r in gallery.list()} == {mine, theirs}  # locally one user sees everything
    for action in (
        lambda: gallery.get(theirs, "alice"),
        lambda: gallery.vote(theirs, "raw", "alice"),
        lambda: gallery.delete(theirs, "alice"),
    ):
        with pytest.raises(ValueError, match="There is no run"):
            action()
    gallery.vote(mine, "rewritten", "alice")
    assert gallery.summary("alice").rewritten == 1 and gallery.summary("bob").pairs == 1
    assert gallery.summary("bob").rewritten == 0


def test_private_runs_setting():
    assert private_runs({}) is False
    assert private_runs({"SPACE_ID": "someone/rewrite-render"}) is True
    assert private_runs({"SPACE_ID": "someone/rewrite-render", "RR_PRIVATE_RUNS": "0"}) is False
    assert private_runs({"RR_PRIVATE_RUNS": "1"}) is True
    with pytest.raises(ValueError, match="RR_PRIVATE_RUNS"):
        private_runs({"RR_PRIVATE_RUNS": "maybe"})
