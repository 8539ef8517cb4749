"""Run history as files: CSV (nested fields as JSON text) or JSONL, and reading either back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

FORMATS = ("csv", "jsonl")
JSON_FIELDS = ("seeds", "settings", "rewrite", "files", "timings")  # nested values: JSON text in a CSV cell
INT_FIELDS = ("id", "seed", "parent_id")
FLOAT_FIELDS = ("created", "finished")


def write_runs(runs: list[dict], fields: list[str], fmt: str, dest: Path) -> Path:
    """Write run dictionaries to `dest` (which must not exist) as CSV or JSONL."""
    if fmt not in FORMATS:
        raise ValueError(f"Export format must be one of {', '.join(FORMATS)}, got {fmt!r}.")
    with open(dest, "x", encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            for run in runs:
                f.write(json.dumps(run, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for run in runs:
                writer.writerow({k: json.dumps(v, ensure_ascii=False) if k in JSON_FIELDS else v for k, v in run.items()})
    return Path(dest)


def load_export(path: Path) -> list[dict]:
    """Read an export back into the dictionaries `Run.to_dict()` gives (empty CSV cells are None)."""
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in f if line.strip()]
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            if key in JSON_FIELDS:
                row[key] = json.loads(value)
            elif value == "":
                row[key] = None
            elif key in INT_FIELDS:
                row[key] = int(value)
            elif key in FLOAT_FIELDS:
                row[key] = float(value)
    return rows
