"""Compare (raw vs rewritten, one seed) and variations (preview seeds, then one at full settings)."""

import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.presets import ASPECTS, VIDEO_PRESETS
from pipeline.request import build_request
from pipeline.variations import MAX_COUNT, preview_settings, variation_seeds
from prompts.rewriter import RewriteResult
from tests.test_generate import probe

REWRITTEN = "A red ball rolls slowly across a wooden table in warm afternoon light."


@pytest.fixture
def engine(tiny_engine, tmp_path):
    """The tiny models already loaded, with a fresh outputs folder (and so a fresh gallery)."""
    from pipeline.engine import Engine

    return Engine(tiny_engine.video, tiny_engine.rewriter, tmp_path / "outputs")


def frames(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_compare_renders_two_valid_videos_with_one_seed_and_different_prompts(engine, tiny_spec):
    stages = []
    result = engine.compare("a red ball", rewritten=REWRITTEN, seed=21, num_inference_steps=2,
                            progress=lambda s, i, n: stages.append(s))

    # two browser-safe videos, same seed and settings, different prompts
    raw, rewritten = Path(result.raw.video_path), Path(result.rewritten.video_path)
    assert raw.name.endswith(".raw.mp4") and rewritten.name.endswith(".rewritten.mp4")
    expected = {"codec": "h264", "pix_fmt": "yuv420p", "width": tiny_spec.width, "height": tiny_spec.height,
                "fps": float(tiny_spec.fps), "frames": tiny_spec.num_frames}
    assert probe(raw) == expected and probe(rewritten) == expected
    assert result.seed == result.raw.seed == result.rewritten.seed == 21
    assert (result.raw.prompt_used, result.rewritten.prompt_used) == ("a red ball", REWRITTEN)
    assert not np.array_equal(frames(raw), frames(rewritten))
    assert {"raw:denoise", "raw:encode", "rewritten:denoise", "rewritten:encode"} <= set(stages)

    # fair: the raw side is exactly what a plain render of the raw prompt with that seed gives
    plain = engine.generate("a red ball", use_raw=True, seed=21, num_inference_steps=2)
    assert np.array_equal(frames(raw), frames(plain.video_path))

    # one sidecar naming both videos and the shared seed
    record = json.loads(Path(result.sidecar_path).read_text())
    assert record["kind"] == "compare" and record["seed"] == 21 and record["run_id"] == result.run_id
    assert record["videos"] == {"raw": raw.name, "rewritten": rewritten.name}
    assert record["runs"]["raw"]["prompt_used"] == "a red ball"
    assert record["runs"]["rewritten"]["prompt_used"] == REWRITTEN
    assert record["settings"]["num_inference_steps"] == 2 and record["versions"]["diffusers"]

    # and one completed gallery row holding both
    run = engine.gallery.get(result.run_id)
    assert (run.kind, run.status, run.seed, run.prompt, run.rewritten) == ("compare", "completed", 21, "a red ball", REWRITTEN)
    assert {engine.gallery.file(p) for p in run.files.values()} == {raw, rewritten, Path(result.sidecar_path)}


def test_compare_rewrites_first_when_no_rewritten_text_is_given(engine, monkeypatch):
    original = engine.rewriter.stream
    seen = []

    def stream(prompt, target, seed=0, cancel=None):
        seen.append((prompt, seed))
        for item in original(prompt, target, seed, cancel):
            yield replace(item, rewritten=REWRITTEN, fallback=None) if isinstance(item, RewriteResult) else item

    monkeypatch.setattr(engine.rewriter, "stream", stream)
    result = engine.compare("a red ball", rewrite_seed=4, seed=3, num_inference_steps=1)
    assert seen == [("a red ball", 4)]
    assert result.rewritten.prompt_used == REWRITTEN and result.raw.prompt_used == "a red ball"
    assert result.rewrite.rewriter == "tiny-random" and result.rewrite.seed == 4
    assert json.loads(Path(result.sidecar_path).read_text())["rewrite"]["template_version"].startswith("wan-")


def test_compare_refuses_when_there_is_nothing_to_compare(engine, tiny_engine):
    from pipeline.engine import Engine

    # the tiny rewriter keeps the prompt (too short): both videos would be the same
    with pytest.raises(ValueError, match="same as your prompt.*rewriter kept it"):
        engine.compare("a red ball", seed=1, num_inference_steps=1)
    with pytest.raises(ValueError, match="same as your prompt"):
        engine.compare("a red ball", rewritten="  a red ball ", num_inference_steps=1)
    no_llm = Engine(tiny_engine.video, None, engine.outputs)
    with pytest.raises(ValueError, match="no rewriter is loaded"):
        no_llm.compare("a red ball")
    # the failed attempt is recorded as failed and leaves no files behind
    assert [r.status for r in engine.gallery.list()] == ["failed"]
    assert not list(engine.outputs.glob("*.mp4"))


def test_compare_out_stem_never_overwrites(engine, tmp_path):
    stem = tmp_path / "pair"
    result = engine.compare("a red ball", rewritten=REWRITTEN, seed=2, num_inference_steps=1, out=stem)
    assert result.sidecar_path == str(tmp_path / "pair.json")
    assert (tmp_path / "pair.raw.mp4").exists() and (tmp_path / "pair.rewritten.mp4").exists()
    before = (tmp_path / "pair.raw.mp4").read_bytes()
    with pytest.raises(FileExistsError):
        engine.compare("a red ball", rewritten=REWRITTEN, seed=2, num_inference_steps=1, out=stem)
    assert (tmp_path / "pair.raw.mp4").read_bytes() == before


def test_added_words_are_highlighted():
    from demo.compare_view import ADDED, added_words

    spans = added_words("a red ball", "A red ball rolls across the wooden table, balls bouncing.")
    added = [text.strip() for text, label in spans if label == ADDED]
    kept = [text.strip() for text, label in spans if label is None]
    assert added == ["rolls", "across", "wooden", "table,", "bouncing."]
    assert kept == ["A", "red", "ball", "the", "balls"]  # same stem as "ball"; stopwords never count as added


def test_variations_render_distinct_seeds_at_preview_settings_then_one_at_full(engine, tiny_spec):
    result = engine.variations("a red ball", use_raw=True, count=3)
    seeds = [p.seed for p in result.previews]
    assert len(seeds) == 3 and len(set(seeds)) == 3
    for preview in result.previews:
        info = probe(preview.video_path)
        assert (info["height"], info["width"]) == tiny_spec.preview_sizes["16:9"]
        assert info["frames"] == tiny_spec.preview_num_frames
    batch = engine.gallery.get(result.run_id)
    assert batch.kind == "variations" and batch.status == "completed" and batch.seeds == tuple(seeds)

    # picking one renders that seed at full settings; its sidecar links the preview
    full = engine.expand_variation(result.run_id, seeds[1])
    info = probe(full.video_path)
    assert full.seed == seeds[1] and (info["height"], info["width"], info["frames"]) == (
        tiny_spec.height, tiny_spec.width, tiny_spec.num_frames)
    link = json.loads(Path(full.sidecar_path).read_text())["preview"]
    assert link["run_id"] == result.run_id and link["video"] == result.previews[1].video_path
    assert Path(link["video"]).exists() and link["settings"] == result.preview_settings
    picked = engine.gallery.list("variation", 1)[0]
    assert picked.kind == "variation" and picked.parent_id == result.run_id and picked.seed == seeds[1]

    with pytest.raises(ValueError, match="not one of run"):
        engine.expand_variation(result.run_id, 12345)
    with pytest.raises(ValueError, match="not a set of variations"):
        engine.expand_variation(picked.id, seeds[1])


def test_variation_seeds_follow_a_given_seed_and_are_bounded():
    assert variation_seeds(4, 10) == (10, 11, 12, 13)
    assert variation_seeds(2, 2**32 - 1) == (2**32 - 1, 0)
    assert len(set(variation_seeds(MAX_COUNT))) == MAX_COUNT
    for bad in (0, MAX_COUNT + 1, 2.5, "4", True):
        with pytest.raises(ValueError, match="number of variations"):
            variation_seeds(bad)


@pytest.mark.parametrize("name", list(VIDEO_PRESETS))
def test_preview_settings_are_valid_and_cheaper_for_every_preset(name):
    spec = VIDEO_PRESETS[name]
    assert set(spec.preview_sizes) == set(ASPECTS)
    for aspect in ASPECTS:
        height, width = spec.sizes[aspect]
        preview = preview_settings(spec, height, width, spec.num_frames, spec.num_inference_steps)
        assert (preview["height"], preview["width"]) == spec.preview_sizes[aspect]
        assert preview["height"] * preview["width"] <= height * width  # toy-world renders 32x32 only: equal
        assert preview["num_frames"] < spec.num_frames and preview["num_inference_steps"] < spec.num_inference_steps
        build_request(spec, "a red ball", **preview)  # valid by the preset's own rules
    # never bigger than the full render asked for
    small = preview_settings(spec, 16, 16, spec.frame_step + 1, 1)
    assert small == {"height": 16, "width": 16, "num_frames": spec.frame_step + 1, "num_inference_steps": 1}


def test_the_engine_is_the_runner_compare_and_variations_are_written_against(tiny_engine):
    """pipeline.runner.Runner lets compare and variations take the engine without importing it: the engine has
    every member it names, and each of its methods has the engine's signature."""
    import inspect

    from pipeline.engine import Engine
    from pipeline.runner import Runner

    assert all(hasattr(tiny_engine, name) for name in [*Runner.__annotations__, "spec"])
    methods = [name for name, value in vars(Runner).items() if inspect.isfunction(value) and not name.startswith("_")]
    assert len(methods) == 6
    for name in methods:
        assert inspect.signature(getattr(Engine, name)) == inspect.signature(getattr(Runner, name)), name
