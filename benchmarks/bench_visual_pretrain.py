"""Lever study for issue #16 (not JUDO, not used by the demo): generic visual pre-training of the tiny VLM.

    OMP_NUM_THREADS=1 python benchmarks/bench_visual_pretrain.py STEPS [OUT_DIR] [--answer cells|dense]

Procedural pairs that are not judo-synth: (a) a texture (flat, stripes, checks, weave, speckles) against another draw of
the same texture, the query with 0-2 odd marks (spot, line, patch); (b) an aligned tray of coloured discs / squares,
the query with 0-2 objects recoloured or removed (and sometimes an odd mark). The answer names the 4x4 cells that hold
a change, in a wording of its own ("r2c3 r4c1" / "none"; or `--answer dense`: one digit per cell, row by row,
"0010 0000 1100 0000"), not JUDO's <seg> format. Trains the random-weight tiny
Qwen2.5-VL (`resolve_model('tiny')`) with AdamW, batch 32, lr 1e-3 (100 warm-up steps, cosine to 10 %), and scores
cell F1 and detection (any cell vs none) on 64 held-out pairs every 500 steps; OUT_DIR (optional) receives the model,
for Stage 1 to start from. Results: benchmarks/results/visual_pretrain.md.
"""
import math, sys, time, json
import numpy as np, torch
from PIL import Image, ImageDraw

S, N = 112, 4          # image side, grid cells per side (one merged token per cell)
C = S // N

def rand_colour(rng, lo=0, hi=255): return tuple(int(x) for x in rng.integers(lo, hi, 3))

def texture_params(rng):
    return dict(kind=int(rng.integers(5)), per=int(rng.integers(4, 12)), ang=bool(rng.random() < 0.5),
                k=int(rng.integers(20, 120)), noise=float(rng.uniform(2, 10)), amp=float(rng.uniform(0.12, 0.3)))

def texture(rng, colour, P):
    "A background in `colour` of kind P['kind'] (flat, stripes, checks, weave, speckles); `rng` draws phase and noise."
    base = np.ones((S, S, 3)) * np.array(colour)
    yy, xx = np.mgrid[0:S, 0:S]; per = P["per"]; kind = P["kind"]
    if kind == 1:
        m = (((xx if P["ang"] else yy) + rng.integers(per)) % per) < per / 2
        base = base * (1 - P["amp"] * m[..., None])
    elif kind == 2:
        ph = rng.integers(per, size=2)
        m = (((xx + ph[0]) // per + (yy + ph[1]) // per) % 2) == 0
        base = base * (1 - P["amp"] * m[..., None])
    elif kind == 3:
        ph = rng.integers(per, size=2)
        m = np.sin((xx + ph[0]) * 2 * np.pi / per) * np.sin((yy + ph[1]) * 2 * np.pi / per)
        base = base * (1 + P["amp"] * m[..., None])
    elif kind == 4:
        for (x, y) in rng.integers(0, S, (P["k"], 2)): base[y:y + 2, x:x + 2] *= 0.5
    base = base + rng.normal(0, P["noise"], base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)

def layout(rng):
    "Objects on a plain tray: a k x k arrangement of coloured discs / squares (the same draw twice gives aligned pairs)."
    palette = [rand_colour(rng, 30, 240) for _ in range(4)]
    k = int(rng.choice([2, 3, 4])); bg = rand_colour(rng, 60, 230)
    shape = rng.random() < 0.5; r = int(S / k * rng.uniform(0.25, 0.4))
    items = [(int((i + 0.5) * S / k), int((j + 0.5) * S / k), int(rng.integers(4))) for j in range(k) for i in range(k)]
    return dict(bg=bg, palette=palette, items=items, shape=shape, r=r)

def draw_layout(L, noise_rng):
    im = Image.new("RGB", (S, S), L["bg"]); d = ImageDraw.Draw(im)
    for (x, y, c) in L["items"]:
        if c < 0: continue
        box = (x - L["r"], y - L["r"], x + L["r"], y + L["r"])
        (d.rectangle if L["shape"] else d.ellipse)(box, fill=L["palette"][c])
    a = np.asarray(im).astype(float) + noise_rng.normal(0, 3, (S, S, 3))
    return np.clip(a, 0, 255).astype(np.uint8)

def blob(rng, img):
    "Paint an odd mark (spot, line or patch of a contrasting colour) onto img; returns its mask."
    im = Image.fromarray(img); d = ImageDraw.Draw(im); mk = Image.new("L", (S, S), 0); dm = ImageDraw.Draw(mk)
    col = rand_colour(rng); mean = img.reshape(-1, 3).mean(0)
    if np.abs(np.array(col) - mean).sum() < 150: col = tuple(int(255 - m) for m in mean)
    x, y = rng.integers(6, S - 6, 2); kind = rng.integers(3)
    if kind == 0:
        r = int(rng.integers(3, 9)); box = (x - r, y - r, x + r, y + r); d.ellipse(box, fill=col); dm.ellipse(box, fill=255)
    elif kind == 1:
        l = rng.integers(12, 30); a = rng.uniform(0, np.pi); x2, y2 = x + l * np.cos(a), y + l * np.sin(a)
        w = int(rng.integers(1, 3)); d.line((x, y, x2, y2), fill=col, width=w); dm.line((x, y, x2, y2), fill=255, width=w + 2)
    else:
        w, h = rng.integers(4, 14, 2); box = (x, y, x + w, y + h); d.rectangle(box, fill=col); dm.rectangle(box, fill=255)
    return np.asarray(im), np.asarray(mk) > 0

def cells_of(mask, frac=0.02):
    out = []
    for r in range(N):
        for c in range(N):
            if mask[r * C:(r + 1) * C, c * C:(c + 1) * C].mean() > frac: out.append((r + 1, c + 1))
    return out

def make_pair(rng):
    "(query, reference, changed cells): an odd mark on a texture (reference: another draw of it), or a changed object in an aligned layout."
    if rng.random() < 0.5:
        col = rand_colour(rng, 40, 220); P = texture_params(rng); s1 = int(rng.integers(1 << 30))
        ref = texture(np.random.default_rng(s1), col, P)
        q = texture(np.random.default_rng(s1 if rng.random() < 0.5 else s1 + 1), col, P)
        mask = np.zeros((S, S), bool)
        for _ in range(int(rng.choice([0, 1, 1, 2]))):
            q, m = blob(rng, q); mask |= m
        return q, ref, cells_of(mask)
    L = layout(rng); ref = draw_layout(L, rng)
    Q = dict(L, items=list(L["items"])); changed = []
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        i = int(rng.integers(len(Q["items"]))); x, y, c = Q["items"][i]
        act = rng.integers(3)
        newc = -1 if act == 0 else int((c + rng.integers(1, 4)) % 4)
        Q["items"][i] = (x, y, newc); changed.append(i)
    q = draw_layout(Q, rng)
    diff = np.abs(q.astype(int) - ref.astype(int)).sum(-1) > 60
    if rng.random() < 0.3:        # an odd mark too
        q, m = blob(rng, q); diff |= m
    return q, ref, cells_of(diff)

ANSWER = "cells"      # 'cells': "r2c3 r4c1" / "none"; 'dense': one digit per cell, row by row ("0010 0000 1100 0000")

def answer_text(cells):
    if ANSWER == "dense":
        return " ".join("".join("1" if (r, c) in cells else "0" for c in range(1, N + 1)) for r in range(1, N + 1))
    return "none" if not cells else " ".join(f"r{r}c{c}" for r, c in cells)

def parse_answer(t):
    "The set of (row, col) cells an answer names, in either wording."
    if ANSWER == "dense":
        rows = t.split()[:N]
        return {(r + 1, c + 1) for r, w in enumerate(rows) for c, ch in enumerate(w[:N]) if ch == "1"}
    return {(int(w[1]), int(w[3])) for w in t.split()
            if len(w) == 4 and w[0] == "r" and w[2] == "c" and w[1].isdigit() and w[3].isdigit()}

PROMPT = "Picture 1 and picture 2. Which cells of picture 1 differ from picture 2 or hold an odd mark? Grid {n}x{n}."

class Batcher:
    def __init__(self, proc):
        self.proc = proc; tok = proc.tokenizer
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": PROMPT.format(n=N)}]}]
        text = proc.apply_chat_template(msgs, add_generation_prompt=True)
        n_img = (S // 14 // 2) ** 2
        text = text.replace("<|image_pad|>", "<|image_pad|>" * n_img)
        self.prompt_ids = tok(text, add_special_tokens=False)["input_ids"]
        self.eos = tok.convert_tokens_to_ids("<|im_end|>"); self.pad = tok.pad_token_id; self.tok = tok
        self.image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    def batch(self, rng, bs):
        qs, rs, ans = [], [], []
        for _ in range(bs):
            q, r, cells = make_pair(rng); qs.append(q); rs.append(r); ans.append(cells)
        ims = [Image.fromarray(x) for pair in zip(qs, rs) for x in pair]
        pv = self.proc.image_processor(images=ims, return_tensors="pt")
        seqs, labs = [], []
        for cells in ans:
            a = self.tok(answer_text(cells), add_special_tokens=False)["input_ids"] + [self.eos]
            seqs.append(self.prompt_ids + a); labs.append([-100] * len(self.prompt_ids) + a)
        L = max(map(len, seqs))
        ids = torch.full((bs, L), self.pad); lab = torch.full((bs, L), -100); att = torch.zeros((bs, L), dtype=torch.long)
        for i, (s, l) in enumerate(zip(seqs, labs)):
            ids[i, :len(s)] = torch.tensor(s); lab[i, :len(l)] = torch.tensor(l); att[i, :len(s)] = 1
        # mm_token_type_ids: without them transformers 5 silently drops the 3-D (M-RoPE) positions of the image tokens
        return dict(input_ids=ids, attention_mask=att, labels=lab, pixel_values=pv["pixel_values"],
                    image_grid_thw=pv["image_grid_thw"], mm_token_type_ids=(ids == self.image_id).long()), ans

def pretrain(model, proc, steps, bs=32, lr=1e-3, seed=0, log=100,
             loss_of=lambda model, batch, ans: model(**batch).loss,   # the step's loss from a Batcher batch
             eval_every=500, tag="step"):
    rng = np.random.default_rng(seed); b = Batcher(proc)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train(); t0 = time.perf_counter(); hist = []
    for step in range(1, steps + 1):
        for g in opt.param_groups: g["lr"] = lr * min(1.0, step / 100) * (0.5 * (1 + math.cos(math.pi * step / steps)) * 0.9 + 0.1)
        batch, ans = b.batch(rng, bs)
        loss = loss_of(model, batch, ans)
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
        hist.append(loss.item())
        if step % log == 0: print(f"{tag} {step} loss {np.mean(hist[-log:]):.4f} {time.perf_counter() - t0:.0f}s", flush=True)
        if eval_every and step % eval_every == 0: model.eval(); print("eval", step, evaluate(model, proc), flush=True); model.train()
    model.eval(); return hist

@torch.no_grad()
def evaluate(model, proc, n=64, seed=999):
    rng = np.random.default_rng(seed); b = Batcher(proc); tot = dict(tp=0, fp=0, fn=0, det=0, n=0)
    batch, ans = b.batch(rng, n)
    ids = batch["input_ids"][:, :len(b.prompt_ids)]
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=batch["pixel_values"],
                         image_grid_thw=batch["image_grid_thw"], mm_token_type_ids=batch["mm_token_type_ids"][:, :ids.shape[1]],
                         max_new_tokens=24, do_sample=False)
    for o, cells in zip(out[:, ids.shape[1]:], ans):
        t = b.tok.decode(o, skip_special_tokens=True).strip()
        pred = parse_answer(t)
        g = set(cells); tot["tp"] += len(pred & g); tot["fp"] += len(pred - g); tot["fn"] += len(g - pred)
        tot["det"] += (bool(pred) == bool(g)); tot["n"] += 1
    f1 = 2 * tot["tp"] / max(1, 2 * tot["tp"] + tot["fp"] + tot["fn"])
    return dict(f1=round(f1, 3), det=round(tot["det"] / tot["n"], 3))

if __name__ == "__main__":
    from judo.models import resolve_model, load_vlm
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("steps", type=int); ap.add_argument("out", nargs="?", default=None)
    ap.add_argument("--answer", default="cells", choices=["cells", "dense"])
    a = ap.parse_args(); steps, out, ANSWER = a.steps, a.out, a.answer
    torch.set_num_threads(1); torch.manual_seed(0)
    model, proc = load_vlm(resolve_model("tiny"))
    rng = np.random.default_rng(0); bt = Batcher(proc)
    t = time.perf_counter(); bt.batch(rng, 32); print("batch build", time.perf_counter() - t)
    print("before", evaluate(model, proc))
    hist = pretrain(model, proc, steps)
    print("after", evaluate(model, proc))
    if out: model.save_pretrained(out); proc.save_pretrained(out)
