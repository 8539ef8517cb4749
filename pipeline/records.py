"""What a run writes down, as typed values: the rewrite record and the three JSON sidecars, turned into JSON and
back here and nowhere else."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prompts.rewriter import RewriteResult

AS_WRITTEN = "used as written"  # the fallback recorded when the prompt goes to the video model unrewritten
EDITED = "edited or supplied by the user"  # the rewriter recorded for a rewritten prompt the user typed or changed
_VERSIONED = ("torch", "diffusers", "transformers", "accelerate", "bitsandbytes", "gradio")


def package_versions() -> dict[str, str | None]:
    """The installed versions of the packages a render depends on (read once a process: they do not change)."""
    return dict(_installed_versions())


@cache
def _installed_versions() -> dict[str, str | None]:
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@dataclass(frozen=True)
class RewriteInfo:
    """Where the prompt the video model read came from. A rewrite records every field but `image` (which an
    image-aware rewrite adds); the short shapes record less: a prompt used as written (rewriter None, fallback
    AS_WRITTEN), a rewritten prompt the user typed or edited (rewriter EDITED), a run not yet rewritten (its rewrite
    seed). None: not recorded, and left out of the JSON (but see to_json: two Nones carry meaning)."""

    prompt: str | None = None  # the user's prompt
    rewriter: str | None = None  # the rewriter preset, EDITED, or None (none ran)
    target: str | None = None  # the video preset the rewrite was written for
    template_version: str | None = None
    seed: int | None = None
    tokens: int | None = None  # the video model's tokens of the rewrite
    tokens_exact: bool | None = None
    token_limit: int | None = None
    words: int | None = None
    new_tokens: int | None = None  # tokens the LLM generated
    seconds: float | None = None
    fallback: str | None = None  # why the user's prompt was kept; None when the rewrite is used
    notes: tuple[str, ...] | None = None  # visible adjustments, e.g. sentences dropped to fit the limit
    image: str | None = None  # with a reference image, what the rewriter knew of it: seen, described or unseen

    @classmethod
    def from_result(cls, result: RewriteResult) -> RewriteInfo:
        """The record of a finished rewrite (its text is the request's `rewritten`, not part of the record)."""
        return cls(**{f.name: getattr(result, f.name) for f in fields(cls) if f.name != "image"})

    @classmethod
    def from_dict(cls, data: Mapping | None) -> RewriteInfo:
        """A stored record (a sidecar's or a gallery row's `rewrite`) of any shape written so far; keys it does not
        know are dropped."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in (data or {})}
        if values.get("notes") is not None:
            values["notes"] = tuple(values["notes"])
        return cls(**values)

    @classmethod
    def as_written(cls) -> RewriteInfo:
        return cls(rewriter=None, fallback=AS_WRITTEN)

    def merged(self, over: RewriteInfo) -> RewriteInfo:
        """This record with the fields `over` records laid over it."""
        return RewriteInfo.from_dict({**to_json(self), **to_json(over)})


@dataclass(frozen=True)
class GenerateSidecar:
    """STEM.json beside STEM.mp4: one video (a generate run, a re-run, or a preview expanded to full settings).
    Engine.render_record returns it before the run's links (run_id, reference_image, preview) are known."""

    video: str  # the file's name: the sidecar lies beside it
    created: str  # local time, ISO 8601 with its offset
    raw_prompt: str
    rewritten_prompt: str | None
    prompt_used: str
    prompt_tokens: dict  # tokens, limit, exact: the video model's count of prompt_used
    rewrite: RewriteInfo
    seed: int
    video_preset: str
    switched_from: str | None  # this app's preset, when its image partner rendered
    settings: dict
    device: str
    dtype: str
    memory: tuple[str, ...]  # offload and tiling measures applied
    timings: dict
    memory_report: dict = field(default_factory=dict)  # plan, estimate, measured peak, note: memory_* in the JSON
    reference_image: dict | None = None  # the processed image, its original's name, hashes and sizes
    run_id: int | None = None  # the gallery run; None when runs are not recorded (the CLI's --no-record)
    preview: dict | None = None  # an expanded preview: its batch's run id, video, sidecar and preview settings
    versions: dict = field(default_factory=package_versions)


@dataclass(frozen=True)
class CompareSide:
    """One side of a compare pair: what differs between the two videos."""

    video: str
    prompt_used: str
    prompt_tokens: dict
    timings: dict

    @classmethod
    def of(cls, render: GenerateSidecar) -> CompareSide:
        return cls(render.video, render.prompt_used, render.prompt_tokens, render.timings)


@dataclass(frozen=True)
class CompareSidecar:
    """STEM.json beside STEM.raw.mp4 and STEM.rewritten.mp4: what both videos share once, then each side."""

    run_id: int | None
    created: str
    raw_prompt: str
    seed: int  # both videos'
    video_preset: str
    switched_from: str | None
    settings: dict
    device: str
    dtype: str
    memory: tuple[str, ...]
    memory_report: dict  # the raw side's render (both run on the same plan)
    rewritten_prompt: str
    rewrite: RewriteInfo
    raw: CompareSide
    rewritten: CompareSide
    reference_image: dict | None = None
    versions: dict = field(default_factory=package_versions)


@dataclass(frozen=True)
class VariationPreview:
    seed: int
    video: str
    timings: dict


@dataclass(frozen=True)
class VariationsSidecar:
    """STEM.json beside STEM.preview-SEED.mp4: one prompt at several seeds, rendered at preview settings."""

    run_id: int | None
    created: str
    raw_prompt: str
    rewritten_prompt: str | None
    prompt_used: str
    prompt_tokens: dict
    rewrite: RewriteInfo
    video_preset: str
    settings: dict  # the full render's, which expand_variation uses; the previews use preview_settings
    preview_settings: dict
    previews: tuple[VariationPreview, ...]
    device: str
    dtype: str
    memory: tuple[str, ...]
    versions: dict = field(default_factory=package_versions)


Sidecar = GenerateSidecar | CompareSidecar | VariationsSidecar
Record = RewriteInfo | Sidecar
SIDECARS = {"generate": GenerateSidecar, "compare": CompareSidecar, "variations": VariationsSidecar}  # by `kind`


def to_json(record: Record) -> dict:
    """The JSON object of a record as sidecars, the gallery and the API hold it: the one place deciding its keys
    and their order (which is the order written before these types existed)."""
    match record:
        case RewriteInfo():
            # Two Nones say something and are written: a rewrite's fallback (its text was used) and the rewriter
            # of a kept prompt (none ran). Every other None is a field that shape does not record.
            said = {"fallback"} if record.template_version is not None else set()
            said |= {"rewriter"} if record.fallback is not None else set()
            data = {f.name: getattr(record, f.name) for f in fields(record)}
            return {k: list(v) if k == "notes" else v for k, v in data.items() if v is not None or k in said}
        case GenerateSidecar():
            return {
                "video": record.video,
                "created": record.created,
                "raw_prompt": record.raw_prompt,
                "rewritten_prompt": record.rewritten_prompt,
                "prompt_used": record.prompt_used,
                "prompt_tokens": record.prompt_tokens,
                "rewrite": to_json(record.rewrite),
                "seed": record.seed,
                "seeds": {"video": record.seed, "rewrite": record.rewrite.seed},
                "video_preset": record.video_preset,
                "switched_from": record.switched_from,
                "settings": record.settings,
                "device": record.device,
                "dtype": record.dtype,
                "memory": list(record.memory),
                "timings": record.timings,
                **{f"memory_{key}": value for key, value in record.memory_report.items()},
                "reference_image": record.reference_image,
                "run_id": record.run_id,
                **({"preview": record.preview} if record.preview is not None else {}),
                "versions": record.versions,
            }
        case CompareSidecar():
            sides = {"raw": record.raw, "rewritten": record.rewritten}
            return {
                "kind": "compare",
                "run_id": record.run_id,
                "created": record.created,
                "videos": {name: side.video for name, side in sides.items()},
                "raw_prompt": record.raw_prompt,
                "seed": record.seed,
                "seeds": {"video": record.seed, "rewrite": record.rewrite.seed},
                "video_preset": record.video_preset,
                "switched_from": record.switched_from,
                "settings": record.settings,
                "device": record.device,
                "dtype": record.dtype,
                "memory": list(record.memory),
                **{f"memory_{key}": value for key, value in record.memory_report.items()},
                "rewritten_prompt": record.rewritten_prompt,
                "rewrite": to_json(record.rewrite),
                "runs": {
                    name: {"video": s.video, "prompt_used": s.prompt_used, "prompt_tokens": s.prompt_tokens,
                           "timings": s.timings}
                    for name, s in sides.items()
                },
                "reference_image": record.reference_image,
                "versions": record.versions,
            }
        case VariationsSidecar():
            return {
                "kind": "variations",
                "run_id": record.run_id,
                "created": record.created,
                "raw_prompt": record.raw_prompt,
                "rewritten_prompt": record.rewritten_prompt,
                "prompt_used": record.prompt_used,
                "prompt_tokens": record.prompt_tokens,
                "rewrite": to_json(record.rewrite),
                "seeds": [p.seed for p in record.previews],
                "video_preset": record.video_preset,
                "settings": record.settings,
                "preview_settings": record.preview_settings,
                "previews": [{"seed": p.seed, "video": p.video, "timings": p.timings} for p in record.previews],
                "device": record.device,
                "dtype": record.dtype,
                "memory": list(record.memory),
                "versions": record.versions,
            }
    raise TypeError(f"not a record: {type(record).__name__}")


def from_json(data: Mapping) -> Sidecar:
    """A sidecar from its JSON object, the inverse of to_json: `kind` picks the type (a generate sidecar has none)."""
    kind = data.get("kind", "generate")
    if kind not in SIDECARS:
        raise ValueError(f"unknown sidecar kind {kind!r}")
    cls = SIDECARS[kind]
    values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
    values |= {"rewrite": RewriteInfo.from_dict(data["rewrite"]), "memory": tuple(data["memory"])}
    if kind != "variations":
        values["memory_report"] = {k.removeprefix("memory_"): v for k, v in data.items() if k.startswith("memory_")}
    if kind == "compare":
        values |= {name: CompareSide(**data["runs"][name]) for name in ("raw", "rewritten")}
    if kind == "variations":
        values["previews"] = tuple(VariationPreview(**preview) for preview in data["previews"])
    return cls(**values)


def write_sidecar(path: Path, sidecar: Sidecar) -> Path:
    """Write a run's sidecar; exclusive create, so an existing sidecar is never replaced."""
    with open(path, "x", encoding="utf-8") as f:
        json.dump(to_json(sidecar), f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")
    return path


def read_sidecar(path: Path) -> Sidecar:
    return from_json(json.loads(Path(path).read_text(encoding="utf-8")))
