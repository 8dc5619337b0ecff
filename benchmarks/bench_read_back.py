"""Can the tiny model read a name it wrote back among the options? Text only, no images.

The cold start's `think: name` writes `Defect: stain.` and then judges the options in letter order
(`A: A crack. no. B: A stain. yes.`). On the held-out questions the name is right far more often than the answer takes
the option holding it (coldstart_budget.md, section f). This script asks whether the missing step, reading the written
name back among the options, is learnable by the model at all when nothing else can give the answer: rows with no
images, a random defect name (one of judo-synth's nine), four options of which one holds it, and the target
`<think> Defect: NAME. <scan up to that option> </think>\\n<answer>X</answer>`, trained with the SFT plumbing of every
stage (`judo.sft.make_sft_trainer`, the tiny recipes' `lm_loss: model`).

Scored teacher-forced on 300 held-out rows: the share whose every verdict (`yes` / `no` after each option) is the
model's most likely next token, i.e. whose greedy scan would stop at the option holding the name.

`--layout` picks the think (the name written, then the way to the letter):
- `name` (the default, `think: name`): the defect folder's name (`Defect: broken.`), then the scan;
- `label` (`think: label`): the option's own words (`Defect: a broken-off piece.`), then the scan;
- `index`: no verdicts. Each option is written as its words and then its letter (`a crack A. a stain B. ...`), then
  `Defect: a stain B.`: the letter after the name is the letter that followed the same words earlier in the think, the
  pattern a copy-trained model's induction heads complete. Scored as the share of rows where the letter after the name
  and the answer's letter are both the most likely next token.

    python benchmarks/bench_read_back.py --start RUN/stage2 --steps 1500 --out /tmp/read_back [--layout index] [--save DIR]

Appends one JSON line to OUT/results.jsonl.
"""
import argparse, json, random, time
from pathlib import Path

import torch
from trl import SFTConfig

from judo.coldstart import name_finding, scan_think, think_words
from judo.core import Question, Sample
from judo.models import load_vlm
from judo.sft import make_sft_trainer, save_stage_model
from judo.synth import DEFECTS

LABELS = {name: d["cls"] for name, d in DEFECTS.items()}   # judo-synth's defects and their Defect Classification words


LAYOUTS = ("name", "label", "index")


def think_for(q: Question, name: str, layout: str) -> str:
    "The think of a read-back row: the defect `name` (a key of LABELS) is the one option `q.answer` holds."
    if layout in ("name", "label"):     # the cold start's own first words (`think: name` / `think: label`)
        return f"{name_finding(Sample('-', 'judo-synth', '-', name), LABELS[name] if layout == 'label' else None)} {scan_think(q)}"
    return " ".join(f"{think_words(t)} {l}." for l, t in sorted(q.options.items())) + f" Defect: {think_words(LABELS[name])} {q.answer}."


def read_back_row(rng: random.Random, layout: str = "name") -> dict:
    "A text-only prompt-completion row: four options, the think names one option's defect and leads to its letter."
    names = rng.sample(sorted(LABELS), 4); name = names[0]; rng.shuffle(names)
    q = Question("There is a defect in the object. What is the type of the defect?",
                 {l: LABELS[n] for l, n in zip("ABCD", names)}, "ABCD"[names.index(name)], "Defect Classification")
    options = "\n".join(f"{l}: {t}" for l, t in q.options.items())
    ask = f"Answer the question.\n{q.text}\n{options}\nReason inside <think> </think>, and give the option letter inside <answer> </answer>."
    target = f"<think> {think_for(q, name, layout)} </think>\n<answer>{q.answer}</answer>"
    return dict(prompt=[{"role": "user", "content": [{"type": "text", "text": ask}]}],
                completion=[{"role": "assistant", "content": [{"type": "text", "text": target}]}])


def letters_right(model, processor, rows: list) -> float:
    "`index` layout: share of rows whose letter after the name and answer letter are the model's argmax (teacher-forced)."
    tok = processor.tokenizer
    model.eval(); ok = 0
    with torch.no_grad():
        for r in rows:
            pre = processor.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True)
            think = r["completion"][0]["content"][0]["text"]
            head, _, tail = think.rpartition(" Defect: ")                     # tail: 'a stain B. </think>...'
            letter = think.split("<answer>")[1][0]
            parts = [pre + head + " Defect: " + tail.rsplit(f" {letter}.", 1)[0], f" {letter}",    # the letter after the name
                     "." + tail.rsplit(f" {letter}.", 1)[1].split("<answer>")[0] + "<answer>", letter]  # the answer's letter
            ids, want = [], []
            for i, p in enumerate(parts):
                t = tok(p, add_special_tokens=False).input_ids
                if i % 2: want.append((len(ids) - 1, t[0]))
                ids += t
            pred = model(input_ids=torch.tensor([ids])).logits[0].argmax(-1)
            ok += all(int(pred[i]) == t for i, t in want)
    model.train()
    return ok / len(rows)


def verdicts_right(model, processor, rows: list) -> float:
    "Share of rows whose every verdict token is the model's argmax (teacher-forced)."
    tok = processor.tokenizer
    yes, no = tok(" yes", add_special_tokens=False).input_ids, tok(" no", add_special_tokens=False).input_ids
    if len(no) != 1: raise SystemExit(f"' no' is {len(no)} tokens in this tokenizer; the scorer reads one")
    model.eval(); ok = 0
    with torch.no_grad():
        for r in rows:
            pre = processor.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True)
            full = processor.apply_chat_template(r["prompt"] + r["completion"], tokenize=False)
            ids = tok(full, return_tensors="pt", add_special_tokens=False).input_ids
            start = len(tok(pre, add_special_tokens=False).input_ids)
            pred, tgt = model(input_ids=ids).logits[0, :-1].argmax(-1), ids[0, 1:]
            # a verdict is ' no', or the first token of ' yes' followed by the rest of it
            pos = [i for i in range(start - 1, len(tgt) - len(yes) + 1)
                   if int(tgt[i]) == no[0] or tgt[i:i + len(yes)].tolist() == yes]
            ok += all(int(pred[i]) == int(tgt[i]) for i in pos)
    model.train()
    return ok / len(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", required=True, help="model folder to start from (e.g. a pipeline run's stage2)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", choices=LAYOUTS, default="name", help="the think: see the module's text")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--save", default=None, help="also save the trained model here (a folder `load_vlm` reads)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(a.seed)
    train = [read_back_row(rng, a.layout) for _ in range(a.steps * a.batch)]
    test = [read_back_row(random.Random(10**6 + i), a.layout) for i in range(300)]
    score = letters_right if a.layout == "index" else verdicts_right
    model, processor = load_vlm(a.start, dtype="float32")
    before = score(model, processor, test)
    cfg = SFTConfig(output_dir=str(out / "ckpt"), max_steps=a.steps, learning_rate=a.lr, per_device_train_batch_size=a.batch,
                    lr_scheduler_type="cosine", warmup_steps=50, save_strategy="no", report_to=[], logging_steps=100,
                    max_length=None, disable_tqdm=True, dataloader_num_workers=0, bf16=False, use_cpu=True, seed=a.seed)
    t0 = time.time()
    trainer = make_sft_trainer(model, processor, train, cfg, stage="coldstart", lm_loss="model")
    trainer.train()
    res = dict(layout=a.layout, scored="letters" if a.layout == "index" else "verdicts", start=a.start, steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed, threads=a.threads,
               verdicts_right_before=before, verdicts_right_after=score(model, processor, test),
               final_loss=[h["loss"] for h in trainer.state.log_history if "loss" in h][-1], seconds=round(time.time() - t0, 1))
    if a.save: save_stage_model(trainer, processor, a.save); res["saved"] = a.save
    with open(out / "results.jsonl", "a") as f: f.write(json.dumps(res) + "\n")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
