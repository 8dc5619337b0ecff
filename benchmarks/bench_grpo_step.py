"""Benchmark (c): one tiny GRPO step with judo's rows and rewards vs a bare TRL GRPOTrainer (same model, data, G).

    OMP_NUM_THREADS=1 python benchmarks/bench_grpo_step.py [--repeats 5]

Each repeat builds a fresh trainer (not timed) and times one `train()` step (`max_steps=1`): generation of G=4
completions for 2 prompts, reward scoring, reference and policy log-probs, backward, optimizer step. The variants
alternate so that load on this shared machine hits them alike; medians are reported. Both trainers use the same seed, so
they generate the same completions. Variants:
- bare: TRL's GRPOTrainer on a plain Dataset (prompt + PIL `images`), one trivial reward (returns 0.0);
- judo: `judo.grpo.make_trainer` (rows with precomputed `gt_cells`, images decoded on read) with accuracy, format,
  structure and seg_f1 — the domain encoder excluded (the target: <= 1.1x bare);
- judo+domain: all five rewards, the encoder loaded before timing (for information).
Results go to benchmarks/results/grpo_step.md.
"""
import argparse, os, platform, statistics, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import torch
from datasets import Dataset
from trl import GRPOTrainer

from judo.data import load_image
from judo.grpo import build_grpo_rows, make_trainer, parse_args, start_checkpoint

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks/results/grpo_step.md"


def zero_reward(completions, **kwargs): return [0.0] * len(completions)


def tiny_config(rewards):
    return parse_args(["--config", str(REPO / "recipes/tiny/grpo.yaml"), "--output_dir", tempfile.mkdtemp(),
                       "--max_steps", "1", "--save_strategy", "no", "--log_completions", "false",
                       "--disable_tqdm", "true", "--rewards", *rewards, "--reward_weights", *["1.0"] * len(rewards)])


def timed_step(trainer) -> float:
    t0 = time.perf_counter(); trainer.train(); return time.perf_counter() - t0


def main(repeats: int):
    torch.set_num_threads(1)
    cheap = ["accuracy", "format", "structure", "seg_f1"]
    args4, cfg4 = tiny_config(cheap)
    rows, size, n = build_grpo_rows(args4)
    model = start_checkpoint(args4)
    bare_ds = Dataset.from_list([dict(prompt=r["prompt"], images=[load_image(p, size) for p in r["images"]]) for r in rows])
    args5, cfg5 = tiny_config(cheap + ["domain"])

    def bare():
        _, cfg = tiny_config(cheap); cfg.reward_weights = None
        return GRPOTrainer(model=model, reward_funcs=[zero_reward], args=cfg, train_dataset=bare_ds)
    def judo(): return make_trainer(args4, tiny_config(cheap)[1], rows, size, n)
    def judo_domain():
        t = make_trainer(args5, tiny_config(cheap + ["domain"])[1], rows, size, n)
        t.reward_funcs[-1].model.encode(["warm up"])          # load the encoder outside the timed step
        return t
    variants = {"bare TRL (trivial reward)": bare, "judo (4 rewards, no encoder)": judo, "judo + domain (5 rewards)": judo_domain}
    for make in variants.values(): timed_step(make())         # warm-up: imports, caches, first-call costs
    times = {k: [] for k in variants}
    for _ in range(repeats):
        for k, make in variants.items(): times[k].append(timed_step(make()))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["bare TRL (trivial reward)"]
    lines = ["# Benchmark (c): one tiny GRPO step, judo vs bare TRL", "",
             f"Command: `OMP_NUM_THREADS=1 python benchmarks/bench_grpo_step.py --repeats {repeats}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs (load average "
             f"{os.getloadavg()[0]:.1f} at the end), torch {torch.__version__} on 1 thread, CPU only.", "",
             f"Setup: tiny warm-started Qwen2.5-VL, {len(rows)} judo-synth rows, {size}-px images, {n}x{n} grid, "
             f"G={cfg4.num_generations}, {cfg4.per_device_train_batch_size} completions per step (2 prompts), "
             f"max {cfg4.max_completion_length} new tokens, beta={cfg4.beta} (reference model), loss_type={cfg4.loss_type}. "
             "One `train()` step per fresh trainer (trainer construction not timed); variants alternate; "
             f"median of {repeats} after one warm-up each.", "",
             "| variant | median step (s) | all steps (s) | vs bare |", "|---|---|---|---|"]
    for k, v in times.items():
        lines.append(f"| {k} | {med[k]:.3f} | {', '.join(f'{x:.2f}' for x in v)} | {med[k] / base:.2f}x |")
    ratio = med["judo (4 rewards, no encoder)"] / base
    lines += ["", f"Target: judo without the domain encoder <= 1.1x bare TRL: **{ratio:.2f}x** "
              f"({'met' if ratio <= 1.1 else 'NOT met'}).", ""]
    OUT.parent.mkdir(parents=True, exist_ok=True); OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    main(p.parse_args().repeats)
