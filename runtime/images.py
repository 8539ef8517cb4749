"""Reference images: open safely, normalise to RGB, fit to the video's size, reject what is not an image."""

from __future__ import annotations

from pathlib import Path

MAX_IMAGE_BYTES = 50 * 1024 * 1024  # 50 MB: any real photo fits; larger is almost surely not one
MAX_IMAGE_PIXELS = 50_000_000  # ~8K x 6K; also keeps decompression bombs out
MIN_IMAGE_SIDE = 16  # smaller holds too little to condition a video on (a 1x1 image is one colour)
MAX_ASPECT = 8.0  # wider or taller than 8:1 (a banner, a strip) would lose almost everything when cropped
FITS = ("crop", "pad")  # crop: fill the frame, cut the overflow; pad: keep the whole image, neutral bars
NEUTRAL = (128, 128, 128)  # grey under transparency and in the pad bars: no colour cast for the model


def load_reference_image(path: str | Path):
    """Open an image file as RGB: EXIF orientation applied, the first frame of an animation, alpha on
    neutral grey, palette, CMYK and 16-bit converted. Raises ValueError saying why a file is refused."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    # 1. Cheap checks before decoding anything
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"The reference image {path.name!r} does not exist.")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise ValueError(f"The reference image is {size / 2**20:.0f} MB; the limit is {MAX_IMAGE_BYTES // 2**20} MB.")
    try:
        with Image.open(path) as img:
            # 2. Dimensions from the header, before the pixels are decoded
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"The reference image is {img.width}x{img.height}; the limit is {MAX_IMAGE_PIXELS // 10**6} megapixels."
                )
            if min(img.width, img.height) < MIN_IMAGE_SIDE:
                raise ValueError(
                    f"The reference image is {img.width}x{img.height}; it needs at least {MIN_IMAGE_SIDE} pixels on each side."
                )
            if max(img.width, img.height) > MAX_ASPECT * min(img.width, img.height):
                raise ValueError(
                    f"The reference image is {img.width}x{img.height}, more than {MAX_ASPECT:g}:1; crop it closer to the video's shape."
                )
            # 3. Decode the first frame (animations), upright as the camera held it
            img.seek(0)
            img.load()  # a truncated file fails here, inside the try
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        raise ValueError(f"The file {path.name!r} is not a readable image ({type(err).__name__}).") from None


def fit_image(image, height: int, width: int, fit: str = "crop"):
    """`image` resized to exactly width x height: center-cropped to the aspect ("crop") or letterboxed on
    neutral grey ("pad"). The size comes from a validated request, so it honours the preset's size multiple."""
    from PIL import Image, ImageOps

    if fit not in FITS:
        raise ValueError(f"image fit must be one of {', '.join(FITS)}, got {fit!r}.")
    if fit == "crop":
        return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    return ImageOps.pad(image, (width, height), Image.Resampling.LANCZOS, color=NEUTRAL, centering=(0.5, 0.5))


def prepare_reference_image(path: str | Path, height: int, width: int, fit: str = "crop"):
    """The image the video model is conditioned on (and the sidecar stores): loaded, normalised and fitted."""
    return fit_image(load_reference_image(path), height, width, fit)


def _to_rgb(img):
    """Any PIL mode to 8-bit RGB without surprises (a plain convert clips 16-bit and drops alpha to black)."""
    import numpy as np
    from PIL import Image

    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):  # 16/32-bit grey: scale, don't clip
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0
        if img.mode == "F" and values.max() <= 1.0:
            top = 1.0
        img = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (img.mode in ("P", "RGB", "L") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*NEUTRAL, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")  # CMYK, YCbCr, palette, 1-bit and grey become RGB here
