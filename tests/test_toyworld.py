"""The toy world: deterministic renderer and captions, a detector that reads ground truth, the PCA VAE, the
training script at a few seconds, and the committed weights loaded through the preset loader."""

import numpy as np
import pytest
import torch

from pipeline.toyworld.captions import caption, stated
from pipeline.toyworld.detector import detect
from pipeline.toyworld.world import (
    BACKGROUND_COLORS,
    DIRECTIONS,
    FRAMES,
    OBJECT_COLORS,
    SIZE,
    held_out,
    render,
    render_with_mask,
    sample_scene,
)


def scenes(seed: int, n: int, **fixed):
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, **fixed) for _ in range(n)]


def test_renderer_is_deterministic_by_seed():
    first, again, other = scenes(5, 20), scenes(5, 20), scenes(6, 20)
    assert first == again and first != other
    for a, b in zip(first, again, strict=False):
        clip = render(a)
        assert clip.shape == (FRAMES, SIZE, SIZE, 3) and clip.dtype == np.uint8
        assert np.array_equal(clip, render(b))


def test_captions_are_deterministic_by_seed_and_varied():
    def captions(seed):
        rng = np.random.default_rng(seed)
        return [caption(sample_scene(rng), rng) for _ in range(200)]

    first = captions(3)
    assert first == captions(3) and first != captions(4)
    assert len(set(first)) == len(first)
    lengths = [len(c.split()) for c in first]
    assert min(lengths) <= 3 and max(lengths) >= 30  # short ones and long ones padded with filler


def test_detector_reads_rendered_ground_truth():
    hits = {"color": 0, "background": 0, "direction": 0}
    cases = scenes(11, 300, count=1)
    moving = [s for s in cases if s.things[0].motion in DIRECTIONS]
    for scene in cases:
        found = detect(render(scene))
        hits["color"] += found.color == scene.things[0].color
        hits["background"] += found.background == scene.bg_color
        if scene.things[0].motion in DIRECTIONS:
            hits["direction"] += found.direction == scene.things[0].motion
    assert hits["color"] / len(cases) >= 0.98
    assert hits["background"] / len(cases) >= 0.98
    assert len(moving) > 50 and hits["direction"] / len(moving) >= 0.98
    for still in scenes(12, 40, count=1, motion="still", camera="static"):
        assert detect(render(still)).direction is None


def test_detector_sees_both_objects_and_takes_floats():
    for scene in scenes(13, 30, count=2):
        clip = render(scene)
        assert {t.color for t in scene.things} <= set(detect(clip).areas)
        assert detect(clip.astype(np.float32) / 255).color == detect(clip).color


def test_stated_reads_full_captions_and_ignores_camera_pans():
    rng = np.random.default_rng(21)
    total = right = 0
    for scene in scenes(21, 200, count=1):
        if scene.things[0].motion not in DIRECTIONS:
            continue
        text = caption(scene, rng, keep={"color": 1, "motion": 1, "background": 1})
        total += 1
        right += stated(text) == {
            "color": scene.things[0].color,
            "direction": scene.things[0].motion,
            "background": scene.bg_color,
        }
    assert right / total >= 0.98
    assert stated("a ball moving") == {"color": None, "direction": None, "background": None}
    assert stated("A red ball rolls left to right, the camera pans left, on a cyan backdrop")["direction"] == "right"
    assert stated("a green star under a cyan sky")["color"] == "green"


def test_held_out_combinations_are_an_eighth_and_never_sampled_for_training():
    from pipeline.toyworld.train import eval_prompts, make_data

    assert all(held_out(scene) for _, scene in eval_prompts(10))
    _, masks, texts = make_data(40, seed=0)
    assert len(texts) == 40 and masks.shape == (40, FRAMES, SIZE, SIZE)
    combos = {(c, d, b) for c in OBJECT_COLORS for d in DIRECTIONS for b in BACKGROUND_COLORS}
    assert len(combos) == 160


def test_vae_round_trip_and_save_load(tmp_path):
    from pipeline.toyworld.vae import ToyVideoVAE

    clips = np.stack([render(s) for s in scenes(1, 64)])
    vae = ToyVideoVAE()
    vae.fit(clips)
    x = torch.from_numpy(clips[:4]).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)
    z = vae.encode(x).latent_dist.mode()
    assert z.shape == (4, 16, (FRAMES - 1) // 2 + 1, SIZE // 4, SIZE // 4)
    back = vae.decode(z).sample
    assert back.shape == x.shape and 10 * torch.log10(4 / (back - x).pow(2).mean()) > 24  # PSNR in dB
    vae.save_pretrained(tmp_path)
    loaded = ToyVideoVAE.from_pretrained(tmp_path)
    assert loaded.config.latents_std == vae.config.latents_std
    assert torch.equal(loaded.decode(z).sample, back)


def test_training_smoke_writes_a_loadable_pipeline(tmp_path):
    from diffusers import WanPipeline

    from pipeline.toyworld.model import ensure_toyworld
    from pipeline.toyworld.train import train

    torch.set_num_threads(1)
    out = tmp_path / "weights"
    result = train(out, minutes=0.02, clips=48, batch=4, save_minutes=100, eval_count=1)
    assert result["step"] >= 1 and (tmp_path / "weights_training_log.jsonl").exists()
    pipe = WanPipeline.from_pretrained(ensure_toyworld(tmp_path / "cache", out))
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(
        "a red ball",
        height=32,
        width=32,
        num_frames=9,
        num_inference_steps=2,
        max_sequence_length=128,
        output_type="np",
    ).frames[0]
    assert frames.shape == (FRAMES, SIZE, SIZE, 3)


def test_pooled_prompt_ignores_padding_and_reads_word_order():
    from pipeline.toyworld.transformer import pooled_prompt

    left, to, right = torch.randn(3, 384, generator=torch.Generator().manual_seed(0))
    forward = torch.stack([left, to, right])  # "left to right"
    backward = torch.stack([right, to, left])  # "right to left": the same words
    padded = torch.cat([forward, torch.zeros(5, 384)])  # the pipeline zero-pads to max_sequence_length
    a, b = pooled_prompt(torch.stack([forward, backward]))
    assert torch.allclose(a[:384], b[:384], atol=1e-6) and not torch.allclose(a[384:], b[384:], atol=1e-3)
    assert torch.allclose(pooled_prompt(padded[None])[0], a, atol=1e-6)  # sums in another order round differently


@pytest.fixture(scope="module")
def toy_video():
    from pipeline.loading import load_video
    from pipeline.presets import get_video_spec

    torch.set_num_threads(1)
    return load_video(get_video_spec("toy-world"), "cpu")


def test_committed_weights_load_through_the_preset_loader(toy_video):
    from diffusers import WanTransformer3DModel
    from transformers import BertModel

    pipe = toy_video.pipe
    assert type(pipe).__name__ == "WanPipeline" and isinstance(pipe.text_encoder, BertModel)
    assert type(pipe.vae).__name__ == "ToyVideoVAE" and isinstance(pipe.transformer, WanTransformer3DModel)
    assert sum(p.numel() for p in pipe.transformer.parameters()) < 5_000_000


@pytest.mark.parametrize("color", ["red", "blue"])
def test_committed_weights_draw_the_prompted_color(toy_video, color):
    spec = toy_video.spec
    frames = toy_video.pipe(
        prompt=f"a {color} ball moving left to right on a gray background",
        negative_prompt="",
        height=spec.height,
        width=spec.width,
        num_frames=spec.num_frames,
        num_inference_steps=spec.num_inference_steps,
        guidance_scale=spec.guidance_scale,
        max_sequence_length=spec.token_limit,
        generator=torch.Generator("cpu").manual_seed(0),
        output_type="np",
    ).frames[0]
    found = detect(frames)
    assert found.color == color and found.background == "gray"


def test_render_with_mask_covers_the_objects():
    scene = scenes(2, 1, count=1, size="large", motion="still")[0]
    clip, mask = render_with_mask(scene)
    assert mask.max() == 1.0 and 0.05 < mask.mean() < 0.5
    inside = clip[mask > 0.99].astype(int)
    assert np.abs(inside - np.array(OBJECT_COLORS[scene.things[0].color])).max() <= 1


def test_compare_pairs_a_vague_prompt_with_its_rewrite(toy_video, tmp_path):
    import av

    from pipeline.engine import Engine

    engine = Engine(toy_video, None, tmp_path)
    rewritten = "A blue ball moving left to right on a plain gray background. Soft light, smooth motion."
    result = engine.compare("a ball moving", rewritten=rewritten, seed=4)
    assert result.raw.seed == result.rewritten.seed == 4
    with av.open(str(result.rewritten.video_path)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert frames.shape == (FRAMES, SIZE, SIZE, 3)
    assert detect(frames).color == "blue"  # the rewrite's color survives H.264 at 32x32


def test_world_scene_keeps_one_path_and_drops_what_the_world_does_not_hold():
    from pipeline.toyworld.captions import world_scene

    text = (
        "A blue box slides from right to left. It glows softly on a teal background. Then it rises upward. "
        "I think it looks lonely. The camera pans right. It spins in place. Nobody knows why."
    )
    kept, note = world_scene(text)
    assert kept == "A blue box slides from right to left. It glows softly on a teal background. The camera pans right."
    assert "4 sentence" in note
    longer = "A red ball rolls from left to right. It drops from the top of the screen to the bottom."
    assert world_scene(longer)[0] == "A red ball rolls from left to right."
    plain = "A red ball rolls from left to right. It keeps going to the right under a gray sky."
    assert world_scene(plain) == (plain, None)
    # The first sentence is the user's own idea: always kept
    assert world_scene("I want a ball. A red ball rolls left.")[0] == "I want a ball. A red ball rolls left."


def test_world_scene_drops_sentences_naming_another_color_background_or_shape():
    from pipeline.toyworld.captions import world_scene

    text = (
        "A star: a red star moves from left to right on a plain gray background. Blue stars, a cloudy sky. "
        "Soft light over the pink backdrop. A box sits nearby. The red star keeps an even pace. Calm mood."
    )
    assert world_scene(text)[0] == (
        "A star: a red star moves from left to right on a plain gray background. "
        "The red star keeps an even pace. Calm mood."
    )
    # A later sentence may add what the first left open, once
    added = "A box slides from right to left. It glows softly on a teal background."
    assert world_scene(added) == (added, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("A red ball moves from left to right on a gray background.", None),
        ("A star falls from the top of the frame to the bottom. It does not rotate.", None),
        ("A purple star spins in place on a soft gray gradient.", None),
        ("A red circle is rolling downwards from the left corner of the frame.", "more than one path"),
        ("A triangle rises from the top of the frame to the bottom.", "more than one path"),
        ("A green block rotates gently from left to right.", "more than one path"),
        ("A cube going up: a green cube goes from left to right.", "more than one path"),
        ("A blue ball in a grassy gray background.", "no motion"),
    ],
)
def test_world_check_wants_one_path_or_one_other_motion(text, problem):
    from pipeline.toyworld.captions import paths, world_check

    found = world_check(text)
    assert (found is None) if problem is None else (problem in found)
    assert paths("The camera pans left as a ball moves from left to right.") == {"right"}


def test_drawable_scene_restates_one_clear_scene_in_the_training_grammar():
    from pipeline.toyworld.captions import drawable_scene, stated

    text = (
        "A ball rolling: a yellow ball rolls steadily across from the left edge to the right over grey. Soft light."
        " It glides on toward the far side."  # the scene again in other words: not filler, dropped
    )
    out, note = drawable_scene(text, "A ball rolling")
    assert out == "A ball rolling: a yellow ball moving left to right on a plain gray background. Soft light."
    assert stated(out) == {"color": "yellow", "direction": "right", "background": "gray"} and "restated" in note
    sky = drawable_scene("A star: a white star spins slowly under a teal sky.", "A star")[0]
    assert sky == "A star: a white star spinning under a teal sky."
    # without an opening (a chat rewriter) no sentence is replaced: the clause goes first
    plain = "A green box rises slowly over the frame. Calm mood."
    assert drawable_scene(plain)[0] == "A green box moving up. " + plain


def test_drawable_scene_puts_the_ideas_motion_first_and_settles_several_paths_by_the_full_phrase():
    from pipeline.toyworld.captions import drawable_scene

    # the rewrite names two paths; "from left to right" is the one stated in full
    out, note = drawable_scene("A cube: a blue cube slides down from left to right.", "A cube")
    assert out == "A cube: a blue cube moving left to right." and "(right)" in note
    # the idea's own motion wins over the rewrite's
    assert drawable_scene("A cube going up: a red cube slides from left to right.", "A cube going up")[0] == (
        "A cube going up: a red cube moving up."
    )
    assert drawable_scene("A spinning star: a star spins from left to right.", "A spinning star")[0] == (
        "A spinning star: a star spinning."
    )
    # nothing to go on (no motion named): left as it is, for the rewriter's check to try another seed
    still = "A box: a box on a gray background."
    assert drawable_scene(still, "A box")[0] == still
