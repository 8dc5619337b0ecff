"""Benchmark (f): SFT training throughput, judo's trainer vs a bare AdamW loop over the very same batches.

    OMP_NUM_THREADS=1 python benchmarks/bench_throughput.py [--steps 30] [--repeats 3]

For Stage 1 (the demo's 112-px judo-synth rows, batch 8) and the cold start (its GRPO-row targets, batch 16), on the
tiny Qwen2.5-VL the demo trains:
- trainer: `judo.sft.make_sft_trainer` (TRL's SFTTrainer, the stage recipe's SFTConfig) timed over `train()` of
  `--steps` steps, no saving, no logging in between; rows/s = steps x batch / wall time; twice: `fused` (TRL 1.16's
  chunked LM-head loss, SFTTrainer's default) and `model` (`lm_loss: model`, the model's own cross-entropy: the tiny
  recipes' setting);
- collate: iterating the trainer's own train dataloader for the same steps (row decoding, image processing,
  tokenising, padding) and nothing else;
- bare: the same number of steps of forward / backward / AdamW (the recipe's learning rate) over batches taken from
  that dataloader beforehand, so the data cost is excluded: the floor a trainer can approach.
Variants alternate per repeat so that load on this shared machine hits them alike; medians are reported. Results go
to benchmarks/results/throughput.md.
"""
import argparse, os, platform, statistics, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import torch
from trl import SFTConfig, TrlParser

from judo.coldstart import ColdStartArgs, coldstart_rows
from judo.core import TRAINING_FILES
from judo.data import read_judo_grpo
from judo.sft import load_stage_model, make_sft_trainer
from judo.stage1 import Stage1Args, build_stage1_rows, stage1_data

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks/results/throughput.md"
DATA = "synth?n_per_category=160&size=112&grid=4&seed=0&test_frac=0.15"   # the demo's judo-synth (recipes/tiny/pipeline.yaml)


def parse(args_class, recipe: str, steps: int, batch: int, extra=()):
    argv = ["--config", str(REPO / recipe), "--data", DATA, "--output_dir", tempfile.mkdtemp(), "--max_steps", str(steps),
            "--per_device_train_batch_size", str(batch), "--save_strategy", "no", "--logging_steps", str(10 * steps),
            "--disable_tqdm", "true", "--eval_samples", "0", *extra]
    if args_class is ColdStartArgs: argv = [a for a in argv if a not in ("--eval_samples", "0")]
    return TrlParser((args_class, SFTConfig)).parse_args_and_config(args=argv)


def stage1_setup(steps):
    args, sft = parse(Stage1Args, "recipes/tiny/stage1.yaml", steps, 8)
    train, _, root, size, n = stage1_data(args)
    return args, sft, build_stage1_rows(train, root, size, n, args.reference, False, sft.seed).rows


def coldstart_setup(steps):
    args, sft = parse(ColdStartArgs, "recipes/tiny/coldstart.yaml", steps, 16, ["--think", "scan", "--option_copies", "3"])
    path, root, size, n = args.locate()
    rows = coldstart_rows(read_judo_grpo(path / TRAINING_FILES["grpo"]), root, size, n, args.think, args.option_copies, sft.seed)
    return args, sft, rows


def trainer_run(args, sft, rows, lm_loss="fused") -> float:
    model, proc = load_stage_model(args)
    tr = make_sft_trainer(model, proc, rows, sft, lm_loss=lm_loss)
    t0 = time.perf_counter(); tr.train(); return time.perf_counter() - t0


def batches_of(args, sft, rows, steps):
    "The trainer's own dataloader batches for `steps` steps, and the seconds iterating it took."
    model, proc = load_stage_model(args)
    tr = make_sft_trainer(model, proc, rows, sft)
    t0, out = time.perf_counter(), []
    while len(out) < steps:
        for b in tr.get_train_dataloader():
            out.append(b)
            if len(out) == steps: break
    return out, time.perf_counter() - t0


def bare_run(args, sft, batches) -> float:
    model, _ = load_stage_model(args)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=sft.learning_rate)
    t0 = time.perf_counter()
    for b in batches:
        loss = model(**{k: v for k, v in b.items() if k != "completion_mask"}).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def measure(name, setup, steps, repeats):
    args, sft, rows = setup(steps)
    batch = sft.per_device_train_batch_size
    trainer_run(args, sft, rows)                               # warm-up: imports, caches, first-call costs
    t = {"fused": [], "model": [], "collate": [], "bare": []}
    for _ in range(repeats):
        t["fused"].append(trainer_run(args, sft, rows, "fused"))
        t["model"].append(trainer_run(args, sft, rows, "model"))
        b, tc = batches_of(args, sft, rows, steps); t["collate"].append(tc)
        t["bare"].append(bare_run(args, sft, b))
    med = {k: statistics.median(v) for k, v in t.items()}
    toks = statistics.mean(int(x["attention_mask"].sum()) / x["attention_mask"].shape[0] for x in b)
    return dict(name=name, rows=len(rows), batch=batch, steps=steps, tokens=toks, times=t, med=med,
                rps={k: steps * batch / v for k, v in med.items()},
                config=dict(gc=sft.gradient_checkpointing, pad_free=getattr(sft, "padding_free", None),
                            workers=sft.dataloader_num_workers))


def main(steps, repeats):
    torch.set_num_threads(1)
    res = [measure("Stage 1", stage1_setup, steps, repeats), measure("cold start", coldstart_setup, steps, repeats)]
    lines = ["# Benchmark (f): SFT throughput, judo's trainer vs a bare loop on the same batches", "",
             f"Command: `OMP_NUM_THREADS=1 python benchmarks/bench_throughput.py --steps {steps} --repeats {repeats}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs (load average "
             f"{os.getloadavg()[0]:.1f} at the end), torch {torch.__version__} on 1 thread, CPU only.", "",
             "rows/s = steps x batch / median wall seconds. `collate` is the trainer's dataloader alone (decode, "
             "process images, tokenise, pad); `bare` is forward/backward/AdamW over batches taken beforehand.", "",
             "| stage | rows | batch | tokens/row | trainer rows/s, fused loss | trainer rows/s, model loss | collate rows/s | "
             "bare rows/s | trainer / bare time: fused | model |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res:
        lines.append(f"| {r['name']} | {r['rows']} | {r['batch']} | {r['tokens']:.0f} | {r['rps']['fused']:.1f} | "
                     f"{r['rps']['model']:.1f} | {r['rps']['collate']:.1f} | {r['rps']['bare']:.1f} | "
                     f"{r['med']['fused'] / r['med']['bare']:.2f}x | {r['med']['model'] / r['med']['bare']:.2f}x |")
    lines += ["", "All timings (s): " + "; ".join(f"{r['name']}: " + ", ".join(f"{k} {[round(x, 2) for x in v]}"
                                                                           for k, v in r["times"].items()) for r in res),
              "", "Trainer settings: " + "; ".join(f"{r['name']}: {r['config']}" for r in res), ""]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    old = OUT.read_text() if OUT.is_file() else ""
    keep = old[old.index("## Reading"):] if "## Reading" in old else ""   # the hand-written part survives a rerun
    OUT.write_text("\n".join(lines) + ("\n" + keep if keep else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    main(a.steps, a.repeats)
