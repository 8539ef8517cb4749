"""Every size a tiny preset advertises, and every size its rule accepts at the edges, renders through its pipeline."""

import pytest
import torch

from pipeline.presets import ASPECTS, VIDEO_PRESETS

TINY = [name for name, spec in VIDEO_PRESETS.items() if spec.hub_id is None]


@pytest.fixture(scope="module", params=TINY)
def engine(request, tmp_path_factory):
    from pipeline.engine import Engine

    torch.set_num_threads(1)
    return Engine.load("none", request.param, tmp_path_factory.mktemp(request.param), device="cpu")


def _sizes(spec) -> set[tuple[int, int]]:
    """The default and preview sizes, plus the smallest and largest square the size rule accepts."""
    m, top = spec.size_multiple, spec.max_side - spec.max_side % spec.size_multiple
    return {*spec.sizes.values(), *spec.preview_sizes.values(), (m, m), (top, top)}


def test_each_advertised_and_accepted_size_renders(engine):
    spec = engine.spec
    for height, width in sorted(_sizes(spec)):
        result = engine.generate(
            "a red ball",
            use_raw=True,
            height=height,
            width=width,
            num_frames=spec.frame_step + 1,
            num_inference_steps=1,
            seed=1,
        )
        assert result.video_path.endswith(".mp4"), (spec.name, height, width)


def test_sizes_off_the_rule_are_refused_before_any_model_runs(engine):
    spec = engine.spec
    before = len(engine.gallery.list())
    for bad in (spec.size_multiple // 2, spec.size_multiple + spec.size_multiple // 2):
        with pytest.raises(ValueError, match=f"multiple of {spec.size_multiple}"):
            engine.build("a red ball", height=bad, width=spec.size_multiple)
    assert len(engine.gallery.list()) == before


@pytest.mark.parametrize("aspect", ASPECTS)
def test_the_preview_size_the_app_picks_renders(engine, aspect):
    spec = engine.spec
    height, width = spec.sizes[aspect]
    result = engine.variations("a red ball", use_raw=True, count=1, seed=2, height=height, width=width)
    assert len(result.previews) == 1
    assert (result.preview_settings["height"], result.preview_settings["width"]) == spec.preview_sizes[aspect]
