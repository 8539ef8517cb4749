"""Reference image preprocessing over a matrix of images made here: each mode, shape and kind of bad file."""

import numpy as np
import pytest
from PIL import Image

from runtime import images
from runtime.images import fit_image, load_reference_image, prepare_reference_image

RED = (255, 0, 0)


def _exif_rotated(path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img = Image.new("RGB", (60, 30), "white")
    img.paste(Image.new("RGB", (10, 30), RED), (0, 0))  # red strip on the stored left edge: the top once upright
    img.save(path, exif=exif)


def _rgba(path):
    Image.new("RGBA", (40, 40), (255, 0, 0, 0)).save(path)  # fully transparent red


def _cmyk(path):
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(path)  # pure red in CMYK


def _palette(path):
    img = Image.new("P", (40, 30), 1)
    img.putpalette([0, 0, 0, *RED] + [0] * 762)
    img.save(path)


def _palette_transparent(path):
    img = Image.new("P", (40, 30), 0)
    img.putpalette([*RED] + [0] * 765)
    img.info["transparency"] = 0
    img.save(path, transparency=0)


def _sixteen_bit(path):
    Image.fromarray(np.full((30, 40), 65535 // 2, dtype=np.uint16)).save(path)  # mid grey at 16 bits


def _grayscale(path):
    Image.new("L", (40, 30), 200).save(path)


def _animated(path):
    frames = [Image.new("P", (40, 30), i) for i in range(3)]
    for i, frame in enumerate(frames):
        frame.putpalette([*RED, 0, 255, 0, 0, 0, 255] + [0] * 759)
        frames[i] = frame
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _one_bit(path):
    Image.new("1", (40, 30), 1).save(path)


# name, file name, maker, (width, height) once upright, the pixel at (1, 1) after loading
MATRIX = [
    ("rotated EXIF", "rot.jpg", _exif_rotated, (30, 60), None),
    ("RGBA", "a.png", _rgba, (40, 40), images.NEUTRAL),
    ("CMYK", "c.jpg", _cmyk, (40, 30), RED),
    ("palette", "p.png", _palette, (40, 30), RED),
    ("palette with transparency", "pt.png", _palette_transparent, (40, 30), images.NEUTRAL),
    ("16-bit", "g16.png", _sixteen_bit, (40, 30), (128, 128, 128)),
    ("grayscale", "g.png", _grayscale, (40, 30), (200, 200, 200)),
    ("animated GIF", "anim.gif", _animated, (40, 30), RED),
    ("1-bit", "b.png", _one_bit, (40, 30), (255, 255, 255)),
]


@pytest.mark.parametrize("name, filename, make, size, pixel", MATRIX, ids=[m[0] for m in MATRIX])
def test_every_kind_of_image_becomes_upright_rgb(tmp_path, name, filename, make, size, pixel):
    path = tmp_path / filename
    make(path)
    img = load_reference_image(path)
    assert img.mode == "RGB" and img.size == size
    if pixel is not None:
        assert all(abs(a - b) <= 3 for a, b in zip(img.getpixel((1, 1)), pixel, strict=True)), img.getpixel((1, 1))
    # and each fits any preset size exactly
    fitted = prepare_reference_image(path, 128, 224)
    assert fitted.mode == "RGB" and fitted.size == (224, 128)


def test_exif_orientation_puts_the_top_on_top(tmp_path):
    path = tmp_path / "rot.jpg"
    _exif_rotated(path)
    img = load_reference_image(path)
    top, bottom = img.getpixel((15, 2)), img.getpixel((15, 57))
    assert top[0] > 200 and top[1] < 80, top  # the red strip
    assert bottom == (255, 255, 255) or min(bottom) > 240


def test_crop_fills_the_frame_and_pad_keeps_the_whole_image(tmp_path):
    wide = Image.new("RGB", (400, 100), RED)
    cropped = fit_image(wide, 128, 224, "crop")
    padded = fit_image(wide, 128, 224, "pad")
    assert cropped.size == padded.size == (224, 128)
    assert cropped.getpixel((112, 2)) == RED  # filled to the edge
    assert padded.getpixel((112, 2)) == images.NEUTRAL  # grey bars above and below
    assert padded.getpixel((112, 64)) == RED
    with pytest.raises(ValueError, match="image fit"):
        fit_image(wide, 128, 224, "stretch")


def test_center_crop_keeps_the_middle(tmp_path):
    img = Image.new("RGB", (300, 100), (0, 0, 255))
    img.paste(Image.new("RGB", (100, 100), RED), (100, 0))  # red middle third
    out = fit_image(img, 96, 96, "crop")
    assert out.getpixel((48, 48)) == RED and out.getpixel((2, 48)) == RED


@pytest.mark.parametrize(
    "size, message",
    [((1, 1), "at least 16 pixels"), ((15, 200), "at least 16 pixels"), ((2000, 100), "more than 8:1")],
    ids=["1x1", "too thin", "very wide"],
)
def test_degenerate_shapes_are_refused(tmp_path, size, message):
    path = tmp_path / "odd.png"
    Image.new("RGB", size, RED).save(path)
    with pytest.raises(ValueError, match=message):
        load_reference_image(path)


def test_a_wide_image_within_limits_fits_both_ways(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (700, 100), RED).save(path)
    assert prepare_reference_image(path, 128, 224, "crop").size == (224, 128)
    assert prepare_reference_image(path, 128, 224, "pad").getpixel((112, 2)) == images.NEUTRAL


def test_over_the_pixel_limit_is_refused_from_the_header(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (10_000, 6_000), 0).save(path)  # 60 megapixels, a few KB on disk
    with pytest.raises(ValueError, match="megapixels"):
        load_reference_image(path)


def test_over_the_byte_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (64, 64), RED).save(path)
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 100)
    with pytest.raises(ValueError, match="limit is 0 MB|MB; the limit"):
        load_reference_image(path)


def test_truncated_file_is_refused(tmp_path):
    whole = tmp_path / "whole.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match="not a readable image"):
        load_reference_image(cut)


@pytest.mark.parametrize("content", [b"", b"hello, this is a text file\n", b"\x89PNG\r\n\x1a\n garbage", b"%PDF-1.4 x"])
def test_non_images_are_rejected_clearly(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable image"):
        load_reference_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_reference_image(tmp_path / "nope.png")
