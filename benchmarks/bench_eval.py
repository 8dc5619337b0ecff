"""Benchmark: questions per second of `judo.evaluate.evaluate`, batched (16 questions per generate call: left padding,
KV cache) vs one question per generate call, with the tiny model on CPU.

Run: PYTHONPATH=. .venv/bin/python benchmarks/bench_eval.py   (writes benchmarks/results/eval.md)
"""
import os, platform, sys, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import torch
from transformers.utils import logging as hf_logging

from judo.data import read_mmad
from judo.evaluate import EvalConfig, dataset_geometry, evaluate
from judo.models import tiny_vlm
from judo.synth import synth_dataset

N_QUESTIONS, MAX_NEW_TOKENS, BATCH = 48, 32, 16


def timed(model, proc, samples, root, batch_size, repeat=2):
    "Best-of-`repeat` seconds to answer the first N_QUESTIONS questions, and the records."
    cfg = EvalConfig(**dataset_geometry(root), batch_size=batch_size, max_new_tokens=MAX_NEW_TOKENS, limit=N_QUESTIONS)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter(); recs = evaluate(model, proc, samples, root, cfg, progress=False); ts.append(time.perf_counter() - t)
    return min(ts), recs


if __name__ == "__main__":
    hf_logging.set_verbosity_error()
    root = synth_dataset(n_per_category=32, categories="washer,pill_box,fabric")
    samples = read_mmad(root)
    model, proc = tiny_vlm()
    evaluate(model, proc, samples[:2], root, EvalConfig(**dataset_geometry(root), max_new_tokens=4), progress=False)  # warm-up
    t1, r1 = timed(model, proc, samples, root, 1)
    tb, rb = timed(model, proc, samples, root, BATCH)
    n = len(r1)
    same = sum(a["raw"] == b["raw"] for a, b in zip(r1, rb))
    toks = sum(len(proc.tokenizer(r["raw"])["input_ids"]) for r in r1) / n
    lines = ["# Benchmark: batched evaluation (judo.evaluate)", "",
             "Command: `PYTHONPATH=. .venv/bin/python benchmarks/bench_eval.py` (from the repo root, best of 2)", "",
             f"{n} judo-synth questions (JUDO prompt, two {dataset_geometry(root)['image_size']}-px images each), the tiny "
             f"random-weight Qwen2.5-VL (`judo.models.tiny_vlm()`), greedy, at most {MAX_NEW_TOKENS} new tokens "
             f"(mean {toks:.1f} generated), CPU, torch threads {torch.get_num_threads()}.", "",
             "| generation | seconds | questions / s |", "|---|---|---|",
             f"| one question per `generate` call (batch_size=1) | {t1:.2f} | {n / t1:.2f} |",
             f"| batched, batch_size={BATCH} (left padding, KV cache) | {tb:.2f} | {n / tb:.2f} |", "",
             f"**Speed-up: {t1 / tb:.1f}x** (target >= 3x at batch 16). Identical outputs: {same} of {n} "
             "(padding may change a float32 argmax in a few random-weight answers).", "",
             f"Machine: {platform.processor() or platform.machine()}, Python {sys.version.split()[0]}, torch {torch.__version__}; "
             "shared 2-core CPU, so absolute times are noisy."]
    out = Path(__file__).parent / "results" / "eval.md"; out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n"); print("\n".join(lines))
