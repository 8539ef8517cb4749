"""Typed records: every sidecar kind round-trips through its dataclass, and records written before the types
(sidecars, gallery rows, rewrite dicts of every shape) load and are written back unchanged."""

import json
import sqlite3
from pathlib import Path

import pytest

from pipeline.gallery import DB_NAME, Gallery, RunStart
from pipeline.records import (
    AS_WRITTEN,
    EDITED,
    CompareSidecar,
    GenerateSidecar,
    RewriteInfo,
    VariationsSidecar,
    from_json,
    read_sidecar,
    to_json,
    write_sidecar,
)

REWRITTEN = "A red ball rolls slowly across a wooden table in warm afternoon light."
REWRITE = {  # a rewrite's record as sidecars and gallery rows held it before RewriteInfo (key order included)
    "prompt": "a red ball", "rewriter": "tiny-random", "target": "tiny-random", "template_version": "wan-2026.11-8",
    "seed": 9, "tokens": 6, "tokens_exact": True, "token_limit": 512, "words": 3, "new_tokens": 48, "seconds": 2.132,
    "fallback": None, "notes": ["dropped a sentence to fit the limit"],
}  # fmt: skip
OLD_SHAPES = {
    "rewrite": REWRITE,
    "rewrite that fell back": {**REWRITE, "fallback": "the rewrite was too short (16 words; 50-150 expected)"},
    "rewrite of an image": {**REWRITE, "image": "unseen"},
    "as written": {"rewriter": None, "fallback": AS_WRITTEN},
    "edited": {"rewriter": EDITED},
    "pending": {"seed": 4},
    "pending, given text": {},
}
OLD_SIDECAR = {  # a generate sidecar as a CUDA run wrote it before the sidecar dataclasses
    "video": "20261207-021138-a5c69863.mp4", "created": "2026-12-07T02:11:40+0000", "raw_prompt": "a red ball",
    "rewritten_prompt": REWRITTEN, "prompt_used": REWRITTEN,
    "prompt_tokens": {"tokens": 17, "limit": 512, "exact": True},
    "rewrite": REWRITE, "seed": 5, "seeds": {"video": 5, "rewrite": 9}, "video_preset": "wan2.1-t2v-1.3b",
    "switched_from": None,
    "settings": {"height": 480, "width": 832, "num_frames": 81, "num_inference_steps": 30, "guidance_scale": 5.0,
                 "negative_prompt": "static, blurry", "fps": 16},
    "device": "cuda", "dtype": "bfloat16", "memory": ["model CPU offload"],
    "timings": {"denoise_s": 93.1, "encode_s": 1.2},
    "memory_note": "Out of GPU memory with plan 'resident'; now 'offload'.", "memory_plan": "offload",
    "memory_estimated_peak_vram_gb": 11.2, "memory_estimated_slowdown": 1.3, "memory_measured_peak_vram_gb": 10.4,
    "reference_image": None, "run_id": 1,
    "versions": {"torch": "2.13.0", "diffusers": "0.42.1", "transformers": "5.23.0", "accelerate": "1.15.0",
                 "bitsandbytes": None, "gradio": "6.31.0"},
}  # fmt: skip


@pytest.fixture
def engine(tiny_engine, tmp_path):
    from pipeline.engine import Engine

    return Engine(tiny_engine.video, tiny_engine.rewriter, tmp_path / "outputs")


def test_every_sidecar_kind_round_trips_through_its_dataclass(engine, tmp_path):
    steps = {"num_inference_steps": 1}
    batch = engine.variations("a red ball", count=2, seed=11, rewrite_seed=1, **steps)
    written = {
        GenerateSidecar: engine.generate("a red ball", rewrite_seed=9, seed=5, **steps).sidecar_path,
        CompareSidecar: engine.compare("a red ball", rewritten=REWRITTEN, seed=3, **steps).sidecar_path,
        VariationsSidecar: batch.sidecar_path,
    }
    expanded = engine.expand_variation(batch.run_id, 12).sidecar_path  # a generate sidecar with its preview link
    for i, (kind, path) in enumerate([*written.items(), (GenerateSidecar, expanded)]):
        sidecar = read_sidecar(Path(path))
        assert type(sidecar) is kind
        again = write_sidecar(tmp_path / f"again-{i}.json", sidecar)
        assert again.read_text() == Path(path).read_text()  # the same bytes: keys, values and their order
        assert read_sidecar(again) == sidecar
    assert read_sidecar(Path(expanded)).preview["run_id"] == batch.run_id
    with pytest.raises(FileExistsError):
        write_sidecar(again, sidecar)  # never replaces a sidecar


def test_a_sidecar_written_before_the_types_loads_and_is_written_back_unchanged(tmp_path):
    sidecar = from_json(OLD_SIDECAR)
    assert isinstance(sidecar, GenerateSidecar) and sidecar.rewrite.seed == 9
    assert sidecar.memory == ("model CPU offload",) and sidecar.memory_report["plan"] == "offload"
    assert sidecar.memory_report["note"].startswith("Out of GPU memory")
    path = write_sidecar(tmp_path / "old.json", sidecar)
    assert path.read_text() == json.dumps(OLD_SIDECAR, indent=2, ensure_ascii=False) + "\n"
    with pytest.raises(ValueError, match="unknown sidecar kind"):
        from_json({**OLD_SIDECAR, "kind": "storyboard"})


@pytest.mark.parametrize("shape", OLD_SHAPES.values(), ids=OLD_SHAPES.keys())
def test_every_old_rewrite_shape_loads_and_serialises_unchanged(shape):
    info = RewriteInfo.from_dict(shape)
    assert list(to_json(info).items()) == list(shape.items())  # keys, values and order
    assert RewriteInfo.from_dict(json.loads(json.dumps(to_json(info)))) == info
    for other in OLD_SHAPES.values():  # laying one record over another is the dict merge it replaced
        assert to_json(info.merged(RewriteInfo.from_dict(other))) == {**shape, **other}


def test_rewrite_info_from_a_result_and_from_a_dict_with_keys_it_does_not_know(engine):
    result = engine.rewrite("a red ball", 3)
    info = RewriteInfo.from_result(result)
    stored = {k: list(v) if k == "notes" else v for k, v in result.to_dict().items() if k != "rewritten"}
    assert to_json(info) == stored
    assert RewriteInfo.from_dict({"rewriter": EDITED, "retired_key": 1}) == RewriteInfo(rewriter=EDITED)
    assert RewriteInfo.from_dict(None) == RewriteInfo() and to_json(RewriteInfo()) == {}


def test_gallery_rows_written_before_the_types_still_load(tmp_path):
    gallery = Gallery(tmp_path)
    ids = [gallery.begin(RunStart("generate", "a red ball", "tiny-random", 1, {})) for _ in OLD_SHAPES]
    with sqlite3.connect(tmp_path / DB_NAME) as db:  # the row's JSON text as the gallery wrote it: sorted keys
        for run_id, shape in zip(ids, OLD_SHAPES.values(), strict=True):
            db.execute("UPDATE runs SET rewrite=? WHERE id=?", (json.dumps(shape, sort_keys=True), run_id))
    for run_id, shape in zip(ids, OLD_SHAPES.values(), strict=True):
        run = gallery.get(run_id)
        assert run.rewrite == RewriteInfo.from_dict(shape) and run.to_dict()["rewrite"] == shape
