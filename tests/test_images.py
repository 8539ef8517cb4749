import pytest
from PIL import Image

from pipeline.images import load_reference_image


def test_alpha_is_composited_on_grey(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(path)
    img = load_reference_image(path)
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (128, 128, 128)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.new("RGB", (40, 20), "white").save(path, exif=exif)
    assert load_reference_image(path).size == (20, 40)


def test_palette_and_animated_images(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("P", (8, 8), i) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert load_reference_image(path).size == (8, 8)


@pytest.mark.parametrize("content", [b"", b"hello", b"\x89PNG\r\n\x1a\n garbage"])
def test_non_images_are_rejected_clearly(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable image"):
        load_reference_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_reference_image(tmp_path / "nope.png")
