"""Benchmark the Stage-3 rewards (judo.rewards) on adversarial completions: time per 100 KB completion, and memory.

(a) Each reward on each adversarial ~100 KB completion (repeated or unbalanced tags, a 100 KB cell list, a
    100,000-digit cell number, 100 KB of option letters): best of 3, per-text caches cleared before every run.
    A run that passes the time limit is stopped (faulthandler's watchdog exits the worker, since a regex cannot be
    interrupted) and recorded as "> limit"; a reward that raises is recorded with its exception.
(b) RSS of a process that scores 2,000 distinct 100 KB completions (16 a batch) with all five rewards, then after
    `clear_reward_caches()`; the domain reward uses a cheap stand-in encoder (only its caches count here).

`--before REV` runs both parts on the package as committed at REV as well (`git archive REV judo` into a temporary
folder), each in its own process, so the table shows before and after side by side.

Run from the repo root:  PYTHONPATH=. .venv/bin/python benchmarks/bench_reward_fuzz.py --before REV
(writes benchmarks/results/reward_fuzz.md)
"""
import argparse, faulthandler, gc, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = 100_000
COLUMNS = dict(solution=["A"], gt_cells=["(1,1)"], domain_gt=["A white dent breaks the capsule surface."])

def _repeat(unit, head="", tail="", size=SIZE):
    "head + unit repeated + tail, about `size` characters."
    return head + unit * max(1, (size - len(head) - len(tail)) // len(unit)) + tail

FULL_TAIL = " </seg>\n<think> x </think>\n<answer>A</answer>"
CASES = {
    "`<seg> None </seg>\\n<think> the answer is A </think>\\n` repeated (no answer)":
        _repeat("<seg> None </seg>\n<think> the answer is A </think>\n"),
    "`<seg></seg><think></think>` repeated": _repeat("<seg></seg><think></think>"),
    "`<seg>` repeated": _repeat("<seg>"),
    "`<think>` repeated": _repeat("<think>"),
    "`<answer>` repeated": _repeat("<answer>"),
    "`<seg>` then `</seg><think>` repeated": _repeat("</seg><think>", head="<seg>"),
    "`<seg></seg><think>` then `</think> ` repeated": _repeat("</think> ", head="<seg></seg><think>"),
    "`<seg><think><answer>` repeated, then the closing tags": _repeat("<seg><think><answer>", size=SIZE // 2)
        + _repeat("</answer></think></seg>", size=SIZE // 2),
    "full completion, 100 KB cell list": _repeat("(1,1)-(1,16) , ", head="<seg> ", tail="(2,2)" + FULL_TAIL),
    "full completion, a 100,000-digit cell number": "<seg> (" + "9" * SIZE + ",1)" + FULL_TAIL,
    "full completion, 100 KB of option letters": "<seg> None </seg>\n<think> " + "A B C D " * 6000 + "</think>\n<answer>"
        + "A " * 12000 + "B " * 13000 + "</answer>",
}

class BagEncoder:
    "A cheap stand-in sentence encoder: unit-norm byte histograms (64-d), so only the reward's own work is timed."
    def encode(self, texts, **kw):
        import numpy as np
        out = np.stack([np.bincount(np.frombuffer(t.encode("utf-8", "replace"), np.uint8) % 64, minlength=64) + 1e-3
                        for t in texts]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

REWARD_NAMES = ["accuracy", "accuracy (paper)", "format", "structure", "structure (paper)", "seg_f1", "seg_f1 (paper)",
                "domain (stand-in encoder)"]

def make_rewards(R):
    "{name: reward} from the judo.rewards module `R` (before or after)."
    return dict(zip(REWARD_NAMES, [R.AccuracyReward(), R.AccuracyReward("paper"), R.format_reward, R.StructureReward(),
                                   R.StructureReward("paper"), R.SegF1Reward(), R.SegF1Reward(seg_rule="paper"),
                                   R.DomainReward(BagEncoder())]))

# ---------------------------------------------------------------- worker processes
def worker_times(jobs, limit):
    "Print one JSON line per (case, reward) job: best-of-3 ms, or the exception; exit the process past `limit` s."
    import judo.rewards as R
    rewards = make_rewards(R)
    devnull = open(os.devnull, "w")
    for case, name in jobs:
        print(json.dumps(dict(start=[case, name])), flush=True)
        faulthandler.dump_traceback_later(limit, exit=True, file=devnull)
        ts, err = [], None
        try:
            for _ in range(3):
                R.clear_reward_caches()
                t = time.perf_counter(); rewards[name]([CASES[case]], **COLUMNS); ts.append(time.perf_counter() - t)
                if ts[-1] > 1: break
        except Exception as e: err = f"raises {type(e).__name__}: {str(e).split(':')[0][:40]}"
        faulthandler.cancel_dump_traceback_later()
        print(json.dumps(dict(job=[case, name], ms=min(ts) * 1e3 if ts else None, err=err)), flush=True)

def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"): return int(line.split()[1]) / 1024
    return float("nan")

def worker_rss(k=2000, batch=16):
    "Print RSS before, after scoring k distinct 100 KB completions, and after clear_reward_caches()."
    import numpy as np
    import judo.rewards as R
    rewards = list(make_rewards(R).values())
    words = np.array("the query shows a dent scratch stain crack near rim cap edge so answer is".split())
    rng = np.random.default_rng(0)
    def completion(i):
        think = " ".join(words[rng.integers(0, len(words), SIZE // 6)])[:SIZE]
        return f"<seg> (1,{i % 16 + 1}) </seg>\n<think> {i} {think} </think>\n<answer>{'ABCD'[i % 4]}</answer>"
    for f in rewards: f([completion(0)], **COLUMNS)                    # warm up (imports, first allocations)
    gc.collect(); r0 = rss_mib(); t = time.perf_counter()
    for b in range(0, k, batch):
        comps = [completion(i) for i in range(b, b + batch)]
        cols = dict(solution=["A"] * batch, gt_cells=["(1,1)"] * batch, domain_gt=[f"reference {i}" for i in range(b, b + batch)])
        for f in rewards: f(comps, **cols)
    del comps; gc.collect(); r1, secs = rss_mib(), time.perf_counter() - t
    R.clear_reward_caches(); gc.collect(); r2 = rss_mib()
    print(json.dumps(dict(rss0=r0, rss1=r1, rss2=r2, k=k, secs=secs)), flush=True)

# ---------------------------------------------------------------- the parent: run workers on a package root
def _run(root, args, stdin=None, timeout=None):
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, __file__, *args], input=stdin, capture_output=True, text=True, env=env, timeout=timeout)
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]

def time_package(root, limit):
    "{(case, reward): ms or a message} for the package under `root`; a worker that dies is restarted after its job."
    jobs = [[c, r] for c in CASES for r in REWARD_NAMES]
    out = {}
    while jobs:
        lines = _run(root, ["--worker", "times", "--limit", str(limit)], stdin=json.dumps(jobs))
        done = {tuple(l["job"]): l for l in lines if "job" in l}
        for j in jobs:
            if tuple(j) in done:
                d = done[tuple(j)]; out[tuple(j)] = d["err"] or d["ms"]
        started = [tuple(l["start"]) for l in lines if "start" in l]
        hung = next((s for s in started if s not in done), None)
        if hung is None and len(done) < len(jobs): raise RuntimeError(f"worker died without a result: {lines[-3:]}")
        if hung is not None: out[hung] = f"> {limit:g} s"
        jobs = [j for j in jobs if tuple(j) not in out]
    return out

def real_encoder_ms(root, words):
    "ms of the domain reward with the bundled all-MiniLM-L6-v2 on one completion whose think has `words` words (encoder loaded)."
    code = ("import time; import judo.rewards as R; r = R.DomainReward(device='cpu'); ref = ['A white dent on the capsule.'];"
            f"c = ['<seg> None </seg><think> ' + 'a dent near the rim ' * {words // 5} + '</think><answer>A</answer>'];"
            "r(['<seg>None</seg><think>x</think><answer>A</answer>'], domain_gt=ref);"
            "ts = []\nfor _ in range(3): t = time.perf_counter(); r(c, domain_gt=ref); ts.append(time.perf_counter() - t)\n"
            "print(min(ts) * 1e3)")
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return float(p.stdout.split()[-1]) if p.returncode == 0 else f"error: {p.stderr.strip().splitlines()[-1][:80]}"

def export_rev(rev, d):
    "The judo/ package as committed at `rev`, unpacked under `d`."
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "judo"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(d)], input=tar, check=True)
    return d

def _fmt(v):
    if isinstance(v, str): return v
    return f"{v:.2f}" if v < 10 else f"{v:.0f}"

def lines_times(res, names):
    short = [n.replace(" (stand-in encoder)", "") for n in REWARD_NAMES]
    out = ["| completion (~100 KB) | " + " | ".join(short) + " |", "|---|" + "---|" * len(short)]
    for case in CASES:
        cells = []
        for r in REWARD_NAMES:
            vals = [_fmt(res[n][(case, r)]) for n in names]
            cells.append(" → ".join(vals))
        out.append(f"| {case} | " + " | ".join(cells) + " |")
    return out

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default=None, help="git revision whose judo/ is measured as 'before'")
    ap.add_argument("--limit", type=float, default=10.0, help="seconds allowed per reward and completion")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "reward_fuzz.md"))
    args = ap.parse_args()
    if args.worker == "times": worker_times(json.loads(sys.stdin.read()), args.limit); sys.exit()
    if args.worker == "rss": worker_rss(); sys.exit()
    with tempfile.TemporaryDirectory() as d:
        roots = {"before": export_rev(args.before, Path(d)), "after": ROOT} if args.before else {"after": ROOT}
        times = {n: time_package(r, args.limit) for n, r in roots.items()}
        rss = {n: _run(r, ["--worker", "rss"])[0] for n, r in roots.items()}
        real = {(n, w): real_encoder_ms(r, w) for n, r in roots.items() for w in (250, SIZE // 4)}
    names = list(roots)
    worst = max(v for v in times["after"].values() if not isinstance(v, str)) if "after" in times else float("nan")
    errs = [k for k, v in times["after"].items() if isinstance(v, str)]
    lines = ["# Benchmark: the rewards on adversarial completions (judo.rewards)", "",
             "Command (from the repo root): `PYTHONPATH=. .venv/bin/python benchmarks/bench_reward_fuzz.py "
             + " ".join(sys.argv[1:]) + "`", "",
             f"## (a) ms per ~100 KB completion ({' → '.join(names)}{f', before = {args.before}' if args.before else ''})", "",
             f"Best of 3, one thread, per-text caches cleared before every run; \"> {args.limit:g} s\": stopped at the limit; "
             "an exception is named. Columns: accuracy, format, structure, seg_f1 (default rules, and the authors' "
             "`paper` rules), domain (parsing only: a stand-in encoder of byte histograms).", "",
             *lines_times(times, names), "",
             f"After: the slowest reward on any case takes **{worst:.1f} ms** (target < 50 ms); "
             f"{'no reward raises' if not errs else f'errors: {errs}'}.", "",
             "Domain reward with the real bundled all-MiniLM-L6-v2 (CPU, one thread) on one completion that parses: a think of "
             "250 words (the 256 tokens the encoder reads) " + ", ".join(f"{n} {_fmt(real[n, 250])} ms" for n in names)
             + "; a think of 100 KB of words " + ", ".join(f"{n} {_fmt(real[n, SIZE // 4])} ms" for n in names)
             + ". That is the network's own cost (the same for any 256-token think) plus tokenising the whole text before "
             "truncation; the reward's own parsing is the domain column of the table.", "",
             "## (b) memory: 2,000 distinct 100 KB completions through all five rewards", "",
             "Before, every tag, letter and cell cache kept up to 16,384 whole texts; `clear_reward_caches()` emptied them but "
             "the allocator kept the pages. After, texts over 8,192 characters are not cached and each cache holds at most "
             "1,024 entries.", "",
             "| package | RSS before (MiB) | after scoring (MiB) | after `clear_reward_caches()` (MiB) | scoring time (s) |",
             "|---|---|---|---|---|",
             *[f"| {n} | {v['rss0']:.0f} | {v['rss1']:.0f} | {v['rss2']:.0f} | {v['secs']:.1f} |" for n, v in rss.items()], "",
             f"Machine: {platform.machine()}, Python {sys.version.split()[0]}; shared 2-core CPU, so absolute times are noisy."]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n"); print("\n".join(lines))
