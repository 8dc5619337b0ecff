"""A further look stage on the shipped look model (`tiny-look`, or --start DIR), then where its look reaches: held-out pairs of every
look, and judo-synth zero-shot per category (Stage 1's question and scorer). look.md sections 8 and 9.

    python benchmarks/bench_look_stage.py --stages all:5000 --lr 1e-3 --out runs/look_all5k

One torch thread (run two side by side on a 2-core machine). Prints the training loss every 50 steps and writes
OUT/look_stage.json (and the model folder OUT/model).
"""
import argparse, json, sys, time
from pathlib import Path

import torch

from judo.grid import decode_cells
from judo.look import LOOKS, look_eval, look_pretrain, tiny_look_dir
from judo.models import load_vlm
from judo.stage1 import Stage1Args, evaluate_segmentation, parse_seg, seg_metrics, stage1_data

SYNTH = "synth?n_per_category=160&size=112&grid=4&seed=0&test_frac=0.15"   # the demo's judo-synth (recipes/tiny-look)


def synth_zero_shot(model, proc) -> dict:
    "Cell F1, balanced detection and format-valid share on the demo's held-out Stage-1 pairs, all and per category."
    _, held, root, size, grid = stage1_data(Stage1Args(data=SYNTH, eval_samples=1000))
    r = evaluate_segmentation(model, proc, held, root, size, grid, batch_size=16, max_new_tokens=40)
    out = dict(all=dict(n=len(held), f1=round(r["f1"], 3), detection=round(r["detection_accuracy"], 3), format_valid=round(r["format_valid"], 3)))
    for cat in sorted({s.category for s in held}):
        pr = [r["predictions"][i] for i, s in enumerate(held) if s.category == cat]
        m = seg_metrics([parse_seg(x["reply"], grid) for x in pr], [decode_cells(x["true_seg"], grid) for x in pr])
        out[cat] = dict(n=len(pr), f1=round(m["f1"], 3), detection=round(m["detection_accuracy"], 3), format_valid=round(m["format_valid"], 3))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stages", required=True, help=f"LOOK:STEPS,... in turn; looks: {LOOKS}")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--keep_copy", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", default=None, help="the model folder to go on from (default: the shipped tiny-look)")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    stages = [(s.split(":")[0], int(s.split(":")[1])) for s in a.stages.split(",")]
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    model, proc = load_vlm(a.start or tiny_look_dir()); t0 = time.time()
    rec = look_pretrain(model, proc, stages=stages, lr=a.lr, keep_copy=a.keep_copy, seed=a.seed,
                        log=lambda lk, st, l, s: print(lk, st, round(l, 4), round(s), flush=True))
    res = dict(args=vars(a), train_seconds=rec["seconds"],
               stages=[{k: v for k, v in r.items() if k != "losses"} for r in rec["results"]],
               held_out={lk: look_eval(model, proc, look=lk) for lk in ("marks", "spot", "objects")})
    model.save_pretrained(out / "model"); proc.save_pretrained(out / "model")
    res["judo_synth"] = synth_zero_shot(model, proc); res["seconds"] = round(time.time() - t0)
    (out / "look_stage.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())
