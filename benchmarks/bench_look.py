"""Where the tiny model's looking fails (issue #16; not JUDO, not used by the demo).

    OMP_NUM_THREADS=1 python benchmarks/bench_look.py probe                 # what the random vision tower already shows
    OMP_NUM_THREADS=1 python benchmarks/bench_look.py synth DIR [--n 64] [--pad 0] [--answer cell|paren|stage1]
        [--swap reference|blank]                                            # a saved model on judo-synth, zero-shot (answer and --aux flags)
    OMP_NUM_THREADS=1 python benchmarks/bench_look.py copy DIR [DIR ...]     # copy accuracy of saved models (`copy_check`)
    OMP_NUM_THREADS=1 python benchmarks/bench_look.py dot STEPS [--batch 32] [--lr 2e-3] [--rope_theta 1e6]
        [--kind qwen2_5_vl|qwen3_vl] [--num_layers 2] [--vision_depth 2] [--hidden_size 128] [--vision_hidden 64]
        [--p_none 0] [--answer cell|row|dense|paren] [--text_steps 0] [--mark random|fixed|mixed] [--text_stages MARK:STEPS,...]
        [--look opposite|white|bw|tex|marks] [--stages LOOK:STEPS,...] [--aux] [--vary_prompt N] [--answer stage1 [--text_first]
        [--words random]] [--rope_split F] [--seed 0] [--keep_copy [W]] [--copy_steps 0] [--save DIR]

`probe`, on the tiny model the demo starts from (`resolve_model('tiny')`: random vision tower, copy-pretrained text):
(a) the forward pass depends on the pixels (logits when the images are exchanged between rows), and hardly on the
3-D image positions (logits without `mm_token_type_ids`); (b) on bench_visual_pretrain's procedural pairs, how far a
changed cell's merged token moves from the reference's token at the same cell, and what a linear probe on
[query, reference, difference] reads; (c) on the dot task's images, whether the one odd token is the dot's.

`dot`: the simplest localisation task there is. The query is a plain background with one square of the opposite colour
in one of the 4x4 cells; the reference is the plain background. The answer names the cell ("r2c3", the wording of
bench_visual_pretrain). It starts from fresh random weights of the tiny config, with the text RoPE base
(`rope_theta`, 1e6 in the tiny build) as a knob, or the tiny Qwen3-VL (learned absolute position embeddings in its
vision tower, interleaved M-RoPE). The answer is 4 tokens + <|im_end|>: a model that knows the format but not the
cell sits at 2 ln 4 / 5 = 0.555 nats per token. `--answer row` names only the row ("r2"), `--p_none 0.5` leaves half
the queries without a dot ("none"). `--text_steps N` first runs N steps of the task on token stand-ins for the images
(`text_pretrain`): with `--mark random` the dot is another random token (finding it needs a comparison), with
`--mark fixed` it is always the same token (finding it needs only its content; naming its cell needs the positions),
with `--mark mixed` either, at random per row; `--text_stages fixed:400,random:1600` runs such token phases in turn.
`--answer dense` writes one digit per cell, row by row ("0010 0000 0000 0000"), so each cell has a fixed output place.
`--aux` adds a dense target to every phase and stage (`with_cell_flags`): the output at each of the reference image's
16 token positions must be "1" if the query's token at the same cell differs, else "0" (the labels sit at the image
positions; the answer's labels stay as they are).
`--look white` draws every dot white on a darker background (a fixed look), `--look bw` white or black on mid-grey,
`--look tex` the opposite colour on one of bench_visual_pretrain's textures (flat, stripes, checks, weave, speckles),
`--look marks` on such a texture a square, a disc or a thin line (2-3 px) in the opposite colour, near-black or
near-white, instead of the background's opposite colour on a plain background; `--stages white:200,bw:300` runs such
graded looks first, each with its own learning-rate schedule, before the STEPS of `--look`; a stage `proc:N` takes bench_visual_pretrain's procedural
pairs (textures and layouts, changed regions and odd marks, 0 to several cells) instead of dots.
`--copy_steps N` first runs judo.tiny's copy pre-training (as the demo's build does); `--save DIR` writes the model
folder at the end, for `judo-stage1 --model_name_or_path DIR` (section 5 of the results).
`--answer stage1` asks JUDO's own Stage-1 question and trains its `<seg>` answer (`stage1_wording`); `--text_first`
puts the question before the images through the chat template, which `--save` writes into the model folder, so
every judo stage and `synth` ask that way too (`text_first_template`); `--rope_split F` slows the RoPE frequencies with
a wavelength over 9 tokens by F (content-only dims next to fast ones); `--keep_copy W` adds the copy task to every
step (`judo.look.copy_task_loss`); `synth --swap` shows the reference or a grey image as the query (`swap_query`); `copy` scores saved
models on the copy task (`copy_check`) (section 7 of the results).
Results: benchmarks/results/look.md."""
import argparse, math, re, sys, time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_visual_pretrain as bv                         # Batcher, pretrain, evaluate, make_pair, the answer wording
from judo.look import copy_task_loss, mark_pair, text_first_template   # the look pre-training as the package ships it (nb 06a)
from judo.tiny import copy_logits                          # the copy task (notebook 05a)

FLOOR = 2 * math.log(4) / 5                                # format known, cell unknown: nats per answer token
PROC_PAIR = bv.make_pair                                   # bench_visual_pretrain's procedural pairs (a stage of `--stages`)


# the dot's look: the background's opposite colour; white on darker; white or black on mid-grey; 'tex': the opposite
# of a textured background's colour; 'marks': on a texture, a square, disc or thin line in the cell, in the background's
# opposite colour, near-black or near-white
LOOKS = ("opposite", "white", "bw", "tex", "marks")


def dot_pair(rng, S=112, N=4, p_none=0.0, look="opposite"):
    """A plain background (`look` 'tex' / 'marks': one of bench_visual_pretrain's textures; the reference is the same
    image), the query with one square ('marks': or a disc or line) inside one cell (none with prob. `p_none`) in the
    colour `look` names (see `LOOKS`); the changed cells. 'opposite' and 'marks' are `judo.look.mark_pair`'s."""
    if look in ("opposite", "marks"): return mark_pair(rng, S, N, p_none, look)
    bg = rng.uniform(*{"white": (20, 120), "bw": (60, 190), "tex": (40, 200)}[look], 3)
    ref = bv.texture(rng, bg, bv.texture_params(rng)).astype(float) if look == "tex" else np.ones((S, S, 3)) * bg
    if rng.random() < p_none: return ref.astype(np.uint8), ref.astype(np.uint8), []
    q = ref.copy(); r, c = rng.integers(0, N, 2); cs = S // N
    y0, x0 = r * cs + rng.integers(2, cs // 2), c * cs + rng.integers(2, cs // 2); w = rng.integers(8, cs // 2)
    q[y0:y0 + w, x0:x0 + w] = 255 - bg if look == "tex" else 255 if look == "white" or rng.random() < 0.5 else 0
    return q.astype(np.uint8), ref.astype(np.uint8), [(int(r) + 1, int(c) + 1)]


def image_tokens(model, proc, images) -> torch.Tensor:
    "Merged image tokens as the language model receives them: (n_images, tokens, hidden)."
    pv = proc.image_processor(images=[Image.fromarray(x) for x in images], return_tensors="pt")
    with torch.no_grad(): f = model.model.get_image_features(pv["pixel_values"], pv["image_grid_thw"])
    f = f.pooler_output if hasattr(f, "pooler_output") else f
    f = torch.cat(list(f)) if isinstance(f, (list, tuple)) else f
    return f.view(len(images), -1, f.shape[-1])


def probe():
    from judo.models import load_vlm, resolve_model
    model, proc = load_vlm(resolve_model("tiny")); model.eval()
    b = bv.Batcher(proc); batch, _ = b.batch(np.random.default_rng(0), 8)
    with torch.no_grad():
        l1 = model(**batch).logits
        l2 = model(**{**batch, "pixel_values": batch["pixel_values"].roll(2 * 16 * 4, 0)}).logits   # images of the next row
        l3 = model(**{k: v for k, v in batch.items() if k != "mm_token_type_ids"}).logits
    ans = (batch["labels"] != -100).roll(-1, 1)
    print(f"(a) mean |logit| {l1.abs().mean():.3f}; answer positions, images exchanged: max |change| "
          f"{(l1 - l2)[ans].abs().max():.3f}; without the 3-D image positions: {(l1 - l3)[ans].abs().max():.4f}")
    rng = np.random.default_rng(0)
    def pairs(n):
        X, Y, D = [], [], []
        for _ in range(n // 32):
            qs, rs, cs = zip(*[bv.make_pair(rng) for _ in range(32)])
            f = image_tokens(model, proc, [x for p in zip(qs, rs) for x in p]).view(32, 2, 16, -1)
            for i, cells in enumerate(cs):
                q, r = f[i, 0], f[i, 1]
                for k in range(16):
                    X.append(torch.cat([q[k], r[k], q[k] - r[k]])); Y.append((k // 4 + 1, k % 4 + 1) in cells)
                    D.append(((q[k] - r[k]).norm() / q[k].norm()).item())
        return torch.stack(X), torch.tensor(Y).float(), torch.tensor(D)
    Xtr, Ytr, Dtr = pairs(512); Xte, Yte, Dte = pairs(128)
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6; Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    w = torch.zeros(Xtr.shape[1], requires_grad=True); b0 = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w, b0], lr=1e-2); pw = (1 - Ytr.mean()) / Ytr.mean()
    for _ in range(500):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(Xtr @ w + b0, Ytr, pos_weight=pw) + 1e-3 * w.pow(2).sum()
        opt.zero_grad(); loss.backward(); opt.step()
    bal = lambda p, y: 0.5 * ((p[y == 1]).float().mean() + (~p[y == 0]).float().mean()).item()
    thr = Dtr.median()
    print(f"(b) procedural pairs ({int(Ytr.sum())} changed of {len(Ytr)} training cells): |q - r| / |q| changed "
          f"{Dtr[Ytr == 1].mean():.3f}, unchanged {Dtr[Ytr == 0].mean():.3f}; held-out balanced accuracy: linear probe on "
          f"[q, r, q - r] {bal((Xte @ w + b0) > 0, Yte):.3f}, the rule |q - r| / |q| > training median {bal(Dte > thr, Yte):.3f}")
    qs, cs = zip(*[(q, c[0]) for q, _, c in (dot_pair(rng) for _ in range(256))])
    f = image_tokens(model, proc, list(qs)); f = f - f.mean(1, keepdim=True)
    y = torch.tensor([(r - 1) * 4 + c - 1 for r, c in cs]); nrm = f.norm(dim=-1)
    odd = torch.zeros_like(nrm, dtype=torch.bool); odd[torch.arange(len(y)), y] = True
    print(f"(c) dot queries: distance from the image's mean token, dot cell {nrm[odd].mean():.3f}, other cells "
          f"{nrm[~odd].mean():.3f}; the farthest token is the dot's in {(nrm.argmax(1) == y).float().mean():.3f} of 256")


def with_cell_flags(batch, ans, proc, N=4):
    """`--aux`: the batch with extra labels at the reference image's token positions. The output at the reference's
    slot for cell k (query first, reference second) must be "1" if the query's cell k differs, else "0": a dense,
    local spot-the-difference target, where the same cell of the other image sits at one fixed 3-D offset."""
    one, zero, image = proc.tokenizer.convert_tokens_to_ids(["1", "0", "<|image_pad|>"])
    ids, lab = batch["input_ids"], batch["labels"].clone(); n = N * N
    for i, cells in enumerate(ans):
        pos = (ids[i] == image).nonzero().flatten()[n:2 * n]   # the reference's slots
        flags = torch.full((n,), zero); flags[[(r - 1) * N + c - 1 for r, c in cells]] = one
        lab[i, pos + 1] = flags                                 # HF shifts labels: the output at pos predicts pos + 1
    return {**batch, "labels": lab}


FILLER = ("please look at the two pictures closely and compare every part of them carefully before you answer the "
          "question about which cells of the grid rows and columns show a change").split()

def vary_prompt(seed=0, most=64):
    """`--vary_prompt N`: each training batch's question gets 0 to N random filler words after it, so that the answer
    is read at many distances from the images (the 64-pair evaluations keep the plain question)."""
    g, orig_batch, orig_eval, on = np.random.default_rng(seed), bv.Batcher.batch, bv.evaluate, [True]
    def batch(self, rng, bs):
        if not hasattr(self, "base_ids"): self.base_ids = list(self.prompt_ids)
        end = self.base_ids.index(self.eos, self.base_ids.index(self.image_id))     # the user turn's <|im_end|>
        k = int(g.integers(0, most + 1)) if on[0] else 0
        extra = self.tok(" " + " ".join(g.choice(FILLER, k)), add_special_tokens=False)["input_ids"] if k else []
        self.prompt_ids = self.base_ids[:end] + extra + self.base_ids[end:]
        return orig_batch(self, rng, bs)
    def evaluate(*a, **k):
        on[0] = False
        try: return orig_eval(*a, **k)
        finally: on[0] = True
    bv.Batcher.batch, bv.evaluate = batch, evaluate


def text_pretrain(model, proc, steps, bs=32, lr=2e-3, seed=1, log=100, mark="random", aux=False):
    """The dot task with token stand-ins for the images: each image slot holds a token embedding instead of image
    features (the reference: one random token in all 16 slots; the query: the same, but another token at the dot's
    cell), at the very 3-D (M-RoPE) positions the images get. It exercises only the language model's part: find the
    slot that differs from the reference's slot at the same cell, and name the cell. `mark='fixed'`: the dot's token
    is always the same one (id 500), so its content alone finds it. Returns the losses."""
    emb = model.get_input_embeddings(); g = torch.Generator().manual_seed(seed)
    vocab = torch.arange(100, emb.num_embeddings - 30)           # plain tokens (past the bytes, before the specials)
    def loss_of(model, batch, ans):
        ids = batch["input_ids"]; slots = ids == model.config.image_token_id; bs = len(ids)
        pos, _ = model.model.get_rope_index(ids, batch["mm_token_type_ids"], batch["image_grid_thw"], attention_mask=batch["attention_mask"])
        fill = vocab[torch.randint(len(vocab), (bs, 2), generator=g)]   # background token, "dot" token
        if mark == "fixed": fill[:, 1] = 500
        if mark == "mixed": fill[torch.rand(bs, generator=g) < 0.5, 1] = 500   # half the rows fixed, half random
        tok = fill[:, :1].repeat(1, 32)                            # 16 query slots, then 16 reference slots
        for i, cells in enumerate(ans):
            for r, c in cells: tok[i, (r - 1) * 4 + c - 1] = fill[i, 1]
        x = emb(ids.masked_scatter(slots, tok.flatten()))
        if aux: batch = with_cell_flags(batch, ans, proc)
        return model(inputs_embeds=x, attention_mask=batch["attention_mask"], position_ids=pos, labels=batch["labels"]).loss
    return bv.pretrain(model, proc, steps, bs=bs, lr=lr, seed=seed, log=log, loss_of=loss_of, eval_every=0, tag=f"text step ({mark} mark)")


def dot(steps, batch, lr, rope_theta, kind, num_layers, vision_depth, hidden_size, vision_hidden, p_none, answer, text_steps=0,
        mark="random", look="opposite", copy_steps=0, save=None, stages=None, text_stages=None, aux=False, vary=0, text_first_=False, rope_split=None, words=None, seed=0, keep_copy=0.0):
    from transformers import AutoConfig, AutoModelForImageTextToText
    from judo.models import load_vlm
    from judo.tiny import build_tiny_vlm
    path = build_tiny_vlm(kind=kind, num_layers=num_layers, vision_depth=vision_depth, hidden_size=hidden_size,
                          intermediate_size=2 * hidden_size, num_heads=hidden_size // 32, vision_hidden=vision_hidden)  # random weights
    cfg = AutoConfig.from_pretrained(path); proc = load_vlm(path)[1]
    if rope_theta is not None: cfg.text_config.rope_parameters["rope_theta"] = rope_theta
    if rope_split:   # `--rope_split F`: RoPE frequencies with a wavelength over 9 tokens divided by F (transformers' 'llama3' rope)
        cfg.text_config.rope_parameters.update(rope_type="llama3", factor=rope_split, low_freq_factor=1.0, high_freq_factor=1.001,
                                               original_max_position_embeddings=9)
    torch.manual_seed(seed); model = AutoModelForImageTextToText.from_config(cfg)
    S = 112 if kind == "qwen2_5_vl" else 128
    bv.make_pair = lambda rng: dot_pair(rng, S, p_none=p_none, look=look)
    if answer == "row":   # name the row only ("r2" / "none"): a 1-D read-out; truth = the whole row, so F1 = row accuracy
        def row_pair(rng):
            q, ref, cells = dot_pair(rng, S, p_none=p_none, look=look)
            return q, ref, [(r, c) for r, _ in cells for c in range(1, 5)]
        bv.make_pair = row_pair
        bv.answer_text = lambda cells: "none" if not cells else " ".join(sorted({f"r{r}" for r, _ in cells}))
        bv.parse_answer = lambda t: {(int(w[1]), c) for w in t.split() if len(w) == 2 and w[0] == "r" and w[1].isdigit()
                                     for c in range(1, 5)}
    if vary: vary_prompt(most=vary)
    if answer == "dense": bv.ANSWER = "dense"          # one digit per cell, row by row: a fixed output place per cell
    if answer == "paren": paren_wording()
    if text_first_:
        if answer != "stage1": raise SystemExit("--text_first needs --answer stage1")
        proc.chat_template = text_first_template(proc.chat_template)
    if answer == "stage1": stage1_wording(words or WORDS, seed=seed)
    if kind != "qwen2_5_vl":                               # the Batcher's prompt holds 16 image tokens per image
        bv.S = S
    print(f"dot task: {kind}, {num_layers} text layers of width {hidden_size}, {vision_depth} vision blocks of width {vision_hidden}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters, rope_theta {cfg.text_config.rope_parameters['rope_theta']}, batch {batch}, lr {lr}; "
          f"queries without a dot {p_none}, answer {answer}; with every query dotted and cell answers the "
          f"no-information floor is {FLOOR:.4f} nats per answer token", flush=True)
    t0 = time.perf_counter()
    if copy_steps:
        from judo.tiny import copy_pretrain
        rec = copy_pretrain(model, proc.tokenizer, copy_steps, seed=seed)
        print(f"copy pre-training: {copy_steps} steps, last loss {rec['last_loss']:.4f}, {rec['seconds']}s", flush=True)
    for st in (text_stages or (f"{mark}:{text_steps}" if text_steps else "")).split(","):  # token phases: 'fixed:400,random:1600'
        if st: text_pretrain(model, proc, int(st.split(":")[1]), bs=batch, lr=lr, mark=st.split(":")[0], aux=aux)
    kw = dict(loss_of=lambda model, b, ans: model(**with_cell_flags(b, ans, proc)).loss) if aux else {}
    if keep_copy:   # `--keep_copy`: every step also trains the copy pre-training's task, so the look does not wipe it
        look_loss, cl = kw.get("loss_of", lambda model, b, ans: model(**b).loss), copy_task_loss(proc.tokenizer, seed)
        kw["loss_of"] = lambda model, b, ans: look_loss(model, b, ans) + keep_copy * cl(model)
    for st in (stages or "").split(","):          # graded looks first, each with its own schedule: 'white:200,bw:300'
        if not st: continue
        lk, n = st.split(":")
        bv.make_pair = PROC_PAIR if lk == "proc" else lambda rng, lk=lk: dot_pair(rng, S, p_none=p_none, look=lk)
        print(f"== stage: {n} steps of {'procedural pairs' if lk == 'proc' else lk + ' dots'}", flush=True)
        bv.pretrain(model, proc, int(n), bs=batch, lr=lr, log=50, eval_every=100, seed=seed, **kw)
    bv.make_pair = lambda rng: dot_pair(rng, S, p_none=p_none, look=look)
    if steps:
        if stages: print(f"== stage: {steps} steps of {look} dots", flush=True)
        bv.pretrain(model, proc, steps, bs=batch, lr=lr, log=50 if stages else 100, eval_every=100 if stages else 250, seed=seed, **kw)
        print(f"done in {time.perf_counter() - t0:.0f}s; final", bv.evaluate(model, proc), flush=True)
    if save:
        from transformers import GenerationConfig
        model.generation_config = GenerationConfig.from_pretrained(path)   # the tiny build's (end tokens, greedy)
        model.save_pretrained(save); proc.save_pretrained(save); print("saved", save, flush=True)


WORDS = ("leather", "cable", "sheet", "carpet", "grid", "screw bag", "texture", "metal plate", "wood panel")  # none of judo-synth's

def stage1_wording(words=WORDS, seed=0):
    """`--answer stage1`: JUDO's Stage-1 question (`STAGE1_PROMPT`, its category a word drawn per training batch from
    `words`, none of them a judo-synth category; 2-6 tokens, so the answer's distance from the images varies a little)
    and the `<seg> CELLS </seg>` half of its answer (no `<think>`). The 64-pair evaluations ask about a 'leather'."""
    from judo.core import SEG_CLOSE, SEG_OPEN, STAGE1_PROMPT
    from judo.grid import encode_cells
    from judo.stage1 import parse_seg
    def answer_text(cells):
        g = np.zeros((bv.N, bv.N), bool)
        for r, c in cells: g[r - 1, c - 1] = True
        return f"{SEG_OPEN} {encode_cells(g)} {SEG_CLOSE}"
    def parse_answer(t):
        p = parse_seg(t, bv.N)
        return set() if p is None else {(int(r) + 1, int(c) + 1) for r, c in zip(*np.nonzero(p))}
    g, orig_batch, orig_eval, on, cache = np.random.default_rng(seed), bv.Batcher.batch, bv.evaluate, [True], {}
    def prompt_ids(self, word):
        if word not in cache:
            msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                     {"type": "text", "text": STAGE1_PROMPT.format(category=word, n=bv.N)}]}]
            text = self.proc.apply_chat_template(msgs, add_generation_prompt=True)
            cache[word] = self.tok(text.replace("<|image_pad|>", "<|image_pad|>" * (bv.S // 14 // 2) ** 2), add_special_tokens=False)["input_ids"]
        return cache[word]
    def batch(self, rng, bs):
        if not on[0]: word = "leather"
        elif words == "random":   # `--words random`: 1-2 alphabetic tokens of the tiny vocabulary, a new name every batch
            if "alpha" not in cache:
                cache["alpha"] = sorted({w for w in (self.tok.decode([i]).strip() for i in range(self.tok.vocab_size)) if w.isalpha() and len(w) > 2})
            word = " ".join(g.choice(cache["alpha"], int(g.integers(1, 3))))
        else: word = str(g.choice(words))
        self.prompt_ids = prompt_ids(self, word)
        return orig_batch(self, rng, bs)
    def evaluate(*a, **k):
        on[0] = False
        try: return orig_eval(*a, **k)
        finally: on[0] = True
    bv.answer_text, bv.parse_answer, bv.Batcher.batch, bv.evaluate = answer_text, parse_answer, batch, evaluate



def paren_wording():
    "`--answer paren`: '(2,3) , (4,1)' / 'None', the (row,col) notation Stage 1's question explains, without <seg>."
    bv.answer_text = lambda cells: "None" if not cells else " , ".join(f"({r},{c})" for r, c in cells)
    bv.parse_answer = lambda t: {(int(m[0]), int(m[1])) for m in re.findall(r"\((\d),(\d)\)", t)}


def swap_query(how):
    """`synth --swap reference|blank`: every judo Stage-1 pair built in this process shows, as its QUERY, the reference
    itself or a mid-grey image, while the true cells stay the query's: a model that reads the images loses its score."""
    import judo.stage1 as js
    orig = js.stage1_messages
    def messages(*a, **k):
        msgs, (q, ref) = orig(*a, **k)
        return msgs, [ref if how == "reference" else Image.new("RGB", q.size, (128, 128, 128)), ref]
    js.stage1_messages = messages

@torch.no_grad()
def synth(model_dir, n=64, pad=0, answer="cell", swap=None):
    """Zero-shot on judo-synth: the held-out pairs of the demo's data asked in this script's wording (query, reference,
    "which cells ... differ"; answer "r2c3 ..." / "none"), scored against the true 4x4 cells of `judo.stage1`'s rows:
    does a skill learned on dots reach judo-synth's defects before any Stage 1?"""
    from judo.grid import decode_cells
    from judo.models import load_vlm
    from judo.stage1 import Stage1Args, build_stage1_rows, evaluate_segmentation, seg_metrics, stage1_data
    model, proc = load_vlm(model_dir); model.eval()
    if swap: swap_query(swap)
    a = Stage1Args(data="synth?n_per_category=160&size=112&grid=4&seed=0&test_frac=0.15", eval_samples=n)
    _, held, root, size, grid = stage1_data(a)
    rows = build_stage1_rows(held, root, size, grid).rows
    if answer == "paren": paren_wording()
    if answer == "stage1":                                  # JUDO's own question (the row's category) and scorer
        stage1_wording()
        m = {k: v for k, v in evaluate_segmentation(model, proc, held, root, size, grid, batch_size=16, max_new_tokens=40).items() if k != "predictions"}
        print(f"judo-synth held-out pairs, zero-shot in Stage 1's wording: {m['n']} pairs, cell F1 {m['f1']:.3f}, "
              f"balanced detection {m['detection_accuracy']:.3f}, format-valid {m['format_valid']:.3f}", flush=True)
    if pad: bv.PROMPT += " " + " ".join((FILLER * 4)[:pad])     # `--pad N`: N filler words after the question
    b = bv.Batcher(proc); b.batch(np.random.default_rng(0), 1); ids = torch.tensor([b.prompt_ids] * len(rows))
    pv = proc.image_processor(images=[im for r in rows for im in r["images"]], return_tensors="pt")
    trues = [decode_cells(r["true_seg"], grid) for r in rows]
    if answer != "stage1":
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pv["pixel_values"],
                             image_grid_thw=pv["image_grid_thw"], mm_token_type_ids=(ids == b.image_id).long(),
                             max_new_tokens=24, do_sample=False)
        preds = []
        for o in out[:, ids.shape[1]:]:
            p = np.zeros((grid, grid), bool)
            for rr, cc in bv.parse_answer(b.tok.decode(o, skip_special_tokens=True).strip()): p[rr - 1, cc - 1] = True
            preds.append(p)
        m = seg_metrics(preds, trues)                       # Stage 1's own scorer: pooled cell F1, balanced detection
        print(f"judo-synth held-out pairs, zero-shot in the dot wording{f' + {pad} filler words' if pad else ''}: {m['n']} pairs "
              f"({sum(t.any() for t in trues)} defective), cell F1 {m['f1']:.3f}, balanced detection {m['detection_accuracy']:.3f}", flush=True)
    # the `--aux` read-out: "1" against "0" at the reference's 16 token positions, against the true cells
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pv["pixel_values"],
                   image_grid_thw=pv["image_grid_thw"], mm_token_type_ids=(ids == b.image_id).long()).logits
    ref = (ids[0] == b.image_id).nonzero().flatten()[grid * grid:]
    one, zero = b.tok.convert_tokens_to_ids("1"), b.tok.convert_tokens_to_ids("0")
    flags = (logits[:, ref, one] > logits[:, ref, zero]).numpy().reshape(len(rows), grid, grid)
    t, mf = np.stack(trues), seg_metrics(list(flags), trues)  # its detection: any flag, balanced over queries
    per_cell = 0.5 * (flags[t].mean() + (~flags[~t]).mean())
    print(f"  the cell flags at the reference's token positions (--aux): balanced accuracy per cell {per_cell:.3f}, "
          f"per query (any flag) {mf['detection_accuracy']:.3f}, cell F1 {mf['f1']:.3f}", flush=True)

@torch.no_grad()
def copy_check(model_dirs, n=256, seed=123):
    """`copy DIR ...`: each saved model's accuracy on the copy pre-training's own task (`judo.tiny.copy_pretrain`: repeat
    4-12 random tokens after a line break), on `n` fresh sequences per length: where along the chain copying is lost."""
    from judo.models import load_vlm
    for d in model_dirs:
        model, proc = load_vlm(d); model.eval(); tok = proc.tokenizer
        g, acc = torch.Generator().manual_seed(seed), []
        for L in (4, 8, 12):
            x = torch.randint(tok.vocab_size, (n, L), generator=g)
            acc.append((copy_logits(model, x, tok("\n", add_special_tokens=False)["input_ids"][0]).argmax(-1) == x).float().mean().item())
        print(f"{d}: copy accuracy at 4 / 8 / 12 tokens {acc[0]:.3f} / {acc[1]:.3f} / {acc[2]:.3f}", flush=True)

if __name__ == "__main__":
    if sys.argv[1:2] == ["copy"]: copy_check(sys.argv[2:]); raise SystemExit
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("probe")
    sy = sub.add_parser("synth"); sy.add_argument("model_dir"); sy.add_argument("--n", type=int, default=64)
    sy.add_argument("--pad", type=int, default=0, help="this many filler words after the question")
    sy.add_argument("--swap", default=None, choices=["reference", "blank"], help="show the reference, or a grey image, as the QUERY (`swap_query`)")
    sy.add_argument("--answer", default="cell", choices=["cell", "paren", "stage1"], help="the wording the model was trained on")
    d = sub.add_parser("dot"); d.add_argument("steps", type=int); d.add_argument("--batch", type=int, default=32)
    d.add_argument("--lr", type=float, default=2e-3); d.add_argument("--rope_theta", type=float, default=None)
    d.add_argument("--kind", default="qwen2_5_vl", choices=["qwen2_5_vl", "qwen3_vl"])
    d.add_argument("--num_layers", type=int, default=2); d.add_argument("--vision_depth", type=int, default=2)
    d.add_argument("--hidden_size", type=int, default=128); d.add_argument("--vision_hidden", type=int, default=64)
    d.add_argument("--p_none", type=float, default=0.0, help="share of queries without a dot (answer 'none')")
    d.add_argument("--answer", default="cell", choices=["cell", "row", "dense", "paren", "stage1"],
                   help="name the cell (r2c3), only its row (r2), one digit per cell, row by row (0010 0000 0000 0000), (2,3) / None, or JUDO's Stage-1 question and <seg> answer (`stage1_wording`)")
    d.add_argument("--text_steps", type=int, default=0, help="first, this many steps of the task on token stand-ins (`text_pretrain`)")
    d.add_argument("--text_stages", default=None, help="token phases in turn, MARK:STEPS, e.g. 'fixed:400,random:1600' (instead of --text_steps/--mark)")
    d.add_argument("--mark", default="random", choices=["random", "fixed", "mixed"],
                   help="the stand-ins' dot: another random token, always the same one, or either at random per row")
    d.add_argument("--look", default="opposite", choices=LOOKS, help="the dots' look (see LOOKS)")
    d.add_argument("--stages", default=None, help="graded looks before the STEPS of --look, e.g. 'white:200,bw:300'")
    d.add_argument("--aux", action="store_true", help="also train a '1'/'0' at each reference slot: does the query's cell differ (`with_cell_flags`)")
    d.add_argument("--vary_prompt", type=int, default=0, help="0 to this many random filler words after each training batch's question (`vary_prompt`)")
    d.add_argument("--text_first", action="store_true", help="the question before the images (`text_first_template`; with --answer stage1)")
    d.add_argument("--rope_split", type=float, default=None, help="divide the RoPE frequencies whose wavelength is over 9 tokens by this (slow, content-only dims next to fast ones)")
    d.add_argument("--words", default=None, choices=["random"], help="with --answer stage1: category names made of random vocabulary words instead of WORDS")
    d.add_argument("--seed", type=int, default=0, help="the model's initial weights and every draw of the run")
    d.add_argument("--keep_copy", type=float, nargs="?", const=1.0, default=0.0, help="every image step also trains one batch of the copy task (`judo.look.copy_task_loss`), its loss weighted by this (1 if given alone)")
    d.add_argument("--copy_steps", type=int, default=0, help="first, this many steps of judo.tiny.copy_pretrain")
    d.add_argument("--save", default=None, help="write the model folder here at the end")
    a = ap.parse_args(); torch.set_num_threads(1)
    if a.cmd == "synth": synth(a.model_dir, a.n, a.pad, a.answer, a.swap)
    else: probe() if a.cmd == "probe" else dot(a.steps, a.batch, a.lr, a.rope_theta, a.kind, a.num_layers, a.vision_depth, a.hidden_size,
                                         a.vision_hidden, a.p_none, a.answer, a.text_steps, a.mark, a.look, a.copy_steps, a.save, a.stages,
                                         a.text_stages, a.aux, a.vary_prompt, a.text_first, a.rope_split, a.words, a.seed, a.keep_copy)
