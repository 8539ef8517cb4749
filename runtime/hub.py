"""Local cache folder and hub downloads with a disk check, progress, and clear errors."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

DISK_MARGIN = 1.1  # keep 10% headroom: downloads land as temporary files before they are renamed


class ModelUnavailableError(RuntimeError):
    """The weights are neither cached nor downloadable; the message says what to do."""


def cache_root() -> Path:
    """Where the app keeps what it builds or converts (tiny models, converted LLM weights)."""
    return Path(os.environ.get("RR_CACHE", Path.home() / ".cache" / "rewrite-render")).expanduser()


def ensure_downloaded(repo_id: str, approx_gb: float, allow_patterns: list[str] | None = None) -> str:
    """Return a local folder holding `repo_id`, downloading it on first use."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    # 1. Already cached: no network needed
    try:
        return snapshot_download(repo_id, local_files_only=True, allow_patterns=allow_patterns)
    except (LocalEntryNotFoundError, OSError):
        pass

    # 2. Ask the hub what is missing, and check the disk before spending bandwidth
    hint = (
        f"{repo_id} (about {approx_gb:g} GB) is not in the local Hugging Face cache and cannot be "
        f"downloaded now. Connect to the internet, or download it elsewhere with "
        f"`hf download {repo_id}` and copy the cache (HF_HOME) here."
    )
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ModelUnavailableError(hint + " (HF_HUB_OFFLINE is set.)")
    try:
        plan = snapshot_download(repo_id, allow_patterns=allow_patterns, dry_run=True)
    except Exception as err:  # connection, DNS, auth: all mean "cannot download"
        raise ModelUnavailableError(f"{hint} ({type(err).__name__}: {err})") from None
    needed = sum(f.file_size or 0 for f in plan if f.will_download)
    hub_cache = Path(os.environ.get("HF_HUB_CACHE", Path.home() / ".cache" / "huggingface" / "hub"))
    check_free_disk(hub_cache, needed, repo_id)

    # 3. Download; huggingface_hub shows tqdm bars, which the UI mirrors (track_tqdm)
    log.info("downloading %s (%.1f GB)", repo_id, needed / 1e9)
    try:
        return snapshot_download(repo_id, allow_patterns=allow_patterns)
    except Exception as err:
        raise ModelUnavailableError(f"Downloading {repo_id} failed: {type(err).__name__}: {err}") from None


def check_free_disk(folder: Path, needed_bytes: int, what: str) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed_bytes * DISK_MARGIN > free:
        raise ModelUnavailableError(
            f"Not enough disk space for {what}: it needs {needed_bytes / 1e9:.1f} GB "
            f"(plus 10% headroom) in {folder}, but only {free / 1e9:.1f} GB is free."
        )
