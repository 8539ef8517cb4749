"""A preference step (DPO) on top of the LoRA adapter: the rewriter learns to leave out the sentences that add people,
sounds, smells, tastes, camera moves or (after the first sentence) shot types the prompt did not ask for
(`--keep-shots`: shot types are no fault).

`python -m prompts.training.preference [--init DIR] [--run-dir DIR] [--adapter-out DIR] ...` continues the adapter
`--init` (the first training's, prompts.training.lora) on pairs from the training split only
(prompts.training.pairs.preference_pairs): chosen, a reference rewrite with those sentences removed; rejected, the
same reference with them in place, cut to about the same length. The loss is DPO's (Rafailov et al. 2023, as
trl's DPOTrainer computes it with loss_type "sigmoid"), plus `--nll-weight` times the chosen text's mean token loss
(trl's rpo_alpha), which holds the rewrite's register while the margin grows. The reference model is the `--init`
adapter: its log-probabilities are computed once and stored in the run folder.

With `--drafts FILE...` the same loss runs on self-play pairs instead (Chen et al. 2024, "Self-Play Fine-Tuning"):
chosen, a training pair's cleaned target; rejected, the `--init` rewriter's own first draft of that prompt, written
beforehand by `benchmarks.rewrite_eval --no-words-check` on `benchmarks.tuning_prompts --pairs` (docs/rewriter.md has
the three commands). Every draft is used, so the step also learns from faults no detector sees.
With `--ranked FILE...` both texts are the `--init` rewriter's own drafts of a training prompt, written at several
seeds: chosen, the draft closest to the prompt's references in content words (without a fault a detector sees);
rejected, the farthest (prompts.training.pairs.ranked_preferences).

One difference from trl's defaults: the adapter's LoRA dropout (0.05) stays on in the policy's training passes
(trl turns dropout off), so the logged training margin is noisy; the held-out figures are scored without it.
Written here rather than with trl's DPOTrainer because it scores every sequence over the full 262k vocabulary,
where the project's English subset (prompts.vocabulary, as prompts.training.lora trains) has 83k rows: the output
layer, the largest matmul of a 270M model, costs 3.2x less (not timed against trl here). Checkpoints, resume, the stop signal and the JSONL log are prompts.training.lora's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from prompts.training.lora import (
    IGNORE,
    Log,
    SubsetLoss,
    batches,
    collate,
    encode,
    evaluate,
    export,
    load_base,
    load_checkpoint,
    optimizer_step,
    save_checkpoint,
    set_learning_rate,
    stop_on_signal,
)

DEFAULT_INIT = Path(__file__).resolve().parents[1] / "adapters" / "gemma-3-270m-wan-lora"


@dataclass(frozen=True)
class PreferenceConfig:
    lr: float = 2e-5  # the shipped run; a 20-step trial at 5e-5 raised the clean targets' held-out loss 1.75 -> 1.87
    beta: float = 0.1  # DPO's temperature: how far the policy may move from the reference
    nll_weight: float = 1.0
    batch_size: int = 4  # preferences a step (twice as many sequences)
    max_tokens: int = 256  # a preference with either side longer is dropped
    epochs: float = 1.0
    max_steps: int | None = None
    warmup_steps: int = 10
    checkpoint_every: int = 25
    eval_every: int = 50
    eval_pairs: int = 48  # training-format validation pairs whose loss is logged, as prompts.training.lora logs it
    seed: int = 0


def sequence_logps(peft_model, loss_fn: SubsetLoss, examples: list, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the target tokens' log-probabilities over the subset, how many were scored), one entry a sequence."""
    inputs, mask, labels = collate(examples, pad_id)
    hidden = peft_model.get_base_model().model(input_ids=inputs, attention_mask=mask).last_hidden_state
    labels = loss_fn.labels(labels)
    keep = labels != IGNORE
    logps = torch.log_softmax(hidden[keep] @ loss_fn.rows.T, dim=-1).gather(1, labels[keep][:, None])[:, 0]
    rows = torch.arange(len(examples))[:, None].expand_as(labels)[keep]
    sums = torch.zeros(len(examples), dtype=logps.dtype).index_add(0, rows, logps)
    return sums, keep.sum(dim=1)


def dpo_terms(policy: torch.Tensor, reference: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-preference DPO loss, reward margin) from (n, 2) log-probabilities, column 0 chosen and 1 rejected."""
    margin = beta * ((policy[:, 0] - reference[:, 0]) - (policy[:, 1] - reference[:, 1]))
    return -torch.nn.functional.logsigmoid(margin), margin


def step_loss(peft_model, loss_fn, batch: list, reference: torch.Tensor, config: PreferenceConfig, pad_id: int):
    """(loss, mean DPO loss, mean margin, reward accuracy) of a batch of (chosen example, rejected example) pairs."""
    flat = [side for pair in batch for side in pair]
    sums, counts = sequence_logps(peft_model, loss_fn, flat, pad_id)
    policy = sums.view(-1, 2)
    dpo, margin = dpo_terms(policy, reference, config.beta)
    nll = -(policy[:, 0] / counts.view(-1, 2)[:, 0].clamp(min=1)).mean()
    loss = dpo.mean() + config.nll_weight * nll
    dpo, margin = dpo.detach(), margin.detach()
    return loss, float(dpo.mean()), float(margin.mean()), float((margin > 0).float().mean())


@torch.no_grad()
def reference_logps(peft_model, loss_fn, pairs: list, batch_size: int, pad_id: int) -> torch.Tensor:
    """(n, 2) log-probabilities of every (chosen, rejected) under `peft_model` as it is now (dropout off)."""
    peft_model.eval()
    out = []
    for k in range(0, len(pairs), batch_size):
        flat = [side for pair in pairs[k : k + batch_size] for side in pair]
        out.append(sequence_logps(peft_model, loss_fn, flat, pad_id)[0].view(-1, 2))
    peft_model.train()
    return torch.cat(out) if out else torch.zeros((0, 2))


@torch.no_grad()
def preference_figures(peft_model, loss_fn, pairs: list, reference: torch.Tensor, config, pad_id: int) -> dict:
    """Mean DPO loss, margin and reward accuracy over held-out preferences."""
    policy = reference_logps(peft_model, loss_fn, pairs, config.batch_size, pad_id)
    dpo, margin = dpo_terms(policy, reference, config.beta)
    return {"val_dpo": round(float(dpo.mean()), 4), "val_margin": round(float(margin.mean()), 4),
            "val_accuracy": round(float((margin > 0).float().mean()), 4)}  # fmt: skip


def reference_key(peft_model, train_pairs: list, val_pairs: list) -> str:
    """What the reference log-probabilities depend on: the adapter's weights as they are now (before any step or
    checkpoint is loaded) and every token of every pair."""
    digest = hashlib.sha256()
    for name, weight in sorted(peft_model.named_parameters()):
        if weight.requires_grad:
            digest.update(name.encode() + weight.detach().numpy().tobytes())
    digest.update(json.dumps([train_pairs, val_pairs]).encode())
    return digest.hexdigest()


def encode_pairs(tokenizer, preferences: list, max_tokens: int) -> list[tuple[tuple, tuple]]:
    """(chosen example, rejected example) per preference, as prompts.training.lora.encode makes them; a pair with
    either side over `max_tokens` is dropped."""
    out = []
    for p in preferences:
        pair = (encode(tokenizer, p.prompt, p.chosen), encode(tokenizer, p.prompt, p.rejected))
        if max(len(pair[0][0]), len(pair[1][0])) <= max_tokens:
            out.append(pair)
    return out


def train(peft_model, tokenizer, ids, data: dict, run_dir: Path, config: PreferenceConfig, info: dict | None = None):
    """Continue `peft_model` (its trainable adapter) with the DPO loss on data["train"] preferences, resuming from
    run_dir's checkpoint; data["validation"] preferences and data["validation_pairs"] (training-format pairs) are
    scored, never trained on."""
    # 1. Encode; the reference log-probabilities once (before any step: the adapter as it came in)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_pairs = encode_pairs(tokenizer, data["train"], config.max_tokens)
    val_pairs = encode_pairs(tokenizer, data["validation"], config.max_tokens)
    val_sft = [encode(tokenizer, p.prompt, p.target) for p in data["validation_pairs"]]
    val_sft = [e for e in val_sft if len(e[0]) <= config.max_tokens][: config.eval_pairs]
    loss_fn = SubsetLoss(peft_model.get_base_model().get_output_embeddings().weight, ids)
    stored, key = run_dir / "reference.pt", reference_key(peft_model, train_pairs, val_pairs)
    reference = torch.load(stored) if stored.exists() else {}
    if reference.get("key") != key:  # first run, or the adapter or the pairs changed since the file was written
        reference = {"key": key,
                     "train": reference_logps(peft_model, loss_fn, train_pairs, config.batch_size, pad_id),
                     "validation": reference_logps(peft_model, loss_fn, val_pairs, config.batch_size, pad_id)}  # fmt: skip
        staged = stored.with_suffix(".tmp")
        torch.save(reference, staged)
        staged.replace(stored)

    # 2. The optimizer; resume
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    per_epoch = math.ceil(len(train_pairs) / config.batch_size)
    total = config.max_steps or math.ceil(config.epochs * per_epoch)
    step = load_checkpoint(run_dir, peft_model, optimizer)
    log = Log(run_dir / "log.jsonl", step)
    index_of = {id(pair): k for k, pair in enumerate(train_pairs)}

    def figures() -> dict:
        return {**preference_figures(peft_model, loss_fn, val_pairs, reference["validation"], config, pad_id),
                "val_loss": evaluate(peft_model, loss_fn, val_sft, 4, pad_id)}  # fmt: skip

    if step == 0:
        log.write(step=0, event="start", config=asdict(config), **(info or {}), train_preferences=len(train_pairs),
                  validation_preferences=len(val_pairs), steps_per_epoch=per_epoch, total_steps=total)  # fmt: skip
        log.write(step=0, **figures())

    # 3. Train; a stop signal ends after the current step, with a checkpoint
    with stop_on_signal() as stop:
        peft_model.train()
        while step < total and not stop:
            epoch, index = divmod(step, per_epoch)
            batch = batches(train_pairs, config.batch_size, config.seed, epoch)[index]
            lr = set_learning_rate(optimizer, step, per_epoch, config)
            start = time.perf_counter()
            ref = reference["train"][[index_of[id(pair)] for pair in batch]]
            loss, dpo, margin, accuracy = step_loss(peft_model, loss_fn, batch, ref, config, pad_id)
            optimizer_step(loss, params, optimizer)
            step += 1
            log.write(step=step, loss=round(loss.item(), 4), dpo=round(dpo, 4), margin=round(margin, 4),
                      accuracy=accuracy, lr=lr, seconds=round(time.perf_counter() - start, 2))  # fmt: skip
            if step % config.eval_every == 0 and step < total:
                log.write(step=step, **figures())
            if step % config.checkpoint_every == 0 or step == total or stop:
                save_checkpoint(run_dir, peft_model, optimizer, step)
        if step >= total and not log.has("done", step):
            log.write(step=step, event="done", **figures())
        elif step < total:
            log.write(step=step, event="stopped")
    return peft_model


def main(argv: list[str] | None = None) -> None:
    from peft import PeftModel

    from prompts.training.pairs import (
        DEFAULT_DATA,
        PREFER,
        build_pairs,
        draft_preferences,
        load_draft_runs,
        load_drafts,
        load_rows,
        preference_pairs,
        ranked_preferences,
    )
    from prompts.training.splits import split
    from runtime.hub import cache_root

    defaults = PreferenceConfig()
    parser = argparse.ArgumentParser(prog="python -m prompts.training.preference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="VBench rows with reference rewrites")
    parser.add_argument("--init", type=Path, default=DEFAULT_INIT, help="the adapter to continue (and the reference)")
    parser.add_argument("--run-dir", type=Path, help="default: outputs/training/gemma-3-270m-wan-dpo (required with --drafts)")
    parser.add_argument(
        "--adapter-out", type=Path, help="default: prompts/adapters/gemma-3-270m-wan-dpo (required with --drafts)"
    )
    for field in ("lr", "beta", "nll_weight", "batch_size", "epochs", "max_steps", "checkpoint_every", "eval_every",
                  "seed"):  # fmt: skip
        kind = float if field in ("lr", "beta", "nll_weight", "epochs") else int
        parser.add_argument(f"--{field.replace('_', '-')}", type=kind, default=getattr(defaults, field))
    parser.add_argument(
        "--drafts",
        type=Path,
        nargs="+",
        help="self-play: rewrite_eval --out files of the --init rewriter's own drafts of the training pairs' prompts; "
        "each pair's cleaned target is preferred over the draft (instead of the reference-fault preferences)",
    )
    parser.add_argument(
        "--ranked",
        type=Path,
        nargs="+",
        help="rewrite_eval --out files of the --init rewriter's drafts of the training prompts at several seeds: the "
        "draft closest to the references (content-word F1) is preferred over the farthest (pairs.ranked_preferences)",
    )
    parser.add_argument(
        "--prefer", choices=sorted(PREFER), default="qwen2.5-3b", help="whose reference each chosen text comes from first"
    )
    parser.add_argument(
        "--keep-shots",
        action="store_true",
        help="a later sentence that names an unasked shot type is no fault (as `lora --keep-shots` leaves it in)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.drafts and args.ranked:
        parser.error("--drafts and --ranked are two kinds of pairs: pass one")
    if (args.drafts or args.ranked) and (args.run_dir is None or args.adapter_out is None):
        option = "--drafts" if args.drafts else "--ranked"
        parser.error(f"{option} needs its own --run-dir and --adapter-out (the defaults are the shipped step's)")
    if missing := [str(p) for p in args.drafts or args.ranked or [] if not p.is_file()]:
        parser.error(f"no such drafts file: {', '.join(missing)}")
    args.run_dir = args.run_dir or Path("outputs/training/gemma-3-270m-wan-dpo")
    args.adapter_out = args.adapter_out or Path("prompts/adapters/gemma-3-270m-wan-dpo")
    torch.set_num_threads(args.threads)

    # 1. Preferences from the training split only; the validation split's are scored, never trained on
    rows = load_rows(args.data)
    train_rows, validation_rows = split(rows)
    references, shots = PREFER[args.prefer], not args.keep_shots
    train_pairs, validation_pairs, _ = build_pairs(rows, references, shots=shots)
    if args.drafts:
        train_prefs, report = draft_preferences(train_pairs, load_drafts(args.drafts))
        if len(train_prefs) < len(train_pairs) // 2:
            parser.error(f"the drafts cover {len(train_prefs)} of {len(train_pairs)} training pairs: wrong files?")
    elif args.ranked:
        train_prefs, report = ranked_preferences(train_rows, load_draft_runs(args.ranked))
        if not train_prefs:
            parser.error(f"no preferences from the --ranked files ({report}): wrong files?")
    else:
        train_prefs, report = preference_pairs(train_rows, references, shots)
    validation_prefs, validation_report = preference_pairs(validation_rows, references, shots)
    print(json.dumps(report), file=sys.stderr, flush=True)

    # 2. The base model with the --init adapter, trainable
    model, tokenizer, ids = load_base(cache_root())
    peft_model = PeftModel.from_pretrained(model, args.init, is_trainable=True)
    config = PreferenceConfig(**{f: getattr(args, f) for f in ("lr", "beta", "nll_weight", "batch_size", "epochs",
                                                               "max_steps", "checkpoint_every", "eval_every", "seed")})  # fmt: skip
    data = {"train": train_prefs, "validation": validation_prefs, "validation_pairs": validation_pairs}
    drafts = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in args.drafts or args.ranked or []}
    info = {"init": args.init.name, "prefer": args.prefer, "drop_shots": shots, "drafts": drafts,
            "preferences": {"train": report, "validation": validation_report}}  # fmt: skip
    train(peft_model, tokenizer, ids, data, args.run_dir, config, info)
    if not (args.run_dir / "checkpoint").exists():
        return
    export(args.run_dir, args.adapter_out)
    print(f"adapter and log in {args.adapter_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
