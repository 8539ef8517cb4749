"""Opt-in cleanup of old output files (RR_CLEANUP_HOURS), for Spaces, whose disk is small and shared by all
visitors: run files go with their gallery rows marked expired, so no row points at a missing file."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass

from pipeline.gallery import DB_NAME, Gallery

log = logging.getLogger(__name__)

# Files this app writes into the outputs folder: timestamped runs (video, sidecar, reference image, previews,
# an encoder's leftover part) and gallery exports. Nothing else there is ever removed.
OUTPUT_NAME = re.compile(r"^\.?\d{8}-\d{6}-[0-9a-f]{8}\.")
EXPORT_NAME = re.compile(r"^runs-\d{8}-\d{6}-[0-9a-f]{6}\.(csv|jsonl)$")
MIN_INTERVAL_S, MAX_INTERVAL_S = 60, 3600  # sweep often enough to keep near the age limit, rarely enough to be free


@dataclass(frozen=True)
class Swept:
    runs_expired: int  # completed runs older than the limit: files removed, rows marked expired
    files_removed: int  # other files older than the limit (exports, files of no run)
    rows_left_without_files: int  # runs whose files went with those, marked expired too


def sweep(gallery: Gallery, max_age_s: float, now: float | None = None) -> Swept:
    """Remove output files older than `max_age_s` seconds and mark their gallery runs expired."""
    now = time.time() if now is None else now
    # 1. Runs: the gallery removes their files and marks them expired in one pass
    runs = gallery.expire_older_than(max_age_s, now)

    # 2. Loose files this app wrote (exports, leftovers), by modification time
    cutoff = now - max_age_s
    folder = gallery.folder
    candidates = [p for p in folder.iterdir() if OUTPUT_NAME.match(p.name)]
    exports = folder / "exports"
    if exports.is_dir():
        candidates += [p for p in exports.iterdir() if EXPORT_NAME.match(p.name)]
    removed = 0
    for path in candidates:
        try:
            if path.is_file() and path.name != DB_NAME and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another sweep, a delete or a failing run got there first
            continue

    # 3. Rows: a newer run that shared a removed file is expired rather than left dangling
    dangling = gallery.expire_missing()
    return Swept(runs, removed, dangling)


class Cleanup:
    """Sweeps the outputs folder at start and then periodically, on a daemon thread, until `stop()`."""

    def __init__(self, gallery: Gallery, max_age_hours: float):
        self.gallery = gallery
        self.max_age_s = max_age_hours * 3600
        self.interval_s = min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, self.max_age_s / 4))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Cleanup:
        self._thread = threading.Thread(target=self._loop, name="rr-cleanup", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            try:
                swept = sweep(self.gallery, self.max_age_s)
                if swept.runs_expired or swept.files_removed:
                    log.info("cleanup: %d run(s) expired, %d other file(s) removed (older than %.1f h)",
                             swept.runs_expired, swept.files_removed, self.max_age_s / 3600)
            except Exception:  # a sweep that fails (disk error, locked database) must not end the sweeps
                log.exception("cleanup sweep failed; trying again in %d s", self.interval_s)
            if self._stop.wait(self.interval_s):
                return
