"""Reference images: open safely, normalise to RGB, reject what is not an image."""

from __future__ import annotations

from pathlib import Path

MAX_IMAGE_BYTES = 50 * 1024 * 1024  # 50 MB: any real photo fits; larger is almost surely not one
MAX_IMAGE_PIXELS = 50_000_000  # ~8K x 6K; also keeps decompression bombs out


def load_reference_image(path: str | Path):
    """Open an image file as RGB (EXIF orientation applied), or raise ValueError saying why not."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"The reference image {path.name!r} does not exist.")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise ValueError(f"The reference image is {size / 2**20:.0f} MB; the limit is {MAX_IMAGE_BYTES // 2**20} MB.")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"The reference image is {img.width}x{img.height}; the limit is {MAX_IMAGE_PIXELS // 10**6} megapixels."
                )
            img.seek(0)  # animated images: the first frame
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "P", "PA"):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (128, 128, 128, 255))  # neutral grey under alpha
                img = Image.alpha_composite(background, rgba)
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"The file {path.name!r} is not a readable image ({type(err).__name__}).") from None
