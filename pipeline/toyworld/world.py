"""The toy world: scenes (background, one or two shapes, motion, camera) and their rendering to uint8 clips."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

FRAMES = 9  # 4k+1 like Wan; the toy VAE pairs frames after the first, so 5 latent frames
SIZE = 32  # pixels per side: 4x4-pixel VAE cells, 2x2-cell transformer patches -> 4x4 tokens per latent frame
FPS = 8  # a clip lasts just over a second

OBJECT_COLORS = {  # far apart in RGB, and far from every background shade, so the detector can tell them apart
    "red": (220, 30, 30),
    "green": (30, 180, 50),
    "blue": (40, 70, 230),
    "yellow": (245, 220, 30),
    "orange": (250, 140, 20),
    "purple": (150, 50, 200),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
BACKGROUND_COLORS = {
    "gray": (128, 128, 128),
    "pink": (255, 170, 200),
    "teal": (0, 128, 128),
    "beige": (225, 205, 160),
    "cyan": (135, 206, 235),
}
SHADE = 0.6  # gradients and horizons darken the named color down to this factor
BACKGROUNDS = ("solid", "gradient", "horizon")
SHAPES = ("ball", "box", "triangle", "star")
SIZES = {"small": 0.13, "medium": 0.18, "large": 0.24}  # radius as a fraction of the frame side
DIRECTIONS = ("right", "left", "up", "down")  # motions that translate the object across the frame
MOTIONS = (*DIRECTIONS, "bouncing", "growing", "shrinking", "spinning", "still")
MOTION_ODDS = [0.12] * len(DIRECTIONS) + [0.52 / (len(MOTIONS) - len(DIRECTIONS))] * (len(MOTIONS) - len(DIRECTIONS))
CAMERAS = ("static", "zoom in", "zoom out", "pan left", "pan right")
TRAVEL = 0.55  # a directional motion crosses this fraction of the frame
PAN = 0.12  # a pan shifts the view by this fraction: smaller than any travel, so direction stays readable


@dataclass(frozen=True)
class Thing:
    shape: str
    color: str
    size: str
    motion: str
    x: float  # path center, fraction of the width
    y: float  # path center, fraction of the height
    angle: float = 0.0  # starting rotation, radians


@dataclass(frozen=True)
class Scene:
    background: str  # one of BACKGROUNDS
    bg_color: str  # one of BACKGROUND_COLORS (the sky's color for a horizon, the top's for a gradient)
    things: tuple[Thing, ...]
    camera: str = "static"
    extra: dict = field(default_factory=dict, compare=False)  # free room for callers; not rendered


def sample_scene(rng: np.random.Generator, **fixed) -> Scene:
    """A random scene; keyword arguments fix attributes of the first object (color, shape, size, motion) or the
    scene (background, bg_color, camera, count)."""
    count = fixed.get("count") or (2 if rng.random() < 0.15 else 1)
    colors = list(rng.permutation(list(OBJECT_COLORS)))
    things = []
    for i in range(count):
        first = i == 0
        color = fixed.get("color") if first and fixed.get("color") else colors.pop()
        if not first:
            colors = [c for c in colors if c != things[0].color]
            color = colors.pop()
        motion = fixed.get("motion") if first and fixed.get("motion") else str(rng.choice(MOTIONS, p=MOTION_ODDS))
        things.append(
            Thing(
                shape=fixed.get("shape") if first and fixed.get("shape") else str(rng.choice(SHAPES)),
                color=str(color),
                size=fixed.get("size") if first and fixed.get("size") else str(rng.choice(list(SIZES))),
                motion=motion,
                x=float(rng.uniform(0.3, 0.7)),
                y=float(rng.uniform(0.3, 0.7))
                if count == 1
                else (0.3 if first else 0.7) + float(rng.uniform(-0.05, 0.05)),
                angle=float(rng.uniform(0, 2 * math.pi)),
            )
        )
    camera = fixed.get("camera") or ("static" if rng.random() < 0.6 else str(rng.choice(CAMERAS[1:])))
    return Scene(
        background=fixed.get("background") or str(rng.choice(BACKGROUNDS)),
        bg_color=fixed.get("bg_color") or str(rng.choice(list(BACKGROUND_COLORS))),
        things=tuple(things),
        camera=camera,
    )


def render(scene: Scene, frames: int = FRAMES, size: int = SIZE) -> np.ndarray:
    """(frames, size, size, 3) uint8."""
    return render_with_mask(scene, frames, size)[0]


def render_with_mask(scene: Scene, frames: int = FRAMES, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The clip and a (frames, size, size) float mask of object coverage, for the training loss weights."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    base = _background(scene, size)
    clip = np.empty((frames, size, size, 3), np.float32)
    mask = np.zeros((frames, size, size), np.float32)
    for t in range(frames):
        s = t / max(frames - 1, 1)
        image = base.copy()
        zoom, pan = _camera(scene.camera, s)
        for thing in scene.things:
            cx, cy, radius, angle = _pose(thing, s)
            cx = 0.5 + (cx - 0.5) * zoom + pan
            cy = 0.5 + (cy - 0.5) * zoom
            alpha = _coverage(
                thing.shape,
                (xs - cx * size) / (radius * zoom * size),
                (ys - cy * size) / (radius * zoom * size),
                angle,
                radius * zoom * size,
            )
            image = image * (1 - alpha[..., None]) + np.array(OBJECT_COLORS[thing.color], np.float32) * alpha[..., None]
            mask[t] = np.maximum(mask[t], alpha)
        clip[t] = image
    return np.clip(clip + 0.5, 0, 255).astype(np.uint8), mask


def _background(scene: Scene, size: int) -> np.ndarray:
    color = np.array(BACKGROUND_COLORS[scene.bg_color], np.float32)
    rows = np.linspace(0, 1, size, dtype=np.float32)[:, None]
    if scene.background == "solid":
        factor = np.ones_like(rows)
    elif scene.background == "gradient":
        factor = 1 - (1 - SHADE) * rows
    elif scene.background == "horizon":
        factor = np.where(rows < 0.6, 1.0, SHADE).astype(np.float32)  # sky over darker ground
    else:
        raise ValueError(f"unknown background {scene.background!r}")
    return np.broadcast_to((factor * color[None, :])[:, None, :], (size, size, 3)).copy()


def _camera(camera: str, s: float) -> tuple[float, float]:
    """(zoom factor, horizontal shift) at clip time s in [0, 1]."""
    return {
        "static": (1.0, 0.0),
        "zoom in": (1 + 0.4 * s, 0.0),
        "zoom out": (1.4 - 0.4 * s, 0.0),
        "pan left": (1.0, PAN * s),  # the view moves left, so the scene slides right
        "pan right": (1.0, -PAN * s),
    }[camera]


def _pose(thing: Thing, s: float) -> tuple[float, float, float, float]:
    """(x, y, radius, angle) of a thing at clip time s; directional paths are centered so they stay in frame."""
    radius, x, y, angle = SIZES[thing.size], thing.x, thing.y, thing.angle
    half = TRAVEL / 2
    if thing.motion in ("right", "left"):
        x = 0.5 + (s - 0.5) * TRAVEL * (1 if thing.motion == "right" else -1)
        x = min(max(x, 0.5 - half), 0.5 + half)
    elif thing.motion in ("up", "down"):
        y = 0.5 + (s - 0.5) * TRAVEL * (1 if thing.motion == "down" else -1)
    elif thing.motion == "bouncing":
        y = 0.75 - 0.45 * abs(math.sin(2 * math.pi * s))
    elif thing.motion == "growing":
        radius *= 0.6 + 0.8 * s
    elif thing.motion == "shrinking":
        radius *= 1.4 - 0.8 * s
    elif thing.motion == "spinning":
        angle += math.pi * s
    return x, y, radius, angle


def _coverage(shape: str, u: np.ndarray, v: np.ndarray, angle: float, pixels: float) -> np.ndarray:
    """Antialiased coverage in [0, 1] from a signed distance in units of the radius (one-pixel soft edge)."""
    c, s = math.cos(angle), math.sin(angle)
    ru, rv = c * u + s * v, -s * u + c * v
    if shape == "ball":
        dist = np.hypot(u, v) - 1
    elif shape == "box":
        dist = np.maximum(np.abs(ru), np.abs(rv)) - 0.8
    elif shape == "triangle":
        dist = np.full_like(u, -np.inf)
        for k in range(3):  # intersection of three half-planes
            a = angle + math.pi / 2 + 2 * math.pi * k / 3
            dist = np.maximum(dist, u * math.cos(a) - v * math.sin(a) - 0.5)
    elif shape == "star":
        theta = np.arctan2(rv, ru)
        dist = np.hypot(u, v) - (0.65 + 0.35 * np.cos(5 * theta))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.clip(0.5 - dist * pixels, 0, 1)


def with_thing(scene: Scene, index: int, **changes) -> Scene:
    things = list(scene.things)
    things[index] = replace(things[index], **changes)
    return replace(scene, things=tuple(things))


def held_out(scene: Scene) -> bool:
    """One in eight (color, direction, background) combinations never appears in training: the evaluator's."""
    thing = scene.things[0]
    if len(scene.things) != 1 or thing.motion not in DIRECTIONS:
        return False
    key = list(OBJECT_COLORS).index(thing.color) * 7 + DIRECTIONS.index(thing.motion) * 3
    return (key + list(BACKGROUND_COLORS).index(scene.bg_color) * 5) % 8 == 0
