"""One-shot GPU check of judo's tiny-model stages through the library's own entry points.

  python benchmarks/gpu_check.py [--cpu] [--out DIR]

Builds the tiny Qwen2.5-VL (`judo.tiny.build_tiny_vlm`) and judo-synth (`judo.synth.synth_dataset`), then
(1) Stage 1 via `judo.stage1.main` (the tiny recipe, overridden to the paper's GPU settings: bf16 weights, sdpa,
    bf16: true, gradient checkpointing; 100 steps), loss before/after and held-out <seg> scores;
(2) Stage 3 via `judo.grpo.main` (the tiny recipe, bf16, activation checkpointing, 3 steps, rewards
    accuracy/format/structure/seg_f1 -- the domain reward is skipped: no sentence encoder is carried), starting from
    the Stage-1 folder, then again from the tiny recipe's own start 'tiny-warm' (a Stage-1 model never saw the
    <answer> layout, so its rewards can all be 0 and then nothing moves); checks rewards were logged and weights changed;
(3) `judo.evaluate.evaluate` batched on a few judo-synth MMAD questions.
If a stage fails with the paper settings it is retried once with the tiny-recipe settings (float32 weights, no
checkpointing) so one device call gives both the failure and the rest of the numbers.  A JSON summary goes to
OUT/gpu_check.json.  `--cpu` runs the same thing on the CPU (use_cpu: true, bf16: false; weights still bf16).
"""
import argparse, json, os, platform, sys, tempfile, time, traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

p = argparse.ArgumentParser()
p.add_argument("--cpu", action="store_true", help="run on the CPU (CI-like check of this script)")
p.add_argument("--out", default=os.environ.get("OUT") or "/tmp/judo_gpu_check_out")
p.add_argument("--work", default=None, help="scratch folder for models (default: a temp dir)")
p.add_argument("--stage1_steps", type=int, default=100)   # the tiny recipe's; 30 steps leave no well-formed <seg>
p.add_argument("--grpo_steps", type=int, default=3)
p.add_argument("--eval_questions", type=int, default=16)
a = p.parse_args()
OUT = Path(a.out); OUT.mkdir(parents=True, exist_ok=True)
WORK = Path(a.work or tempfile.mkdtemp(prefix="judo_gpu_check_")); WORK.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("JUDO_CACHE", str(WORK / "cache"))

T0 = time.time()
summary = dict(mode="cpu" if a.cpu else "cuda", steps=dict(stage1=a.stage1_steps, grpo=a.grpo_steps), phases={})
def log(*x): print(f"[{time.time() - T0:7.1f}s]", *x, flush=True)
def save(): (OUT / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str))

import importlib.metadata as md
import torch, yaml
vers = {k: (md.version(k) if k != "python" else platform.python_version()) for k in
        ("python", "torch", "transformers", "trl", "datasets", "accelerate", "peft", "huggingface_hub", "tokenizers",
         "safetensors", "pyarrow", "fsspec", "fastcore", "numpy", "regex", "dill", "multiprocess")}
import transformers, trl, datasets
vers["transformers_file"] = transformers.__file__
summary["versions"] = vers
summary["cuda"] = dict(available=torch.cuda.is_available(), torch_cuda=torch.version.cuda,
                       device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                       bf16_supported=torch.cuda.is_available() and torch.cuda.is_bf16_supported())
log("versions", json.dumps(vers)); log("cuda", json.dumps(summary["cuda"]))
if not a.cpu and not torch.cuda.is_available(): sys.exit("no CUDA device (use --cpu)")
torch.set_num_threads(1 if a.cpu else 8)
DEV = "cpu" if a.cpu else "cuda"

from judo.models import load_vlm, param_counts
from judo.tiny import build_tiny_vlm
from judo.synth import synth_dataset

def phase(name, fn):
    "Run one phase; record ok/error/seconds; return its value or None."
    t = time.time(); log(f"--- {name}")
    try:
        v = fn(); summary["phases"][name] = dict(ok=True, seconds=round(time.time() - t, 2), **(v if isinstance(v, dict) else {}))
        log(f"{name}: ok in {time.time() - t:.1f}s"); save(); return v
    except Exception as e:
        tb = traceback.format_exc(); print(tb, flush=True)
        summary["phases"][name] = dict(ok=False, seconds=round(time.time() - t, 2), error=f"{type(e).__name__}: {e}"[:2000],
                                       traceback=tb[-4000:])
        log(f"{name}: FAILED {type(e).__name__}: {e}"); save(); return None

# ---------------------------------------------------------------- setup
def setup():
    tiny = build_tiny_vlm()
    m, _ = load_vlm(tiny)
    s1 = synth_dataset(n_per_category=16, categories="washer,pill_box")    # the tiny Stage-1 recipe's data
    return dict(tiny=str(tiny), params=param_counts(m)["total"], synth=str(s1))
S = phase("setup", setup)

# ---------------------------------------------------------------- Stage 1
def recipe(name: str, **over) -> str:
    "The tiny recipe with overrides, as a YAML file for the stage's own parser."
    cfg = yaml.safe_load((REPO / f"recipes/tiny/{name}.yaml").read_text()); cfg.update(over)
    f = WORK / f"{name}_{len(list(WORK.glob(name + '_*.yaml')))}.yaml"; f.write_text(yaml.safe_dump(cfg)); return str(f)

GPU_SFT = dict(dtype="bfloat16", attn_implementation="sdpa", bf16=not a.cpu, use_cpu=a.cpu, gradient_checkpointing=True)
FALLBACK_SFT = dict(dtype="auto", attn_implementation=None, bf16=not a.cpu, use_cpu=a.cpu, gradient_checkpointing=False)

def stage1(settings):
    def run():
        from trl import SFTConfig, TrlParser
        from judo.stage1 import Stage1Args, main
        out = WORK / f"stage1_{settings['dtype']}"
        args, sft = TrlParser((Stage1Args, SFTConfig)).parse_args_and_config(
            ["--config", recipe("stage1", output_dir=str(out), max_steps=a.stage1_steps, logging_steps=1,
                                save_strategy="no", **settings)])
        s = main(args, sft)
        model_dtype = str(load_vlm(out)[0].dtype)
        L = s["losses"]
        return dict(settings=settings, output_dir=str(out), global_step=s["global_step"], loss_first=L[0], loss_last=L[-1],
                    loss_min=min(L), losses=[round(x, 4) for x in L], train_loss=s["train_loss"],
                    train_seconds=s["train_seconds"], saved_dtype=model_dtype, n_rows=s["n_rows"],
                    eval_before={k: v for k, v in (s["eval_before"] or {}).items() if k != "predictions"},
                    eval_after={k: v for k, v in (s["eval_after"] or {}).items() if k != "predictions"},
                    loss_decreased=L[-1] < L[0])
    return run

s1 = None
if S:
    s1 = phase("stage1", stage1(GPU_SFT))
    if s1 is None: s1 = phase("stage1_fallback", stage1(FALLBACK_SFT))

# ---------------------------------------------------------------- Stage 3 (GRPO)
REWARDS = ["accuracy", "format", "structure", "seg_f1"]     # domain skipped: no sentence encoder on the device
GPU_GRPO = dict(bf16=not a.cpu, use_cpu=a.cpu, model_init_kwargs=dict(dtype="bfloat16", attn_implementation="sdpa"),
                activation_checkpointing=True)
FALLBACK_GRPO = dict(bf16=not a.cpu, use_cpu=a.cpu, model_init_kwargs=dict(dtype="float32"), activation_checkpointing=False)

def grpo(settings, start, tag=""):
    def run():
        from safetensors.torch import load_file
        from judo.grpo import build_grpo_rows, main, parse_args, start_checkpoint
        out = WORK / f"grpo{tag}_{settings['model_init_kwargs']['dtype']}"
        args, cfg = parse_args(["--config", recipe("grpo", model_name_or_path=start, output_dir=str(out), max_steps=a.grpo_steps,
                                                   rewards=REWARDS, reward_weights=[1.0] * len(REWARDS), save_strategy="no",
                                                   torch_threads=1 if a.cpu else 8, **settings)])
        res = main(args, cfg)
        src = str(start_checkpoint(args)) if start == "tiny-warm" else start  # cached folder
        hist = json.loads((Path(res) / "trainer_state.json").read_text())["log_history"]
        steps = [h for h in hist if "reward" in h]
        keys = sorted({k for h in steps for k in h if k.startswith("rewards/") and k.endswith("/mean")})
        w0, w1 = load_file(str(Path(src) / "model.safetensors")), load_file(str(Path(res) / "model.safetensors"))
        diff = {k: (w1[k].float() - w0[k].float()).abs().max().item() for k in w0 if k in w1}
        changed = sum(v > 0 for v in diff.values())
        return dict(settings=settings, start=src, output_dir=str(res), logged_steps=len(steps), reward_keys=keys,
                    rewards_per_step=[{k: round(h[k], 4) for k in ["reward", "reward_std", "loss", "kl", *keys] if k in h}
                                      for h in steps],
                    rewards_logged=len(steps) > 0 and all(any(k.startswith(f"rewards/{r}") for k in keys) for r in REWARDS),
                    tensors=len(diff), tensors_changed=changed, max_abs_change=max(diff.values()),
                    weights_changed=changed > 0, saved_dtype=str(next(iter(w1.values())).dtype),
                    completions_mean_length=[h.get("completions/mean_length") for h in steps])
    return run

g = gw = None
if S:
    start = (s1 or {}).get("output_dir") or S["tiny"]
    g = phase("grpo", grpo(GPU_GRPO, start))
    if g is None: g = phase("grpo_fallback", grpo(FALLBACK_GRPO, start))
    # A Stage-1 model has never seen the <answer> layout, so its GRPO rewards may all be 0: zero advantages, no update.
    # The tiny GRPO recipe's own start, 'tiny-warm' (taught the layout; the CPU stand-in for Stage 2), shows the update.
    gw = phase("grpo_warm", grpo(GPU_GRPO, "tiny-warm", "_warm"))
    if gw is None: gw = phase("grpo_warm_fallback", grpo(FALLBACK_GRPO, "tiny-warm", "_warm"))

# ---------------------------------------------------------------- evaluate
def evaluate_phase():
    from judo.data import read_mmad
    from judo.evaluate import EvalConfig, dataset_geometry, evaluate, score_answers, seg_summary
    model_dir = (gw or g or s1 or {}).get("output_dir") or S["tiny"]
    root = S["synth"]; geo = dataset_geometry(root)
    model, proc = load_vlm(model_dir, dtype="bfloat16")
    model.to(DEV).eval()
    samples = read_mmad(root)
    cfg = EvalConfig(batch_size=8, max_new_tokens=96, max_samples=a.eval_questions, grid_size=geo["grid_size"], image_size=geo["image_size"])
    t = time.time()
    with torch.inference_mode(): recs = evaluate(model, proc, samples, root, cfg, progress=False)
    secs = time.time() - t
    sc = score_answers(recs)
    return dict(model=model_dir, device=str(model.device), dtype=str(model.dtype), questions=len(recs),
                errors=sum(bool(r.get("error")) for r in recs), answered=sum(r.get("raw") is not None for r in recs),
                generate_seconds=round(secs, 2), scores=dict(final=sc.final, average=sc.table.get("Average"), n_records=sc.n_records, n_scored=sc.n_scored,
                            n_unparseable=sc.n_unparseable, n_errors=sc.n_errors),
                seg=seg_summary(recs), example_raw=[r.get("raw") for r in recs[:2]])
if S: phase("evaluate", evaluate_phase)

summary["total_seconds"] = round(time.time() - T0, 1)
summary["all_ok"] = all(v["ok"] for k, v in summary["phases"].items() if not k.endswith("_fallback")) and \
                    set(summary["phases"]) >= {"setup", "stage1", "grpo", "grpo_warm", "evaluate"}
save()
log("SUMMARY", json.dumps({k: {kk: vv for kk, vv in v.items() if kk not in ("traceback", "losses", "rewards_per_step")}
                           for k, v in summary["phases"].items()}, default=str))
log("all_ok", summary["all_ok"])
