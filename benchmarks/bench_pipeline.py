"""The main job, measured: `judo-pipeline --recipe tiny` for several seeds on this machine's CPU.

Writes benchmarks/results/pipeline.md: per seed, the score table on the held-out questions (one row per stage), the
wall time of every step and the total. Runs that already finished (same --out-base) are read back, not rerun.

    python benchmarks/bench_pipeline.py [--seeds 0,1] [--out-base runs/bench] [--recipe tiny]
"""
import argparse, json, math, platform, shlex, sys, time
from pathlib import Path

from judo.coldstart import scan_lines
from judo.pipeline import run_pipeline
from judo.report import TABLE_COLUMNS, score_table

HERE = Path(__file__).resolve().parent


def think_diagnostics(answers: Path) -> str:
    "What the final model's answers show: how often its <think> names the gold option's text, and how often its letter is the option its <think> names."
    norm = lambda t: " ".join(str(t or "").lower().split())
    recs = [json.loads(l) for l in answers.read_text().splitlines() if l.strip()]
    named = [r for r in recs if norm(r.get("think")) in {norm(v) for v in r["options"].values()}]
    gold = sum(norm(r["think"]) == norm(r["options"][r["gold"]]) for r in named)
    agree = sum(r.get("answer") is not None and norm(r["think"]) == norm(r["options"].get(r["answer"])) for r in named)
    return (f"final model, {len(recs)} held-out answers: `<think>` is one option's text in {len(named)} "
            f"({100 * len(named) / max(len(recs), 1):.0f} %), the gold option's in {gold} ({100 * gold / max(len(recs), 1):.0f} % of all); "
            f"of those {len(named)}, the `<answer>` letter is the letter of the option its `<think>` names in {agree} "
            f"({100 * agree / max(len(named), 1):.0f} %; chance, the mean of 1 / options over them: "
            f"{100 * sum(1 / len(r['options']) for r in named) / max(len(named), 1):.0f} %)")


def scan_diagnostics(answers: Path) -> str:
    "For `think: scan` answers: how often the option lines are copied right, the answer is the last letter written, and the answer is right."
    recs = [json.loads(l) for l in answers.read_text().splitlines() if l.strip()]
    scans = [(r, ls) for r in recs if (ls := scan_lines(r.get("think")))]
    ok = [[r["options"].get(l, "").strip().rstrip(".") == t for l, t, _ in ls] for r, ls in scans]   # per line: copied exactly
    exact = [x for x, o in zip(scans, ok) if all(o)]
    other = [x for x, o in zip(scans, ok) if not all(o)]
    right = lambda xs: sum(r.get("answer") == r["gold"] for r, _ in xs)
    pct = lambda a, b: f"{100 * a / max(b, 1):.0f} %"
    n_lines, copied = sum(map(len, ok)), sum(map(sum, ok))
    return (f"final model, {len(recs)} held-out answers: `<think>` is a scan in {len(scans)} ({pct(len(scans), len(recs))}); "
            f"option lines copied exactly: {copied} of {n_lines} ({pct(copied, n_lines)}); `<answer>` = the last letter written: "
            f"{pct(sum(r.get('answer') == ls[-1][0] for r, ls in scans), len(scans))}; answers whose every line is copied exactly: "
            f"{len(exact)}, of which right {pct(right(exact), len(exact))} "
            f"(chance {pct(sum(1 / len(r['options']) for r, _ in exact), len(exact))}); the other answers right: {pct(right(other), len(other))}")


def diagnostics(answers: Path) -> str:
    "`scan_diagnostics` for `think: scan` answers, else `think_diagnostics`."
    scans = any(scan_lines(json.loads(l).get("think")) for l in answers.read_text().splitlines() if l.strip())
    return scan_diagnostics(answers) if scans else think_diagnostics(answers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1"); ap.add_argument("--out-base", default="runs/bench")
    ap.add_argument("--recipe", default="tiny"); ap.add_argument("--result", default=str(HERE / "results/pipeline.md"))
    a = ap.parse_args()
    parts, finals, totals = [], {}, {}
    for seed in [int(s) for s in a.seeds.split(",")]:
        out = Path(a.out_base) / f"{a.recipe}-s{seed}"
        t0 = time.time()
        run_pipeline(a.recipe, out=str(out), seed=seed, quiet=True)
        s = json.loads((out / "report/scores.json").read_text())
        total = sum(s["timings"].values())
        finals[seed], totals[seed] = s["rows"], total
        last = list(s["rows"])[-1]
        parts += [f"## seed {seed}", "", score_table(s["rows"]), "", diagnostics(out / "eval" / last / "answers.jsonl"), "",
                  "time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in s["timings"].items()) +
                  f"; **total {total:.0f} s ({total / 60:.1f} min)** (this call: {time.time() - t0:.0f} s)", ""]
    head = [f"# `judo-pipeline --recipe {a.recipe}` on {platform.processor() or platform.machine()} CPU",
            "", f"{time.strftime('%Y-%m-%d')}; held-out questions, strict scoring (unreadable = wrong); seg F1 = `<seg>` "
            "cell F1 on anomalous queries; format % = answers with `<seg>`, `<think>` and `<answer>`. "
            "The machine's 2 cores were shared with other jobs while this ran, so times are upper bounds.", "",
            f"Command: `OMP_NUM_THREADS=1 python {' '.join(map(shlex.quote, sys.argv))}` (each seed's run folder: "
            f"`{a.out_base}/{a.recipe}-s<seed>`; a finished run is read back, not rerun).", ""]
    summary = ["## final stage vs untrained and chance (Avg / seg F1)", "",
               "| seed | chance Avg | untrained Avg | final Avg | untrained seg F1 | final seg F1 | wall time (min) |",
               "|---|---|---|---|---|---|---|"]
    for seed, rows in finals.items():
        final = rows[list(rows)[-1]]
        f = lambda v: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"
        summary.append(f"| {seed} | {f(rows['chance']['Avg'])} | {f(rows['untrained']['Avg'])} | {f(final['Avg'])} | "
                       f"{f(rows['untrained']['seg F1'])} | {f(final['seg F1'])} | {totals[seed] / 60:.1f} |")
    Path(a.result).parent.mkdir(parents=True, exist_ok=True)
    Path(a.result).write_text("\n".join(head + summary + [""] + parts))
    print(Path(a.result).read_text())


if __name__ == "__main__":
    main()
