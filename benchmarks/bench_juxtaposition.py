"""Benchmark (issue 4): does the item-matched NORMAL reference help Stage 1? Juxtaposed (query + reference) vs
query-only (no reference image) Stage-1 training of the tiny model on judo-synth, at equal steps and at equal
training wall time, scored on held-out queries separately for defects visible in the query alone and for
comparison-only defects (pill_box `wrong_color` / `swapped`), over several seeds.

Run (11 min on the shared 2-core dev machine at the defaults, 600 steps x batch 4; wall time grows with --steps;
at most 2 training processes at a time, 1 torch thread each):
    PYTHONPATH=. .venv/bin/python benchmarks/bench_juxtaposition.py --steps 600 --batch 4 --seeds 0,1
writes benchmarks/results/juxtaposition.md and benchmarks/results/juxtaposition.json (raw numbers + every reply).
From the model that looks (issue #16; `--model tiny-look`, the shipped look-pretrained tiny Qwen3-VL of judo.look, one
checkpoint for every seed, the seed sets the data order), at the tiny-look recipe's Stage 1 (60 x 8, lr 5e-4):
    PYTHONPATH=. .venv/bin/python benchmarks/bench_juxtaposition.py --model tiny-look --steps 60 --batch 8 --lr 5e-4 \
        --seeds 0,1,2 --name juxtaposition_look

Training goes through `judo.stage1.main` (Stage1Args + trl.SFTConfig); scoring through `judo.stage1.evaluate_segmentation`
on the saved model. What judo.stage1 lacks and this script adds: the split of `evaluate_segmentation`'s predictions
by judo-synth visibility (`per_visibility`), each group scored with `judo.stage1.seg_metrics`.
"""
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path

ENV = dict(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", MPLBACKEND="Agg",
           OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
for k, v in ENV.items(): os.environ.setdefault(k, v)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# washer (all defects visible) + pill_box (missing: visible; wrong_color, swapped: comparison-only); 40% held out,
# so the test split has 40 comparison-only queries (20 per type), 80 visible defects and 80 normals.
DATA = dict(categories="washer,pill_box", n_per_category=250, test_frac=0.4, seed=0)
ARMS = ("juxtaposed", "query_only")


# ---------------------------------------------------------------- one training run (a subprocess)
def train_and_eval(arm: str, seed: int, steps: int, out: Path, batch: int, lr: float, model: str = "tiny") -> dict:
    "Stage 1 via judo.stage1.main, then evaluate_segmentation on the whole test split; returns the raw record."
    import torch
    torch.set_num_threads(1)
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig
    from judo.models import load_vlm
    from judo.tiny import build_tiny_vlm
    from judo.stage1 import Stage1Args, data_geometry, evaluate_segmentation, main
    from judo.synth import read_synth, synth_dataset
    hf_logging.set_verbosity_error()
    root = synth_dataset(**DATA)
    qo = arm == "query_only"
    base = str(build_tiny_vlm(seed=seed)) if model == "tiny" else model      # 'tiny-look': one shipped checkpoint
    args = Stage1Args(model_name_or_path=base, data=str(root), query_only=qo, eval_samples=0)
    sft = SFTConfig(output_dir=str(out), use_cpu=True, bf16=False, gradient_checkpointing=False, max_steps=steps,
                    learning_rate=lr, lr_scheduler_type="cosine", warmup_steps=max(1, steps // 20),
                    per_device_train_batch_size=batch, max_length=None, logging_steps=max(1, steps // 20),
                    save_strategy="no", report_to="none", dataloader_num_workers=0, disable_tqdm=True, seed=seed)
    summary = main(args, sft)
    model, proc = load_vlm(out)
    size, n = data_geometry(root)
    t0 = time.perf_counter()
    ev = evaluate_segmentation(model, proc, read_synth(root, "test"), root, size, n, query_only=qo, seed=seed)
    return dict(arm=arm, seed=seed, steps=summary["global_step"], batch=batch, lr=lr,
                train_seconds=summary["train_seconds"], eval_seconds=round(time.perf_counter() - t0, 2),
                train_loss=summary["train_loss"], losses=summary["losses"], n_rows=summary["n_rows"],
                predictions=ev["predictions"])


# ---------------------------------------------------------------- scoring by visibility
def per_visibility(predictions: list, samples: list, n: int) -> dict:
    "seg_metrics for {visible, comparison_only}: each group = its defective queries + ALL normal test queries; plus normals alone."
    import numpy as np
    from judo.grid import decode_cells
    from judo.stage1 import parse_seg, seg_metrics
    vis = {s.image: s.meta.get("visibility") for s in samples}
    cat = {s.image: s.category for s in samples}
    P = {p["image"]: (parse_seg(p["reply"], n), decode_cells(p["true_seg"], n)) for p in predictions}
    flagged = lambda im: P[im][0] is not None and bool(P[im][0].any())
    normals = [im for im in P if vis[im] is None]
    out = {}
    for g in ("visible", "comparison_only"):
        ims = [im for im in P if vis[im] == g]
        m = seg_metrics(*zip(*[P[im] for im in ims + normals]))
        d = seg_metrics(*zip(*[P[im] for im in ims]))  # defective queries only: cell scores without normals' false cells
        out[g] = dict(n_defective=len(ims), n_normal=len(normals), detection_accuracy=m["detection_accuracy"],
                      defect_recall=float(np.mean([flagged(im) for im in ims])), f1=m["f1"], iou=m["iou"],
                      f1_defective_only=d["f1"], format_valid=m["format_valid"])
    out["normal"] = dict(n=len(normals), specificity=float(np.mean([not flagged(im) for im in normals])),
                         format_valid=float(np.mean([P[im][0] is not None for im in normals])),
                         by_category={c: float(np.mean([not flagged(im) for im in normals if cat[im] == c]))
                                      for c in sorted({cat[im] for im in normals})})
    out["all"] = {k: v for k, v in seg_metrics(*zip(*P.values())).items()}
    return out


# ---------------------------------------------------------------- orchestration
MODEL = "tiny"   # --model

def launch(arm, seed, steps, out, batch, lr):
    "Start one run as a subprocess (1 thread); it writes out/record.json."
    cmd = [sys.executable, __file__, "--worker", arm, "--seed", str(seed), "--steps", str(steps), "--out", str(out),
           "--batch", str(batch), "--lr", str(lr), "--model", MODEL]
    log = open(out.with_suffix(".log"), "w")
    return subprocess.Popen(cmd, env={**os.environ, **ENV, "PYTHONPATH": str(HERE.parent)}, stdout=log, stderr=subprocess.STDOUT)


def run_pair(jobs: list, work: Path) -> list:
    "Run up to two jobs at once; return their records (in order)."
    procs, t0 = [], time.perf_counter()
    for name, arm, seed, steps, batch, lr in jobs:
        out = work / name; out.parent.mkdir(parents=True, exist_ok=True)
        procs.append((name, out, launch(arm, seed, steps, out, batch, lr)))
    recs = []
    for name, out, p in procs:
        if p.wait() != 0: sys.exit(f"{name} failed (rc {p.returncode}); see {out.with_suffix('.log')}")
        recs.append(json.loads((out / "record.json").read_text()))
    print(f"  {[j[0] for j in jobs]} done in {time.perf_counter() - t0:.0f}s: "
          + ", ".join(f"{r['arm']} s{r['seed']} {r['steps']} steps {r['train_seconds']:.0f}s" for r in recs), flush=True)
    return recs


def mean_sd(xs):
    import numpy as np
    xs = [x for x in xs if x is not None]
    return (float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0) if xs else (None, None)


def fmt(ms): return "n/a" if ms[0] is None else f"{ms[0]:.3f} ± {ms[1]:.3f}"


def table(records: list, setting: str) -> list[str]:
    "Markdown rows for one setting: per arm, mean ± sd over seeds of each metric, per visibility group."
    lines = [f"| arm | steps | train s | group | detection (bal.) | defect recall | normal spec. | cell F1 | IoU | format-valid |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for arm in ARMS:
        rs = [r for r in records if r["arm"] == arm]
        steps = "/".join(str(r["steps"]) for r in rs); secs = "/".join(f"{r['train_seconds']:.0f}" for r in rs)
        for g in ("visible", "comparison_only"):
            get = lambda k: fmt(mean_sd([r["scores"][g][k] for r in rs]))
            lines.append(f"| {arm} | {steps} | {secs} | {g} (n={rs[0]['scores'][g]['n_defective']}) | {get('detection_accuracy')} "
                         f"| {get('defect_recall')} | {fmt(mean_sd([r['scores']['normal']['specificity'] for r in rs]))} "
                         f"| {get('f1')} | {get('iou')} | {get('format_valid')} |")
    return [f"**{setting}**", "", *lines, ""]


def orchestrate(steps: int, seeds: list, batch: int, lr: float, work: Path, name: str = "juxtaposition"):
    from judo.stage1 import data_geometry
    from judo.synth import read_synth, synth_dataset
    t_start = time.perf_counter()
    root = synth_dataset(**DATA)
    test, (size, n) = read_synth(root, "test"), data_geometry(root)
    counts = {}
    for s in test: counts[s.meta.get("visibility") or "normal"] = counts.get(s.meta.get("visibility") or "normal", 0) + 1
    print(f"data {root}: test {counts}", flush=True)
    recs = []
    for seed in seeds:  # equal steps; the two arms of a seed run side by side, so they see the same machine load
        recs += run_pair([(f"s{seed}/{a}_{steps}", a, seed, steps, batch, lr) for a in ARMS], work)
    for i in range(0, len(seeds), 2):  # equal wall time: query-only gets the juxtaposed run's seconds, at its own speed
        jobs = []
        for seed in seeds[i:i + 2]:
            j, q = [next(r for r in recs if r["seed"] == seed and r["arm"] == a) for a in ARMS]
            eq = int(round(steps * j["train_seconds"] / q["train_seconds"]))
            jobs.append((f"s{seed}/query_only_eqtime_{eq}", "query_only", seed, eq, batch, lr))
        for r in run_pair(jobs, work): r["setting"] = "equal_time"; recs.append(r)
    for r in recs:
        r.setdefault("setting", "equal_steps")
        r["scores"] = per_visibility(r["predictions"], test, n)
    eq_steps = [r for r in recs if r["setting"] == "equal_steps"]
    eq_time = [r for r in recs if r["arm"] == "juxtaposed"] + [r for r in recs if r["setting"] == "equal_time"]
    total = time.perf_counter() - t_start
    meta = dict(model=MODEL, data=DATA, data_root=str(root), test_counts=counts, image_size=size, grid_size=n, steps=steps, seeds=seeds,
                batch=batch, lr=lr, wall_seconds=round(total, 1), machine=machine(),
                command=" ".join(["PYTHONPATH=. .venv/bin/python", "benchmarks/bench_juxtaposition.py", *sys.argv[1:]]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(dict(meta=meta, records=recs), indent=1, default=str))
    md = report(meta, eq_steps, eq_time, recs, name)
    (RESULTS / f"{name}.md").write_text(md)
    print(md)


def machine() -> str:
    import torch, transformers, trl
    load = os.getloadavg()
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs "
            f"(load avg {load[0]:.1f} at the end), Python {platform.python_version()}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, trl {trl.__version__}; 1 torch thread per process, 2 processes at a time")


def report(meta, eq_steps, eq_time, recs, name="juxtaposition") -> str:
    c = meta["test_counts"]
    out = [f"# Juxtaposed vs query-only Stage 1 ({meta.get('model', 'tiny')} model, judo-synth)", "",
           f"Command: `{meta['command']}` — {meta['wall_seconds'] / 60:.1f} min wall in all.", "",
           f"Machine: {meta['machine']}.", "",
           f"Data: `make_synth({', '.join(f'{k}={v!r}' for k, v in meta['data'].items())})` ({meta['image_size']} px, "
           f"{meta['grid_size']}x{meta['grid_size']} grid). Held-out test split: {c.get('visible', 0)} visible defects "
           f"(washer scratch/crack/broken, pill_box missing), {c.get('comparison_only', 0)} comparison-only defects "
           f"(pill_box wrong_color/swapped), {c.get('normal', 0)} normals. Juxtaposed: query + item-matched reference "
           f"(`reference='auto'` = judo-synth's own reference); query-only: `Stage1Args(query_only=True)`, same rows without the reference.", "",
           (f"Model: tiny Qwen2.5-VL (`build_tiny_vlm(seed=s)`: weights and tokenizer from the seed), full fine-tuning through "
            f"`judo.stage1.main`, batch {meta['batch']}, AdamW lr {meta['lr']}, cosine, 5% warm-up, seeds {meta['seeds']} "
            f"(the seed sets init, tokenizer and data order; both arms of a seed share them). " if meta.get("model", "tiny") == "tiny" else
            f"Model: `{meta['model']}` (one checkpoint for every seed: the look-pretrained tiny Qwen3-VL of `judo.look`, its chat "
            f"template asking the question before the images), full fine-tuning through `judo.stage1.main`, batch {meta['batch']}, "
            f"AdamW lr {meta['lr']}, cosine, 5% warm-up, seeds {meta['seeds']} (the seed sets the data order; both arms of a seed "
            f"share it). ") + f"Budget: {meta['steps']} steps "
           f"for the equal-steps comparison; for equal wall time, query-only runs "
           f"round(steps x juxtaposed seconds / query-only seconds) steps, the speed ratio measured on the two equal-steps "
           f"runs of that seed, which ran side by side.", "",
           "Scoring (`evaluate_segmentation`, greedy, stops at `</seg>`; the visibility split is done in this script): each "
           "group = its defective queries + **all** normal test queries (normals count in both groups); detection = balanced "
           "accuracy (mean of defect recall and normal specificity; a query is flagged when any cell is marked); cell F1 "
           "pooled over the group's queries (normals' false cells included); IoU = mean over the group's defective queries. "
           "Values are mean ± sd over seeds (sd with ddof=1).", "",
           "## (a) Equal steps", "", *table(eq_steps, f"{meta['steps']} steps each"),
           "## (b) Equal wall time", "", *table(eq_time, "query-only trained for the juxtaposed run's seconds"),
           "## Per seed", "",
           "| setting | arm | seed | steps | train s | final loss | det. visible | det. comparison-only | F1 visible | F1 comparison-only | normal spec. |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        s = r["scores"]
        out.append(f"| {r['setting']} | {r['arm']} | {r['seed']} | {r['steps']} | {r['train_seconds']:.0f} | "
                   f"{r['losses'][-1] if r['losses'] else float('nan'):.3f} | {s['visible']['detection_accuracy']:.3f} | "
                   f"{s['comparison_only']['detection_accuracy']:.3f} | {s['visible']['f1']:.3f} | "
                   f"{s['comparison_only']['f1']:.3f} | {s['normal']['specificity']:.3f} |")
    out += ["", f"Raw numbers (losses, every reply): `benchmarks/results/{name}.json`.", "", "## Reading", "", "_(written by hand after each run)_", ""]
    return "\n".join(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", choices=ARMS, help="internal: one training run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds")
    ap.add_argument("--steps", type=int, default=600, help="training steps of the equal-steps comparison")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/judo_bench_juxtaposition"))
    ap.add_argument("--model", default="tiny", help="the start model: tiny (random weights per seed), tiny-look, or a model "
                    "folder (e.g. bench_look_stage.py's OUT/model)")
    ap.add_argument("--name", default="juxtaposition", help="results file stem in benchmarks/results/")
    a = ap.parse_args(); MODEL = a.model
    if MODEL not in ("tiny", "tiny-look") and not (Path(MODEL) / "config.json").is_file():
        ap.error(f"--model {MODEL}: use tiny, tiny-look or a model folder holding config.json")
    if MODEL not in ("tiny", "tiny-look"): MODEL = a.model = str(Path(MODEL).resolve())
    if a.worker:
        rec = train_and_eval(a.worker, a.seed, a.steps, a.out, a.batch, a.lr, a.model)
        (a.out / "record.json").write_text(json.dumps(rec, default=str))
    else:
        orchestrate(a.steps, [int(s) for s in a.seeds.split(",")], a.batch, a.lr, a.work, a.name)
