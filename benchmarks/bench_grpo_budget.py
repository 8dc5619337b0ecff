"""GRPO's budget on the main job: from finished `judo-pipeline` runs' cold-start models, GRPO again with other settings, and
the pipeline's own held-out evaluation before and after.

Every arm starts from the same cold-start folder of a run (RUN/coldstart) and is evaluated with that run's seed, so the
only difference to the run's own GRPO row is the GRPO settings. The cold start is re-evaluated here too, under the
same threads, so a change is GRPO's and not the float path's. Arms that finished (same --out) are read back.

    python benchmarks/bench_grpo_budget.py --runs 0=runs/demo_s0,1=runs/demo_s1 \
        --arm "recipe=" --arm "B=--max_steps 40 --per_device_train_batch_size 32 --learning_rate 2e-5"

Writes one JSON line per (arm, seed) to OUT/results.jsonl (replacing that arm and seed's earlier line) and prints a
table of the changes over the cold start, with `judo.report.paired_change` of the two models' answers: p is the exact
sign test of the questions that went wrong -> right against right -> wrong (all 640 together), and "by image" the
report's sign-flip test of each image's net change (`judo.report.image_flip_p`), which keeps an image's questions
together. A "pooled" row per arm adds the seeds' changes up (by image: each seed's images are its own).

`--sampled K` also answers every held-out question K times with GRPO's own sampler (`--temperature`, `--top_p`; the
evaluation's `temperature`, `sample_seed` 0..K-1, the same questions and option orders), before and after: what GRPO's
accuracy reward scores in training, on images it never saw. A question's sampled accuracy is its share of right draws;
p is the sign test of the questions whose share rose against those whose share fell, and by image the sign-flip test
of each image's net count (questions that rose minus those that fell).
"""
import argparse, dataclasses, json, shlex, subprocess, sys, time
from pathlib import Path

import numpy as np

from judo.evaluate import answered_right
from judo.pipeline import data_root_for, eval_questions, load_pipeline_config
from judo.report import evaluate_checkpoint, image_flip_p, image_nets, paired_change, score_row, sign_test_p

COLUMNS = ("AD", "DefCls", "DefLoc", "Avg", "seg F1")


def accuracy(recs: list) -> float:
    "Percent of held-out questions answered with the gold letter (every type together)."
    return 100 * sum(map(answered_right, recs)) / len(recs)


def sampled_draws(model_path: str, cfg, root: Path, questions: Path, out: Path, k: int, temperature: float, top_p: float) -> list:
    "K lists of answer records of one model on the held-out questions, sampled: the pipeline's evaluation with the sampler set (resumed from OUT/eval/draw_I)."
    return [evaluate_checkpoint(f"draw_{i}", model_path, dataclasses.replace(cfg, eval={**cfg.eval, "temperature": temperature, "top_p": top_p, "sample_seed": i}),
                                root, questions, out, progress=False) for i in range(k)]


def sampled_change(before: list, after: list) -> dict:
    "Per question, the share of right draws before and after; mean accuracy (%) and the paired sign test of rose / fell."
    def share(draws):
        by = [{r["key"]: r for r in x} for x in draws]
        return {r["key"]: float(np.mean([answered_right(d[r["key"]]) for d in by])) for r in draws[0]}
    b, a = share(before), share(after)
    rose, fell = sum(a[q] > b[q] for q in b), sum(a[q] < b[q] for q in b)
    nets = image_nets([(r["image"], (a[r["key"]] > b[r["key"]]) - (a[r["key"]] < b[r["key"]])) for r in before[0]])
    return dict(k=len(before), acc_cold=round(100 * float(np.mean(list(b.values()))), 1),
                acc_grpo=round(100 * float(np.mean(list(a.values()))), 1), rose=rose, fell=fell, p=sign_test_p(rose, fell),
                p_image=image_flip_p(list(nets.values())), nets=nets)


def grpo_arm(run: Path, seed: int, name: str, extra: list, out: Path, recipe: str, threads: int,
             sampled: int = 0, temperature: float = 0.8, top_p: float = 0.95) -> dict:
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
    rec = dict(arm=name, seed=seed, extra=extra, run=str(run), grpo_seconds=secs, threads=threads,
               cold=r(score_row(cold)), grpo=r(score_row(new)), acc_cold=round(accuracy(cold), 1), acc_grpo=round(accuracy(new), 1),
               paired=paired_change(cold, new))
    was = {r["key"]: answered_right(r) for r in cold if not r.get("error")}     # paired as paired_change pairs them
    rec["nets"] = image_nets((r["image"], int(answered_right(r)) - int(was[r["key"]])) for r in new if not r.get("error") and r["key"] in was)
    if sampled:
        t = f"t{temperature}_p{top_p}"
        before = sampled_draws(str(run / "coldstart"), cfg, root, questions, out / f"coldstart_s{seed}" / t, sampled, temperature, top_p)
        after = sampled_draws(str(d / "grpo"), cfg, root, questions, d / t, sampled, temperature, top_p)
        rec["sampled"] = dict(temperature=temperature, top_p=top_p, **sampled_change(before, after))
    return rec


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
    p.add_argument("--sampled", type=int, default=0, help="also answer each question this many times with GRPO's sampler")
    p.add_argument("--temperature", type=float, default=0.8, help="the sampler's temperature (the tiny recipes' GRPO: 0.8)")
    p.add_argument("--top_p", type=float, default=0.95, help="the sampler's top_p (the tiny recipes' GRPO: 0.95)")
    a = p.parse_args()
    import torch; torch.set_num_threads(a.threads)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    runs = {int(k): Path(v) for k, v in (x.split("=", 1) for x in a.runs.split(","))}
    arms = [(n, shlex.split(e)) for n, e in (x.split("=", 1) for x in a.arm)]
    res = []
    for name, extra in arms:
        for seed, run in sorted(runs.items()):
            res.append(grpo_arm(run, seed, name, extra, out, a.recipe, a.threads, a.sampled, a.temperature, a.top_p))
            save(out / "results.jsonl", res[-1])
    print("| arm | seed | accuracy | wrong -> right / right -> wrong, p, p by image | " + " | ".join(COLUMNS) + " | GRPO s |\n|"
          + "---|" * (len(COLUMNS) + 5))
    for x in res:
        ch = " | ".join(f"{x['grpo'][k]:.1f} ({x['grpo'][k] - x['cold'][k]:+.1f})" for k in COLUMNS)
        pa = x["paired"]["all"]
        print(f"| {x['arm']} | {x['seed']} | {x['acc_grpo']:.1f} ({x['acc_grpo'] - x['acc_cold']:+.1f}) | "
              f"{pa['gained']} / {pa['lost']}, {fmt_p(pa['p'])}, {fmt_p(pa['p_image'])} | {ch} | {x['grpo_seconds']} |")
    for name, xs in pooled(res, lambda x: (x["paired"]["all"]["gained"], x["paired"]["all"]["lost"], x["nets"])):
        print(f"| {name} | pooled | | {xs} |" + " |" * (len(COLUMNS) + 1))
    if any("sampled" in x for x in res):
        print("\n| arm | seed | draws | sampled accuracy, cold start -> GRPO | questions rose / fell, p, p by image |\n|---|---|---|---|---|")
        for x in res:
            if (sm := x.get("sampled")):
                print(f"| {x['arm']} | {x['seed']} | {sm['k']} x T {sm['temperature']} | {sm['acc_cold']:.1f} -> {sm['acc_grpo']:.1f} | "
                      f"{sm['rose']} / {sm['fell']}, {fmt_p(sm['p'])}, {fmt_p(sm['p_image'])} |")
        for name, xs in pooled([x for x in res if "sampled" in x], lambda x: (x["sampled"]["rose"], x["sampled"]["fell"], x["sampled"]["nets"])):
            print(f"| {name} | pooled | | | {xs} |")


def fmt_p(p: float) -> str: return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def pooled(res: list, counts) -> list:
    "Per arm with more than one seed: 'up / down, p, p by image' over its seeds together (each seed's images its own clusters)."
    out = []
    for name in dict.fromkeys(x["arm"] for x in res):
        xs = [counts(x) for x in res if x["arm"] == name]
        if len(xs) < 2: continue
        up, down = sum(u for u, _, _ in xs), sum(d for _, d, _ in xs)
        out.append((name, f"{up} / {down}, {fmt_p(sign_test_p(up, down))}, {fmt_p(image_flip_p([v for _, _, n in xs for v in n.values()]))}"))
    return out


if __name__ == "__main__":
    sys.exit(main())
