"""GRPO's budget on the main job: from finished `judo-pipeline` runs' cold-start models, GRPO again with other settings, and
the pipeline's own held-out evaluation before and after.

Every arm starts from the same cold-start folder of a run (RUN/coldstart) and is evaluated with that run's seed, so the
only difference to the run's own GRPO row is the GRPO settings. The cold start is re-evaluated here too, under the
same threads, so a change is GRPO's and not the float path's. Arms that finished (same --out) are read back.

    python benchmarks/bench_grpo_budget.py --runs 0=runs/demo_s0,1=runs/demo_s1 \
        --arm "recipe=" --arm "B=--max_steps 40 --per_device_train_batch_size 32 --learning_rate 2e-5"

Writes one JSON line per (arm, seed) to OUT/results.jsonl (replacing that arm and seed's earlier line) and prints a
table of the changes over the cold start, with `judo.report.paired_change` of the two models' answers: p is the exact
sign test of the questions that went wrong -> right against right -> wrong (all 640 together).
"""
import argparse, json, shlex, subprocess, sys, time
from pathlib import Path

from judo.evaluate import answered_right, read_answers
from judo.pipeline import data_root_for, eval_questions, load_pipeline_config
from judo.report import evaluate_checkpoint, paired_change, score_row

COLUMNS = ("AD", "DefCls", "DefLoc", "Avg", "seg F1")


def accuracy(recs: list) -> float:
    "Percent of held-out questions answered with the gold letter (every type together)."
    return 100 * sum(map(answered_right, recs)) / len(recs)


def grpo_arm(run: Path, seed: int, name: str, extra: list, out: Path, recipe: str, threads: int) -> dict:
    "GRPO from RUN/coldstart with the recipe's own command line plus `extra`, then the held-out scores."
    cfg, rdir = load_pipeline_config(recipe, seed=seed)
    root = data_root_for(cfg); questions = eval_questions(cfg, root)
    own = json.loads((run / "grpo" / "judo_pipeline_stage.json").read_text())["command"]   # the run's GRPO command
    if own[own.index("--seed") + 1] != str(seed): raise SystemExit(f"{run}: its GRPO ran with another seed than {seed}")
    d = out / f"{name}_s{seed}"; d.mkdir(parents=True, exist_ok=True)
    cmd = [*own[:own.index("--output_dir")], "--output_dir", str(d / "grpo"), *own[own.index("--output_dir") + 2:],
           "--save_strategy", "no", "--torch_threads", str(threads), *extra]
    t0, secs = time.time(), None             # None: trained by an earlier run of this script (`save` keeps its time)
    if not (d / "grpo" / "model.safetensors").is_file():
        with open(d / "grpo.log", "w") as log: subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
        secs = round(time.time() - t0)
    cold = evaluate_checkpoint("coldstart", str(run / "coldstart"), cfg, root, questions, out / f"coldstart_s{seed}", progress=False)
    new = evaluate_checkpoint("grpo", str(d / "grpo"), cfg, root, questions, d, progress=False)
    r = lambda row: {k: round(v, 1) for k, v in row.items()}
    return dict(arm=name, seed=seed, extra=extra, run=str(run), grpo_seconds=secs, threads=threads,
                cold=r(score_row(cold)), grpo=r(score_row(new)), acc_cold=round(accuracy(cold), 1), acc_grpo=round(accuracy(new), 1),
                paired=paired_change(cold, new))


def save(path: Path, rec: dict):
    """Write `rec` into the JSON-lines file, replacing an earlier line of the same arm and seed (a re-run re-scores it);
    under a lock, so processes run side by side on one --out keep each other's lines."""
    import fcntl
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = [json.loads(l) for l in open(path)] if path.is_file() else []
        same = lambda x: (x["arm"], x["seed"]) == (rec["arm"], rec["seed"])
        if rec["grpo_seconds"] is None: rec["grpo_seconds"] = next((x["grpo_seconds"] for x in old if same(x)), None)
        keep = [x for x in old if not same(x)]
        tmp = path.with_suffix(".tmp"); tmp.write_text("".join(json.dumps(x) + "\n" for x in [*keep, rec])); tmp.replace(path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", required=True, help="SEED=RUN_FOLDER,... finished judo-pipeline runs of --recipe")
    p.add_argument("--arm", action="append", required=True, help="NAME=EXTRA judo-grpo arguments ('NAME=' for the run's own)")
    p.add_argument("--recipe", default="tiny-look")
    p.add_argument("--out", default="runs/bench_grpo_budget")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    import torch; torch.set_num_threads(a.threads)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    runs = {int(k): Path(v) for k, v in (x.split("=", 1) for x in a.runs.split(","))}
    arms = [(n, shlex.split(e)) for n, e in (x.split("=", 1) for x in a.arm)]
    res = []
    for name, extra in arms:
        for seed, run in sorted(runs.items()):
            res.append(grpo_arm(run, seed, name, extra, out, a.recipe, a.threads))
            save(out / "results.jsonl", res[-1])
    print("| arm | seed | accuracy | wrong -> right / right -> wrong, p | " + " | ".join(COLUMNS) + " | GRPO s |\n|" + "---|" * (len(COLUMNS) + 5))
    for x in res:
        ch = " | ".join(f"{x['grpo'][k]:.1f} ({x['grpo'][k] - x['cold'][k]:+.1f})" for k in COLUMNS)
        pa = x["paired"]["all"]
        print(f"| {x['arm']} | {x['seed']} | {x['acc_grpo']:.1f} ({x['acc_grpo'] - x['acc_cold']:+.1f}) | "
              f"{pa['gained']} / {pa['lost']}, {pa['p']:.3f} | {ch} | {x['grpo_seconds']} |")


if __name__ == "__main__":
    sys.exit(main())
