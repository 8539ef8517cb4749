"""Rewrites by a trained adapter on a spread of the validation split and benchmarks/user_prompts.txt, with the faults
a reader sees (prompts.faults) counted on the outputs as they are (nothing filtered or redrawn).

`python -m benchmarks.adapter_samples [--adapter DIR] [--validation N] [--prompts N] [--out FILE]` loads the base model, merges
the adapter with peft, scores only the English vocabulary (as the shipped path does) and decodes greedily with the
preset's repetition penalty. A look at what training taught, not the evaluation: benchmarks.rewrite_eval is that.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from pathlib import Path

import torch

from prompts.training.lora import encode, load_base


def load_with_adapter(cache_dir: Path, adapter: Path):
    """(model, tokenizer) of the base model with `adapter` merged in and the English-only output layer."""
    from peft import PeftModel

    from prompts.vocabulary import restrict_output

    model, tokenizer, ids = load_base(cache_dir)
    model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload().eval()
    restrict_output(model, ids, int8=False)
    return model, tokenizer


@torch.no_grad()
def rewrite(model, tokenizer, prompt: str, max_new_tokens: int = 240, repetition_penalty: float = 1.1) -> str:
    """The adapter's description of `prompt` (greedy), in the training format."""
    ids, _ = encode(tokenizer, prompt)
    stops = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")]
    out = model.generate(
        torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), do_sample=False,
        max_new_tokens=max_new_tokens, repetition_penalty=repetition_penalty, eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True).strip()


def _share(rows: list[dict], key: str) -> float:
    return sum(bool(r[key]) for r in rows) / len(rows)


def main(argv: list[str] | None = None) -> None:
    from benchmarks.rewrite_eval import USER_PROMPTS, load_user_prompts
    from prompts.faults import faults
    from prompts.preservation import missing_words
    from prompts.training.pairs import DEFAULT_DATA, load_rows
    from prompts.training.splits import split
    from runtime.hub import cache_root

    parser = argparse.ArgumentParser(prog="python -m benchmarks.adapter_samples", description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, default=Path("prompts/adapters/gemma-3-270m-wan-lora"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--validation", type=int, default=10, help="validation rows, spread over the split")
    parser.add_argument("--prompts", type=int, default=10, help="prompts of user_prompts.txt, spread over the file")
    parser.add_argument("--out", type=Path, default=Path("outputs/training/samples.jsonl"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    # 1. Rows spread evenly over each set, and the model
    validation = split(load_rows(args.data))[1]
    users = load_user_prompts(USER_PROMPTS)
    picked = [("validation", r) for r in validation[:: max(1, len(validation) // args.validation)][: args.validation]]
    picked += [("user_prompts", r) for r in users[:: max(1, len(users) // args.prompts)][: args.prompts]]
    model, tokenizer = load_with_adapter(cache_root(), args.adapter)

    # 2. Rewrite and count the faults on the outputs as they are
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records = []
    with args.out.open("w", encoding="utf-8") as sink:
        for source, row in picked:
            start = time.perf_counter()
            text = rewrite(model, tokenizer, row["prompt"])
            record = {
                "set": source, "prompt": row["prompt"], "rewrite": text, "seconds": round(time.perf_counter() - start, 1),
                "words": len(text.split()), "missing": missing_words(row["prompt"], text),
                **faults(row["prompt"], text, row.get("reference_gpt4")),
            }  # fmt: skip
            records.append(record)
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
    for source in ("validation", "user_prompts"):
        rows = [r for r in records if r["set"] == source]
        share = functools.partial(_share, rows)
        later = sum(r["later_sentences"] for r in rows)
        summary = {
            "set": source, "n": len(rows), "invented_people": share("invented_people"), "senses": share("senses"),
            "camera_moves": share("camera_moves"), "keep_all": 1 - share("missing"),
            "in_50_150": sum(50 <= r["words"] <= 150 for r in rows) / len(rows),
            "the_openers": round(sum(r["the_openers"] for r in rows) / later, 3) if later else None,
            "starts_verbatim": share("starts_verbatim"), "words_median": statistics.median(r["words"] for r in rows),
        }  # fmt: skip
        f1 = [r["ref_f1"] for r in rows if r["ref_f1"] is not None]
        if f1:
            summary["ref_f1"] = round(statistics.mean(f1), 3)
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
