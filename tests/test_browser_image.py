"""The reference image in a real browser: upload, the processed preview, the switch in the status line,
the image-to-video render, and a bad file's error toast."""

from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests import test_browser
from tests.test_browser import idle, loaded_video, shot

# the browser tests' fixtures: chromium, the app on the tiny presets (launched for this module), a fresh page
browser, server, page = test_browser.browser, test_browser.server, test_browser.page


def _photo(path):
    img = Image.new("RGB", (300, 200), (20, 40, 200))
    ImageDraw.Draw(img).ellipse((100, 50, 200, 150), fill=(230, 30, 30))
    img.save(path)
    return path


def test_image_switches_to_the_partner_and_shows_the_processed_image(page, server, tmp_path):
    page.get_by_label("Prompt", exact=True).fill("the ball rolls to the left")
    page.get_by_label("Use my prompt as written (skip the rewrite)").check()
    page.locator("#image input[type=file]").set_input_files(str(_photo(tmp_path / "photo.png")))

    note = page.locator("#image-note")
    expect(note).to_contain_text("tiny-random-i2v")
    expect(note).to_contain_text("does not see the image")
    expect(page.locator("#status")).to_contain_text("instead of tiny-random")
    preview = page.locator("#image-view img")
    expect(preview).to_have_count(1)
    page.wait_for_function("() => document.querySelector('#image-view img').naturalWidth > 0")
    assert preview.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [224, 128]  # fitted to the video

    page.get_by_label("Describe your image (optional)").fill("a red disc on a blue wall")
    expect(note).to_contain_text("reads your description")

    page.click("#generate-btn")
    state = loaded_video(page, "#video")
    assert (state["width"], state["height"]) == (224, 128) and state["error"] is None
    idle(page, "#video")
    expect(page.locator("#status")).to_contain_text("rendering with tiny-random-i2v")
    shot(page, "5-image-to-video")


def test_a_text_file_named_png_gets_an_error_toast(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    page.locator("#image input[type=file]").set_input_files(str(bad))
    toast = page.locator("[data-testid=toast-body].error")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("not a readable image")
