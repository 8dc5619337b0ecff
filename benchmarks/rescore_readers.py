"""The effect of the one answer reader and MMAD's column rule on a finished run: re-read and re-score the answer logs
of every stage with the package as it was before (a git revision, unpacked to a temp folder) and as it is now.

The raw outputs are the run's own (`answers.jsonl` keeps each `raw`), so the table isolates the reading and scoring.

Run from the repo root after `make demo` (or any `judo-pipeline` run):
    .venv/bin/python benchmarks/rescore_readers.py --run runs/tiny-s0 --before e7a6f7f   (writes benchmarks/results/readers.md)
"""
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCORE = r'''
import json, sys
from pathlib import Path
import judo.evaluate as E
try: from judo.answers import read_answer
except ImportError: read_answer = None
out = {}
for log in sorted(Path(sys.argv[1]).glob("*/answers.jsonl")):
    recs = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
    for r in recs:
        if r.get("error"): continue
        if read_answer is None: r["answer"] = E.parse_output(r["raw"], r["options"])["answer"]
        else: r["answer"] = read_answer(r["raw"], free_text=r.get("prompt") == "mmad", options=r["options"])["answer"]
    out[log.parent.name] = {m: round(E.score_answers(recs, m).final, 2) for m in ("strict", "mmad")}
    out[log.parent.name]["n_readable"] = sum(r["answer"] is not None for r in recs if not r.get("error"))
    out[log.parent.name]["n"] = len(recs)
print(json.dumps(out))
'''


def scores(pythonpath: str, run: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-c", SCORE, str(run / "eval")], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if p.returncode: sys.exit(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/tiny-s0"); ap.add_argument("--before", default="e7a6f7f")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/readers.md"))
    a = ap.parse_args()
    run = Path(a.run).resolve()
    with tempfile.TemporaryDirectory() as old:
        subprocess.run(f"git -C {ROOT} archive {a.before} judo | tar -x -C {old}", shell=True, check=True)
        before = scores(old, run)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    after = scores(str(ROOT), run)
    lines = ["# The answer reader and MMAD's column rule, re-scored on one run", "",
             f"Command: `.venv/bin/python benchmarks/rescore_readers.py --run {a.run} --before {a.before}` (after: {head}).",
             f"Run: `{a.run}` (the `make demo` default, seed 0); the same raw outputs read and scored by both packages.", "",
             "| stage | readable answers before → after | strict Avg before → after | mmad Avg before → after |", "|---|---|---|---|"]
    for st in after:
        b, n = before[st], after[st]
        lines.append(f"| {st} | {b['n_readable']} → {n['n_readable']} of {n['n']} | {b['strict']:.2f} → {n['strict']:.2f} | "
                     f"{b['mmad']:.2f} → {n['mmad']:.2f} |")
    Path(a.out).write_text("\n".join(lines) + "\n"); print("\n".join(lines))


if __name__ == "__main__":
    main()
