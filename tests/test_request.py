import pytest

from pipeline.presets import VIDEO_PRESETS, get_video_spec
from pipeline.request import MAX_PROMPT_CHARS, build_request, check_prompt


def test_defaults_come_from_the_preset(tiny_spec):
    req = build_request(tiny_spec, "  a red ball  ", seed=7)
    assert req.prompt == "a red ball"
    assert (req.height, req.width, req.num_frames) == (tiny_spec.height, tiny_spec.width, tiny_spec.num_frames)
    assert req.num_inference_steps == tiny_spec.num_inference_steps
    assert req.seed == 7 and req.prompt_used == "a red ball"


def test_random_seed_when_none_or_negative(tiny_spec):
    seeds = {build_request(tiny_spec, "x", seed=-1).seed for _ in range(5)}
    assert len(seeds) > 1 and all(0 <= s < 2**32 for s in seeds)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"height": 65}, "multiple of 16"),
        ({"width": 8}, "multiple of 16"),
        ({"width": 4096}, "multiple of 16"),
        ({"num_frames": 10}, r"4k\+1"),
        ({"num_frames": 0}, r"4k\+1"),
        ({"num_frames": 1001}, r"4k\+1"),
        ({"num_inference_steps": 0}, "out of range"),
        ({"num_inference_steps": 1000}, "out of range"),
        ({"guidance_scale": -1.0}, "out of range"),
        ({"seed": 2**40}, "out of range"),
        ({"height": 64.5}, "whole number"),
    ],
)
def test_invalid_settings_are_rejected_not_rounded(tiny_spec, settings, message):
    with pytest.raises(ValueError, match=message):
        build_request(tiny_spec, "a red ball", **settings)


@pytest.mark.parametrize("bad", ["", "   \n\t", None, 12, "x" * (MAX_PROMPT_CHARS + 1)])
def test_bad_prompts_get_clear_messages(bad):
    with pytest.raises(ValueError, match="prompt"):
        check_prompt(bad)


def test_rewritten_prompt_is_checked_too(tiny_spec):
    with pytest.raises(ValueError, match="rewritten prompt"):
        build_request(tiny_spec, "ok", rewritten="y" * (MAX_PROMPT_CHARS + 5))
    assert build_request(tiny_spec, "ok", rewritten="   ").rewritten is None


@pytest.mark.parametrize("name", list(VIDEO_PRESETS))
def test_every_preset_default_is_valid(name):
    spec = get_video_spec(name)
    for h, w in spec.sizes.values():
        build_request(spec, "x", height=h, width=w, seed=1)
    assert (spec.frames_for_seconds(1.0) - 1) % spec.frame_step == 0
    assert spec.frames_for_seconds(1e6) == spec.max_frames


def test_wan_duration_maps_to_4k_plus_1():
    wan = get_video_spec("wan2.1-t2v-1.3b")
    assert wan.frames_for_seconds(5.0) == 81 and wan.frames_for_seconds(2.0) == 33


def test_unknown_preset_names_list_the_choices():
    with pytest.raises(ValueError, match="tiny-random"):
        get_video_spec("nope")
