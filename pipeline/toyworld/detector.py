"""The world's own detector: background color from the top rows, object colors from color masks, motion
direction from the dominant object's centroid over time. Scores generated clips against prompts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.toyworld.world import BACKGROUND_COLORS, OBJECT_COLORS, SHADE

MATCH = 70.0  # RGB distance within which a pixel counts as an object color (generated colors drift a little)
MIN_PIXELS = 3  # an object color needs this many pixels in a frame to count there
MIN_TRAVEL = 0.2  # centroid travel (fraction of the side) below which a clip has no direction


@dataclass(frozen=True)
class Detection:
    background: str
    color: str | None  # the object color covering the most pixels over the clip
    direction: str | None  # right, left, up, down, or None when the object does not travel
    travel: tuple[float, float]  # (dx, dy) of the dominant object's centroid, fractions of the side
    areas: dict[str, float]  # mean pixels per frame for each object color present


def detect(clip: np.ndarray) -> Detection:
    """`clip`: (frames, height, width, 3) uint8 or float in [0, 1]."""
    clip = np.asarray(clip)
    if clip.dtype != np.uint8:
        clip = np.clip(clip * 255 + 0.5, 0, 255)
    clip = clip.astype(np.float32)
    frames, height, width, _ = clip.shape
    background = _background(clip)
    bg = np.array(BACKGROUND_COLORS[background], np.float32)
    # distance to the background's shade line (every gradient and horizon shade lies between SHADE*c and c)
    f = np.clip((clip @ bg) / (bg @ bg), SHADE, 1.0)
    bg_dist = np.linalg.norm(clip - f[..., None] * bg, axis=-1)
    palette = np.array(list(OBJECT_COLORS.values()), np.float32)
    dists = np.linalg.norm(clip[..., None, :] - palette, axis=-1)  # (T, H, W, colors)
    nearest = dists.argmin(-1)
    best = dists.min(-1)
    is_object = (best < MATCH) & (best < bg_dist)
    names = list(OBJECT_COLORS)
    areas, masks = {}, {}
    for k, name in enumerate(names):
        mask = is_object & (nearest == k)
        counts = mask.sum((1, 2))
        if (counts >= MIN_PIXELS).any():
            areas[name] = float(counts.mean())
            masks[name] = mask
    if not areas:
        return Detection(background, None, None, (0.0, 0.0), {})
    color = max(areas, key=areas.get)
    dx, dy = _travel(masks[color], width, height)
    direction = None
    if max(abs(dx), abs(dy)) >= MIN_TRAVEL:
        direction = ("right" if dx > 0 else "left") if abs(dx) >= abs(dy) else ("down" if dy > 0 else "up")
    return Detection(background, color, direction, (round(dx, 3), round(dy, 3)), areas)


def _background(clip: np.ndarray) -> str:
    """Nearest named background to the median of the top two rows over the clip (objects rarely cover them)."""
    top = np.median(clip[:, :2].reshape(-1, 3), axis=0)
    names = list(BACKGROUND_COLORS)
    dists = [np.linalg.norm(top - np.array(BACKGROUND_COLORS[n], np.float32)) for n in names]
    return names[int(np.argmin(dists))]


def _travel(mask: np.ndarray, width: int, height: int) -> tuple[float, float]:
    """Least-squares slope of the centroid over the frames where the object shows, times the clip length."""
    frames = mask.shape[0]
    ts, xs, ys = [], [], []
    for t in range(frames):
        yy, xx = np.nonzero(mask[t])
        if len(xx) >= MIN_PIXELS:
            ts.append(t)
            xs.append(xx.mean() / width)
            ys.append(yy.mean() / height)
    if len(ts) < 2:
        return 0.0, 0.0
    ts = np.array(ts, np.float32)
    span = frames - 1
    return float(np.polyfit(ts, xs, 1)[0] * span), float(np.polyfit(ts, ys, 1)[0] * span)
