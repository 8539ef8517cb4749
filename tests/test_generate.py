import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from pipeline.export import encode_mp4


def probe(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "width": stream.width,
            "height": stream.height,
            "fps": float(stream.average_rate),
            "frames": frames,
        }


def moov_before_mdat(path) -> bool:
    data = path.read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


def test_tiny_end_to_end_generation_is_a_browser_safe_mp4(tiny_engine, tiny_spec):
    stages = []
    result = tiny_engine.generate(
        "a red ball", use_raw=True, seed=11, num_frames=9, progress=lambda s, i, n: stages.append((s, i, n))
    )


    video = Path(result.video_path)
    info = probe(video)
    assert info == {
        "codec": "h264", "pix_fmt": "yuv420p", "width": tiny_spec.width, "height": tiny_spec.height,
        "fps": float(tiny_spec.fps), "frames": 9,
    }
    assert moov_before_mdat(video)
    assert ("denoise", tiny_spec.num_inference_steps, tiny_spec.num_inference_steps) in stages
    assert ("encode", 9, 9) in stages

    record = json.loads(Path(result.sidecar_path).read_text())
    assert record["video"] == video.name and result.sidecar_path == str(video.with_suffix(".json"))
    assert record["raw_prompt"] == "a red ball" and record["prompt_used"] == "a red ball"
    assert record["seed"] == 11 and record["video_preset"] == "tiny-random"
    assert record["settings"]["num_frames"] == 9 and record["settings"]["fps"] == tiny_spec.fps
    assert record["versions"]["diffusers"] and "denoise_s" in record["timings"]


def test_same_seed_same_video_different_seed_different(tiny_engine):
    def frames(seed):
        result = tiny_engine.generate("a red ball", use_raw=True, seed=seed, num_inference_steps=2)
        with av.open(result.video_path) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])

    a, b, c = frames(1), frames(1), frames(2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_rewrite_first_when_box_empty_and_record_it(tiny_engine, monkeypatch):
    seen = []
    original = tiny_engine.rewriter.stream

    def spy(prompt, target, seed=0, cancel=None):
        seen.append((prompt, seed))
        yield from original(prompt, target, seed, cancel)

    monkeypatch.setattr(tiny_engine.rewriter, "stream", spy)
    result = tiny_engine.generate("a blue box", rewrite_seed=9, seed=1, num_inference_steps=1)
    record = json.loads(open(result.sidecar_path).read())
    assert seen == [("a blue box", 9)]
    assert record["rewrite"]["rewriter"] == "tiny-random" and record["rewrite"]["seed"] == 9
    assert record["rewrite"]["template_version"].startswith("wan-")

    seen.clear()
    edited = tiny_engine.generate("a blue box", rewritten="A blue box on a table.", seed=1, num_inference_steps=1)
    assert seen == [] and edited.prompt_used == "A blue box on a table."
    assert json.loads(open(edited.sidecar_path).read())["rewrite"]["rewriter"] == "edited or supplied by the user"


def test_over_limit_prompt_is_refused_before_rendering(tiny_engine, monkeypatch):
    monkeypatch.setattr(tiny_engine.counter, "limit", 5)
    with pytest.raises(ValueError, match="reads at most 5"):
        tiny_engine.generate("a very long prompt about many things at once", use_raw=True)


def test_reference_image_is_stored_and_recorded(tiny_engine, tmp_path):
    img = tmp_path / "ref.png"
    Image.new("RGBA", (40, 30), (255, 0, 0, 128)).save(img)
    result = tiny_engine.generate("a red ball", use_raw=True, image_path=str(img), num_inference_steps=1)
    record = json.loads(open(result.sidecar_path).read())
    ref = record["reference_image"]
    # tiny-random is text-only: the image moved the render to its image partner, at that preset's size
    assert record["video_preset"] == "tiny-random-i2v" and record["switched_from"] == "tiny-random"
    assert ref["original_name"] == "ref.png" and ref["used_by_video_model"] is True and ref["size"] == [224, 128]
    assert ref["original_size"] == [40, 30]
    stored = Image.open(Path(result.video_path).with_name(ref["path"]))
    assert stored.mode == "RGB" and stored.size == (224, 128)


def test_not_an_image_is_rejected(tiny_engine, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        tiny_engine.generate("a red ball", use_raw=True, image_path=str(bad))


def test_explicit_out_never_overwrites(tiny_engine, tmp_path):
    out = tmp_path / "clip.mp4"
    tiny_engine.generate("a red ball", use_raw=True, num_inference_steps=1, out=out)
    before = out.read_bytes()
    with pytest.raises(FileExistsError):
        tiny_engine.generate("a red ball", use_raw=True, num_inference_steps=1, out=out)
    assert out.read_bytes() == before


def test_fps_reaches_the_mp4_and_the_sidecar_and_out_of_range_is_refused(tiny_engine, tiny_spec):
    result = tiny_engine.generate("a red ball", use_raw=True, num_frames=9, num_inference_steps=1, fps=8)
    assert tiny_spec.fps != 8 and probe(result.video_path)["fps"] == 8.0
    assert json.loads(Path(result.sidecar_path).read_text())["settings"]["fps"] == 8
    for bad in (0, 61, 12.5):
        with pytest.raises(ValueError, match=rf"fps={bad} is out of range: use a whole number from 1 to 60\."):
            tiny_engine.generate("a red ball", use_raw=True, num_inference_steps=1, fps=bad)


def test_fps_left_at_the_text_presets_rate_follows_the_image_partner(tmp_path):
    from types import SimpleNamespace

    from pipeline.engine import Engine
    from pipeline.presets import get_video_spec

    img = tmp_path / "ref.png"
    Image.new("RGB", (64, 48), (0, 0, 255)).save(img)
    wan = get_video_spec("wan2.1-t2v-1.3b")
    engine = Engine(SimpleNamespace(spec=wan), None, tmp_path / "out")  # build() loads no model
    partner = get_video_spec(wan.image_partner)
    assert partner.fps != wan.fps
    assert engine.build("a red ball", image_path=str(img), fps=wan.fps).fps == partner.fps
    assert engine.build("a red ball", image_path=str(img), fps=12).fps == 12


def test_encoder_pads_odd_sizes_and_refuses_existing(tmp_path):
    frames = np.random.default_rng(0).random((5, 31, 45, 3), dtype=np.float32)
    path = encode_mp4(frames, tmp_path / "odd.mp4", fps=8)
    info = probe(path)
    assert (info["width"], info["height"], info["frames"], info["fps"]) == (46, 32, 5, 8.0)
    with pytest.raises(FileExistsError):
        encode_mp4(frames, path, fps=8)
    assert not list(tmp_path.glob(".*part*"))


def test_cancel_during_denoising_stops(tiny_engine):
    import threading

    from prompts.rewriter import Cancelled

    cancel = threading.Event()

    def progress(stage, done, total):
        if stage == "denoise":
            cancel.set()

    before = set(tiny_engine.outputs.glob("*.mp4"))
    with pytest.raises(Cancelled):
        tiny_engine.generate("a red ball", use_raw=True, num_inference_steps=4, progress=progress, cancel=cancel)
    assert set(tiny_engine.outputs.glob("*.mp4")) == before
