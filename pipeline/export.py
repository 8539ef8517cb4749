"""Browser-safe mp4 encoding through ffmpeg-python and unique output names (sidecars: pipeline.records)."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np


def ffmpeg_binary() -> str:
    """The system ffmpeg when present, else the one bundled with imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def new_stem(outputs: Path) -> Path:
    """A fresh, sortable, collision-free path stem under the outputs folder."""
    outputs.mkdir(parents=True, exist_ok=True)
    return outputs / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """diffusers returns float frames in [0, 1]; round (not truncate) into 0..255."""
    if frames.dtype == np.uint8:
        return frames
    return (np.clip(np.nan_to_num(frames), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def encode_mp4(
    frames: np.ndarray,
    path: Path,
    fps: int,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write (F, H, W, 3) frames as H.264 yuv420p with +faststart; refuse to overwrite `path`."""
    import ffmpeg

    frames = to_uint8(np.asarray(frames))
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected frames shaped (F, H, W, 3), got {frames.shape}")
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    num, height, width, _ = frames.shape
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:6]}.part.mp4")

    stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=fps)
    if height % 2 or width % 2:  # yuv420p needs even sides: pad by one pixel rather than distort
        stream = stream.filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
    stream = stream.output(
        str(tmp), vcodec="libx264", pix_fmt="yuv420p", r=fps, movflags="+faststart",
        crf=18, preset="medium", **{"fps_mode": "cfr"},
    )
    proc = stream.global_args("-loglevel", "error", "-nostdin").run_async(
        cmd=ffmpeg_binary(), pipe_stdin=True, pipe_stderr=True
    )
    try:
        for i, frame in enumerate(frames):
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
            if progress:
                progress(i + 1, num)
        proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed: {err.strip()[-500:]}")
        _publish(tmp, path)
    finally:
        if proc.poll() is None:
            proc.kill()
        tmp.unlink(missing_ok=True)
    return path


def _publish(tmp: Path, path: Path) -> None:
    """Move a finished file into place without ever replacing an existing one."""
    try:
        os.link(tmp, path)  # atomic and fails if `path` exists
    except FileExistsError:
        raise FileExistsError(f"{path} exists; refusing to overwrite it") from None
    except OSError:  # filesystems without hard links
        if path.exists():
            raise FileExistsError(f"{path} exists; refusing to overwrite it") from None
        os.replace(tmp, path)
