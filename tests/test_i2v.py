"""Image-to-video end to end on CPU: the tiny Wan 2.2-style pipeline, the switch to the image partner,
the processed image in the sidecar, compare with one image, and the CLI's --image."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from pipeline.image_to_video import image_target, partner_settings
from pipeline.loading import rewrite_target
from pipeline.presets import VIDEO_PRESETS, get_video_spec
from runtime.images import prepare_reference_image
from tests.test_generate import probe

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def photo(tmp_path):
    """A generated 'photo': a red disc on blue, 300x200, with a translucent corner."""
    from PIL import ImageDraw

    img = Image.new("RGBA", (300, 200), (20, 40, 200, 255))
    ImageDraw.Draw(img).ellipse((100, 50, 200, 150), fill=(230, 30, 30, 255))
    img.paste((0, 0, 0, 0), (0, 0, 30, 30))
    path = tmp_path / "photo.png"
    img.save(path)
    return path


def test_image_capable_presets_are_declared_as_the_issue_asks():
    wan22, ltx, tiny = (get_video_spec(n) for n in ("wan2.2-ti2v-5b", "ltx-video", "tiny-random-i2v"))
    assert (wan22.pipeline_class, wan22.image_pipeline_class) == ("WanPipeline", "WanImageToVideoPipeline")
    assert wan22.hub_id == "Wan-AI/Wan2.2-TI2V-5B-Diffusers" and wan22.pipeline_config == {"expand_timesteps": True}
    assert wan22.size_multiple == 32 and all(v % 32 == 0 for hw in wan22.sizes.values() for v in hw)
    assert (ltx.pipeline_class, ltx.image_pipeline_class) == ("LTXPipeline", "LTXImageToVideoPipeline")
    assert ltx.size_multiple == 32 and ltx.frame_step == 8 and (ltx.num_frames - 1) % 8 == 0
    assert tiny.image_pipeline_class == "WanImageToVideoPipeline" and tiny.pipeline_config == {"expand_timesteps": True}
    assert get_video_spec("wan2.1-t2v-1.3b").image_partner == "wan2.2-ti2v-5b"
    assert get_video_spec("tiny-random").image_partner == "tiny-random-i2v"


@pytest.mark.parametrize("name", [n for n, s in VIDEO_PRESETS.items() if s.takes_image])
def test_image_preset_classes_and_arguments_exist_in_the_installed_diffusers(name):
    import inspect

    import diffusers

    spec = get_video_spec(name)
    for cls_name in (spec.pipeline_class, spec.image_pipeline_class):
        cls = getattr(diffusers, cls_name)
        init, call = inspect.signature(cls.__init__).parameters, inspect.signature(cls.__call__).parameters
        assert set(spec.pipeline_config) <= set(init) or cls_name == spec.pipeline_class
        assert set(spec.call_kwargs) <= set(call)
    assert "image" in inspect.signature(getattr(diffusers, spec.image_pipeline_class).__call__).parameters


def test_ftfy_is_installed_for_the_wan_image_pipeline():
    from diffusers.utils import is_ftfy_available

    assert is_ftfy_available()


def test_partner_gets_its_own_defaults_for_settings_left_at_the_text_presets():
    text, partner = get_video_spec("wan2.1-t2v-1.3b"), get_video_spec("wan2.2-ti2v-5b")
    assert image_target(text) is partner and image_target(partner) is partner
    defaults = {
        "height": 480,
        "width": 832,
        "num_frames": 81,
        "num_inference_steps": 30,
        "guidance_scale": 5.0,
        "negative_prompt": text.negative_prompt,
        "seed": 3,
    }
    mapped = partner_settings(text, partner, defaults)
    assert (mapped["height"], mapped["width"]) == partner.sizes["16:9"] and mapped["num_frames"] == partner.num_frames
    assert mapped["num_inference_steps"] == partner.num_inference_steps and mapped["seed"] == 3
    portrait = partner_settings(text, partner, {"height": 832, "width": 480})
    assert (portrait["height"], portrait["width"]) == partner.sizes["9:16"]
    chosen = partner_settings(text, partner, {"height": 496, "width": 832, "num_frames": 41, "num_inference_steps": 8})
    assert (chosen["height"], chosen["num_frames"], chosen["num_inference_steps"]) == (496, 41, 8)  # kept as chosen
    lonely = replace(text, image_partner=None)
    with pytest.raises(ValueError, match="no image-capable partner"):
        image_target(lonely)


def test_tiny_image_to_video_end_to_end_through_the_switch(tiny_engine, photo):
    result = tiny_engine.generate("a red ball", use_raw=True, image_path=str(photo), seed=5, num_inference_steps=2)
    record = json.loads(Path(result.sidecar_path).read_text())
    target = get_video_spec("tiny-random-i2v")
    assert record["video_preset"] == "tiny-random-i2v" and record["switched_from"] == "tiny-random"
    assert (record["settings"]["height"], record["settings"]["width"]) == target.sizes["16:9"]
    assert record["settings"]["image_fit"] == "crop" and record["settings"]["fps"] == target.fps
    info = probe(Path(result.video_path))
    assert (info["width"], info["height"], info["frames"]) == (224, 128, target.num_frames)

    # the sidecar stores the processed image: exactly what the pipeline was given
    ref = record["reference_image"]
    stored = Image.open(Path(result.video_path).with_name(ref["path"]))
    assert stored.size == (224, 128) and ref["size"] == [224, 128] and ref["original_size"] == [300, 200]
    assert ref["used_by_video_model"] is True and ref["fit"] == "crop"
    assert list(stored.convert("RGB").getdata()) == list(prepare_reference_image(photo, 128, 224).getdata())
    assert tiny_engine.status(record["video_preset"]).count("tiny-random-i2v") >= 1
    assert "instead of tiny-random" in tiny_engine.status(record["video_preset"])

    # without an image the text preset renders again, with no switch recorded
    plain = tiny_engine.generate("a red ball", use_raw=True, seed=5, num_inference_steps=1)
    plain_record = json.loads(Path(plain.sidecar_path).read_text())
    assert plain_record["video_preset"] == "tiny-random" and plain_record["switched_from"] is None
    assert plain_record["reference_image"] is None


def test_pad_fit_and_an_explicit_size_that_breaks_the_partners_rules(tiny_engine, photo):
    result = tiny_engine.generate(
        "a red ball", use_raw=True, image_path=str(photo), image_fit="pad", num_inference_steps=1
    )
    record = json.loads(Path(result.sidecar_path).read_text())
    assert record["reference_image"]["fit"] == "pad"
    stored = Image.open(Path(result.video_path).with_name(record["reference_image"]["path"]))
    assert stored.getpixel((2, 64)) == (128, 128, 128)  # the 3:2 photo is letterboxed into 16:9 with grey bars
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny_engine.generate("a red ball", use_raw=True, image_path=str(photo), height=80, width=112)
    with pytest.raises(ValueError, match="image_fit"):
        tiny_engine.generate("a red ball", use_raw=True, image_path=str(photo), image_fit="stretch")


@pytest.mark.parametrize("content, message", [(b"not an image at all", "not a readable image"), (None, "at least 16")])
def test_bad_images_are_refused_before_any_model_runs(tiny_engine, tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content is None:
        Image.new("RGB", (1, 1)).save(path)
    else:
        path.write_bytes(content)
    before = len(tiny_engine.gallery.list(limit=1000))
    with pytest.raises(ValueError, match=message):
        tiny_engine.generate("a red ball", use_raw=True, image_path=str(path))
    assert len(tiny_engine.gallery.list(limit=1000)) == before  # refused before a run was recorded


def test_image_rewrite_uses_the_image_template_and_the_description(tiny_engine, photo):
    result = tiny_engine.rewrite(
        "the ball rolls away", 0, image_path=str(photo), image_description="a red disc on blue"
    )
    assert result.template_version.startswith("wan_i2v") and result.target == "tiny-random-i2v"
    result = tiny_engine.generate("the ball rolls away", image_path=str(photo), num_inference_steps=1)
    record = json.loads(Path(result.sidecar_path).read_text())
    assert record["rewrite"]["template_version"].startswith("wan_i2v") and record["rewrite"]["image"] == "unseen"


def test_compare_uses_the_same_image_for_both_sides(tiny_engine, photo):
    result = tiny_engine.compare(
        "a red ball",
        rewritten="A red ball rolls slowly to the left.",
        image_path=str(photo),
        seed=3,
        num_inference_steps=1,
    )
    record = json.loads(Path(result.sidecar_path).read_text())
    assert record["video_preset"] == "tiny-random-i2v" and record["switched_from"] == "tiny-random"
    assert record["reference_image"]["used_by_video_model"] is True
    assert Path(result.sidecar_path).with_name(record["reference_image"]["path"]).is_file()
    for side in (result.raw, result.rewritten):
        assert (probe(Path(side.video_path))["width"], probe(Path(side.video_path))["height"]) == (224, 128)


def test_rerun_of_an_image_run_uses_its_stored_image(tiny_engine, photo):
    result = tiny_engine.generate("a red ball", use_raw=True, image_path=str(photo), seed=9, num_inference_steps=1)
    run_id = json.loads(Path(result.sidecar_path).read_text())["run_id"]
    new_id = tiny_engine.rerun(run_id)
    again = tiny_engine.gallery.get(new_id)
    assert again.video_preset == "tiny-random-i2v" and again.seed == 9 and "reference_image" in again.files


def test_the_image_preset_loaded_directly_renders_text_and_image(tmp_path, photo):
    from pipeline.engine import Engine

    engine = Engine.load("none", "tiny-random-i2v", tmp_path / "out", device="cpu")
    assert type(engine.video.image_pipe).__name__ == "WanImageToVideoPipeline"
    assert (
        type(engine.video.pipe).__name__ == "WanPipeline"
        and engine.video.pipe.transformer is engine.video.image_pipe.transformer
    )
    text = engine.generate("a red ball", use_raw=True, num_inference_steps=1)
    image = engine.generate("a red ball", use_raw=True, image_path=str(photo), num_inference_steps=1)
    for result in (text, image):
        record = json.loads(Path(result.sidecar_path).read_text())
        assert record["video_preset"] == "tiny-random-i2v" and record["switched_from"] is None


def run_cli(*args):
    env = {"HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_image_switches_with_a_notice_and_records_the_processed_image(tmp_path, photo):
    out = tmp_path / "clip.mp4"
    proc = run_cli(
        "generate",
        "a red ball",
        "--rewriter",
        "none",
        "--video",
        "tiny-random",
        "--image",
        str(photo),
        "--image-fit",
        "pad",
        "--steps",
        "1",
        "--seed",
        "4",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "rendering with tiny-random-i2v" in proc.stderr and "instead of tiny-random" in proc.stderr
    record = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
    assert record["video_preset"] == "tiny-random-i2v" and record["reference_image"]["fit"] == "pad"
    assert out.with_suffix(".ref.png").is_file()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_text("just text, named .png"), "not a readable image"),
        (lambda p: Image.new("RGB", (1, 1)).save(p), "at least 16 pixels"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), "not a readable image"),
    ],
)
def test_cli_bad_images_get_a_message_without_traceback(tmp_path, make, message):
    bad = tmp_path / "bad.png"
    make(bad)
    proc = run_cli(
        "generate",
        "a red ball",
        "--rewriter",
        "none",
        "--video",
        "tiny-random",
        "--image",
        str(bad),
        "--out",
        str(tmp_path / "x.mp4"),
    )
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.mp4").exists()


# -- memory planner and the vision rewriter ---------------------------------------------------------
@pytest.mark.parametrize(
    "preset, component, published",
    [
        ("wan2.2-ti2v-5b", "transformer", 5.0e9),  # "TI2V-5B"
        ("ltx-video", "transformer", 1.9e9),  # LTX-Video 2B
        ("ltx-video", "text_encoder", 4.76e9),  # T5-XXL encoder
    ],
)
def test_image_presets_have_memory_figures(preset, component, published):
    from pipeline.memory_models import count_component

    assert count_component(preset, component).params == pytest.approx(published, rel=0.05)


@pytest.mark.parametrize("name", [name for name, spec in VIDEO_PRESETS.items() if spec.offload])
def test_every_video_preset_gets_a_memory_plan(name):
    """Every preset that can be offloaded is planned (toy-world, ~30 MB, is declared resident: offload=())."""
    from pipeline.memory_apply import plan_for
    from pipeline.memory_plan import Budget, latent_tokens

    spec = get_video_spec(name)
    for rewriter in (None, "qwen2.5-vl-3b-instruct"):
        plan = plan_for(spec, rewriter, Budget(24.0, 64.0))
        assert plan.estimated_peak_vram_gb > 0
    assert latent_tokens("ltx-video", replace(plan.settings, num_frames=121, height=480, width=864)) == 16 * 15 * 27


def test_vision_rewriter_is_declared_for_cuda_in_4bit():
    from pipeline.memory_models import count_component
    from prompts.presets import get_rewriter_spec

    spec = get_rewriter_spec("qwen2.5-vl-3b-instruct")
    assert spec.vision and spec.hub_id == "Qwen/Qwen2.5-VL-3B-Instruct" and spec.quantization["cuda"] == "nf4"
    assert count_component(spec.name, "llm").params == pytest.approx(3.75e9, rel=0.02)


@pytest.fixture(scope="module")
def tiny_vision_rewriter():
    """The vision rewriter's real loading and prompting path on a tiny Qwen2.5-VL built locally."""
    from prompts.presets import get_rewriter_spec
    from prompts.vision import load_rewriter

    spec = replace(get_rewriter_spec("tiny-random"), name="tiny-random-vl", vision=True)
    return load_rewriter(spec, "cpu")


def test_vision_rewriter_puts_the_image_tokens_and_pixels_in_its_prompt(tiny_vision_rewriter, photo):
    from prompts.image_templates import load_image_template

    rewriter = tiny_vision_rewriter
    assert type(rewriter).__name__ == "VisionRewriter"
    template = load_image_template("wan", image_path=str(photo))
    inputs = rewriter.llm.tokenizer.apply_chat_template(template.chat_messages("the ball rolls away"), return_dict=True)
    image_id = rewriter.llm.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    grid = inputs["image_grid_thw"][0]
    assert int((inputs["input_ids"] == image_id).sum()) == int(grid.prod()) // 4 > 0  # one per merged 2x2 patch
    assert inputs["pixel_values"].shape[0] == int(grid.prod())


def test_vision_rewriter_rewrites_with_the_image_in_view(tiny_vision_rewriter, photo, monkeypatch):
    from prompts.image_templates import load_image_template

    rewriter, seen = tiny_vision_rewriter, {}
    generate = rewriter.llm.model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return generate(**kwargs)

    monkeypatch.setattr(rewriter.llm.model, "generate", spy)
    template = load_image_template("wan", image_path=str(photo))
    result = rewriter.rewrite("the ball rolls away", rewrite_target(get_video_spec("tiny-random-i2v")), seed=1, template=template)
    assert result.template_version.startswith("wan_i2v") and result.new_tokens > 0
    assert "pixel_values" in seen and "image_grid_thw" in seen
    text_only = rewriter.rewrite("a red ball", rewrite_target(get_video_spec("tiny-random")), seed=1)  # no image: a text rewrite
    assert text_only.template_version.startswith("wan-")


def test_engine_with_a_vision_rewriter_records_that_it_saw_the_image(tiny_vision_rewriter, photo, tmp_path):
    from demo.image_panel import image_handlers
    from pipeline.engine import Engine
    from pipeline.loading import load_video

    engine = Engine(load_video(get_video_spec("tiny-random"), "cpu"), tiny_vision_rewriter, tmp_path / "out")
    assert engine.rewriter_sees_images
    assert "sees the image" in image_handlers(engine).note(str(photo), "")
    result = engine.generate("the ball rolls away", image_path=str(photo), num_inference_steps=1)
    record = json.loads(Path(result.sidecar_path).read_text())
    assert record["rewrite"]["image"] == "seen" and record["rewrite"]["template_version"].startswith("wan_i2v")


def test_engine_tells_vision_rewriters_apart(tiny_engine):
    assert not tiny_engine.rewriter_sees_images  # tiny-random is a text model


@pytest.mark.gpu
def test_qwen_vl_rewriter_sees_the_image_on_cuda(tmp_path, photo):
    from prompts.image_templates import load_image_template
    from prompts.presets import get_rewriter_spec
    from prompts.vision import load_rewriter

    rewriter = load_rewriter(get_rewriter_spec("qwen2.5-vl-3b-instruct"), "cuda")
    assert rewriter.llm.quantization == "nf4"
    template = load_image_template("wan", image_path=str(photo))
    result = rewriter.rewrite("the ball rolls away", rewrite_target(get_video_spec("wan2.2-ti2v-5b")), seed=1, template=template)
    assert result.template_version.startswith("wan_i2v") and result.fallback is None
    assert "red" in result.rewritten.lower()  # it saw the red disc


def test_zerogpu_asks_for_the_partners_render_time_with_an_image():
    from demo.zerogpu import GpuTime

    timing = GpuTime(get_video_spec("wan2.1-t2v-1.3b"), cap=10_000)
    settings = {"height": 480, "width": 832, "num_frames": 81, "num_inference_steps": 30, "rewritten": "x"}
    assert timing.seconds("generate", {**settings, "image": "photo.png"}) > timing.seconds("generate", settings)


def test_zerogpu_loads_the_image_partner_at_start(tmp_path, monkeypatch):
    from pipeline.engine import Engine

    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    engine = Engine.load("none", "tiny-random", tmp_path / "out", device="cpu")
    assert engine._partner is not None and engine._partner.spec.name == "tiny-random-i2v"
    assert engine.loaded("tiny-random").pipe is not None and engine.loaded("tiny-random-i2v").pipe is not None


@pytest.mark.gpu
def test_cuda_image_run_keeps_one_video_model_on_the_gpu(tmp_path, photo):
    from pipeline.engine import Engine

    engine = Engine.load("tiny-random", "tiny-random", tmp_path, device="cuda")
    result = engine.generate("a red ball", use_raw=True, image_path=str(photo), num_inference_steps=2)
    record = json.loads(Path(result.sidecar_path).read_text())
    assert record["device"] == "cuda" and record["video_preset"] == "tiny-random-i2v"
    assert engine.video.pipe is None  # the text preset was dropped while the partner ran
    engine.generate("a red ball", use_raw=True, num_inference_steps=1)  # and comes back when needed
    assert engine.video.pipe is not None and engine._partner.pipe is None
