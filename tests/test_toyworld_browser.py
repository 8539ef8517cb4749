"""The app on the toy-world preset in a real browser: it says what the model draws, and a generated clip plays.
The screenshot goes to tests/artifacts/toyworld-generated.png (git-ignored)."""

import pytest
from playwright.sync_api import expect

from pipeline.presets import get_video_spec
from tests.launched import launched_app
from tests.test_browser import browser, idle, loaded_video, open_app, shot  # noqa: F401  (browser is a fixture)

SPEC = get_video_spec("toy-world")


@pytest.fixture(scope="module")
def toy_server(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("toyworld-outputs")
    with launched_app(outputs, RR_VIDEO="toy-world") as (_, url):
        yield url, outputs


def test_toy_world_says_what_it_draws_and_plays_a_generated_clip(browser, toy_server):  # noqa: F811
    page = open_app(browser, toy_server)
    try:
        expect(page.locator("#model-about")).to_contain_text("ball, box, triangle, star")
        # what a person expects before any run, on a square-only preset with no image-to-video model
        expect(page.locator("#aspect")).to_contain_text("toy-world has one size for every aspect: 32x32")
        assert all(radio.is_disabled() for radio in page.locator("#aspect input").all())
        expect(page.locator("#seed-used")).to_be_hidden()  # not a misleading 0 before any run
        expect(page.locator("#sidecar")).not_to_contain_text("Drop File Here")
        expect(page.locator("#image")).to_contain_text("toy-world has no image-to-video model")
        expect(page.locator("#image")).not_to_contain_text("Drop File Here")
        for control in ("#image-description", "#image-view", "#image-note"):  # nothing to fit or describe
            expect(page.locator(control)).to_be_hidden()
        example = SPEC.examples[0]
        page.get_by_text(example, exact=True).first.click()  # the UI offers prompts this model renders
        expect(page.locator("#prompt textarea")).to_have_value(example)
        page.get_by_label("Use my prompt as written (skip the rewrite)").check()
        page.click("#generate-btn")
        state = loaded_video(page, "#video")
        assert state["error"] is None and state["duration"] > 0
        assert (state["width"], state["height"]) == (SPEC.width, SPEC.height)
        expect(page.locator("#seed-used input")).to_be_visible()
        expect(page.locator("#sidecar")).to_contain_text(".json")
        idle(page, "#video")
        page.locator("#video video").evaluate("el => { el.pause(); el.currentTime = el.duration / 2; }")
        shot(page, "toyworld-generated")
    finally:
        page.close()
