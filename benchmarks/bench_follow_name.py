"""Does a cold-started model's answer follow the defect name in its think? A counterfactual on the held-out questions.

For each held-out Defect Classification question of a `judo-pipeline` run, the model's own `<seg>` (from the run's
answer log) is kept, the think is started for it with `Defect: NAME.` for the defect of each option in turn, and the
model writes the rest greedily. If the answer follows the name, it is the option of that defect. Run once with the
two images in the prompt (as evaluated) and once with the same prompt text and no images.

    python benchmarks/bench_follow_name.py --run RUN [--stage coldstart] [--out OUT]

Appends one JSON line per model to OUT/results.jsonl: the share of forced names the answer follows, with and without
the images (chance for a model that ignores the name: about 1/4).
"""
import argparse, json
from pathlib import Path

import torch

from judo.answers import extract_letter, last_tag
from judo.coldstart import name_finding, without_images
from judo.core import Question, Sample
from judo.models import load_vlm
from judo.pairing import grpo_prompt_messages
from judo.pipeline import data_root_for, load_pipeline_config
from judo.synth import DEFECTS

DEFECT_OF = {d["cls"]: name for name, d in DEFECTS.items()}   # judo-synth's Defect Classification words -> defect


def follow_rate(model, processor, recs: list, root: Path, size: int, n: int, images: bool) -> tuple[int, int]:
    "(answers that took the forced name's option, forced names) over the answer-log records `recs`."
    took = total = 0
    for r in recs:
        s = Sample(r["image"], r["dataset"], r["category"], r["image"].split("/")[-2])
        q = Question(r["question"], r["options"], r["gold"], r["type"])
        msgs, imgs = grpo_prompt_messages(s, r["templates"][0], root, q, size=size, n=n)
        if not images: msgs = without_images(msgs)
        head = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        seg = r["raw"].split("<think>")[0]
        letters = [l for l in sorted(q.options) if q.options[l] in DEFECT_OF]
        texts = [f"{head}{seg}<think> {name_finding(Sample(s.image, s.dataset, s.category, DEFECT_OF[q.options[l]]))}"
                 for l in letters]
        batch = processor(text=texts, images=[imgs] * len(texts) if images else None, padding=True,
                          padding_side="left", return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=100, do_sample=False)
        for l, ids in zip(letters, out[:, batch["input_ids"].shape[1]:]):
            answer = extract_letter(last_tag(processor.tokenizer.decode(ids, skip_special_tokens=False), "answer"))
            took += answer == l; total += 1
    return took, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a judo-pipeline run folder (its recipe: tiny-look)")
    ap.add_argument("--stage", default="coldstart", help="which stage's model and answer log")
    ap.add_argument("--recipe", default="tiny-look")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/bench_follow_name")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    run = Path(a.run); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    cfg, _ = load_pipeline_config(a.recipe)
    root = data_root_for(cfg)
    recs = [json.loads(l) for l in open(run / "eval" / a.stage / "answers.jsonl")]
    recs = [r for r in recs if r["type"] == "Defect Classification" and not r["normal"]]
    model, processor = load_vlm(run / a.stage, dtype="float32"); model.eval()
    size, n = cfg.synth["size"], cfg.synth["grid"]
    res = dict(run=str(run), stage=a.stage, questions=len(recs))
    for images in (True, False):
        took, total = follow_rate(model, processor, recs, root, size, n, images)
        res["with_images" if images else "text_only"] = dict(followed=took, forced=total, rate=round(took / total, 3))
    with open(out / "results.jsonl", "a") as f: f.write(json.dumps(res) + "\n")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
