"""Consensus selection (minimum Bayes risk) over rewrites of the same prompts at several seeds.

`python -m benchmarks.consensus RUN.jsonl RUN.jsonl ... [--data PATH] [--picks OUT.jsonl]` reads the `--out` files
of `benchmarks.rewrite_eval` runs that differ only in `--seed`, and reports each run alone beside the rewrite the
runs agree on: of the usable rewrites of a prompt (no fallback), the one with the highest mean content-word F1
against the others (prompts.faults.ref_f1 between drafts), over the first 2, 3, ... runs. ref_f1 is scored against
the GPT-4 reference of the `--data` row of the same prompt, where there is one. Drafts sampled from separate seeds
are what a batch of drafts would sample, so this measures the selection without changing the rewriter.
`--picks` writes the chosen rewrites (over every run) as rewrite_eval records, for reading them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.rewrite_eval import DEFAULT_DATA, REFERENCES, load_rows, score, summarise
from prompts.faults import ref_f1

FIGURES = ("ref_f1", "invented_people", "senses", "camera_moves", "shot_types", "words_median", "fallback")
RECORD_KEYS = ("prompt", "rewritten", "fallback", "target")  # what a rewrite_eval --out line holds, among others


def load_runs(paths: list[Path]) -> dict[str, list[dict]]:
    """Prompt -> its record in each run, in run order; prompts some run lacks are left out. A line cut short by a
    killed run is skipped (as rewrite_eval --resume does); a file with no rewrite_eval record raises ValueError."""
    runs = []
    for path in paths:
        records = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and all(k in record for k in RECORD_KEYS):
                records[record["prompt"]] = record
        if not records:
            raise ValueError(f"{path} holds no rewrite_eval --out record ({', '.join(RECORD_KEYS)})")
        runs.append(records)
    return {prompt: [run[prompt] for run in runs] for prompt in runs[0] if all(prompt in run for run in runs)}


def consensus(records: list[dict]) -> dict:
    """The usable record whose rewrite shares the most content words with the others (the first on a tie); the
    first record when none is usable."""
    usable = [r for r in records if r["fallback"] is None]
    if len(usable) < 2:
        return usable[0] if usable else records[0]
    texts = [r["rewritten"] for r in usable]
    agreement = [sum(ref_f1(a, b) for j, b in enumerate(texts) if j != i) for i, a in enumerate(texts)]
    return usable[max(range(len(usable)), key=agreement.__getitem__)]


def figures(records: list[dict], references: dict[str, str], target) -> dict:
    scores = [score(r["prompt"], r["rewritten"], None, target, references.get(r["prompt"])) for r in records]
    out = {**summarise(scores), "fallback": round(sum(r["fallback"] is not None for r in records) / len(records), 3)}
    return {k: out.get(k) for k in FIGURES}


def main(argv: list[str] | None = None) -> None:
    from pipeline.loading import rewrite_target
    from pipeline.presets import get_video_spec

    parser = argparse.ArgumentParser(prog="python -m benchmarks.consensus")
    parser.add_argument("runs", type=Path, nargs="+", help="rewrite_eval --out files of the same prompts, other seeds")
    parser.add_argument(
        "--data", type=Path, default=None, help=f"references for prompts that are its rows (default: {DEFAULT_DATA})"
    )
    parser.add_argument("--picks", type=Path, default=None, help="write the consensus over every run here (JSONL)")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("consensus needs two runs or more")
    if missing := [str(p) for p in args.runs if not p.is_file()]:
        parser.error(f"no such run file: {', '.join(missing)}")
    if len({p.resolve() for p in args.runs}) < len(args.runs):
        parser.error("a run file is given twice")
    if args.data is not None and not args.data.is_file():
        parser.error(f"no such data file: {args.data}")
    data = args.data or DEFAULT_DATA
    try:
        by_prompt = load_runs(args.runs)
    except (ValueError, UnicodeDecodeError) as err:
        sys.exit(f"error: {err}")
    if not by_prompt:
        sys.exit("error: no prompt is in every run")
    records = list(by_prompt.values())
    targets = {r["target"] for rs in records for r in rs}
    if len(targets) != 1:
        sys.exit(f"error: the runs rewrite for different targets: {sorted(targets)}")
    target = rewrite_target(get_video_spec(targets.pop()))
    known = {r["prompt"]: r.get(REFERENCES["gpt4"]) for r in load_rows(data)} if data.is_file() else {}
    references = {p: known[p] for p in by_prompt if known.get(p)}

    report = {"benchmark": "consensus", "prompts": len(records), "with_reference": len(references), "runs": {}}
    for k, path in enumerate(args.runs):
        report["runs"][str(path)] = figures([rs[k] for rs in records], references, target)
    report["consensus"] = {
        n: figures([consensus(rs[:n]) for rs in records], references, target) for n in range(2, len(args.runs) + 1)
    }
    print(json.dumps(report, indent=1))
    if args.picks:
        picks = [consensus(rs) for rs in records]
        args.picks.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picks), encoding="utf-8")


if __name__ == "__main__":
    main()
