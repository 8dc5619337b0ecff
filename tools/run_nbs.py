"""Run the notebooks as `nbdev_test` does (same skipped flags, one fresh shell each, in nbs/) and keep what they show.

`make nbtest` runs this instead of `nbdev_test`: the notebooks are tested exactly once, and the executed copies written
to `_build/executed/` are what the docs site (`make docs`) and the saved figures (`tools/figures.py`) are built from.
A failing cell fails the run with its traceback, so a docs page is never built from a notebook that errored."""
import argparse, os, sys, time
from pathlib import Path
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from nbdev.config import get_config
from nbdev.process import NBProcessor
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory

def _skip(flags):
    def no_eval(cell):
        if cell.cell_type != "code" or "nbdev_export" + "(" in cell.source: return True
        direc = getattr(cell, "directives_", {}) or {}
        if direc.get("eval:", [""])[0].lower() == "false": return True
        return flags & direc.keys()
    return no_eval

def run_one(fn: Path, out: Path, flags: set):
    "Execute `fn`; write the executed notebook to `out/fn.name`; return (ok, seconds, traceback or '')."
    os.environ["IN_TEST"] = "1"
    nb = NBProcessor(fn, process=True).nb   # no FrontmatterProc: it would add a front-matter cell
    main_mod = sys.modules["__main__"]          # IPython swaps in its own; the pool unpickles run_one from ours
    start, k = time.time(), CaptureShell(fn, mpl_format="png")
    try:
        with working_directory(fn.parent): k.run_all(nb, exc_stop=True, preproc=_skip(flags))
        ok, err = True, ""
    except Exception: ok, err = False, k.prettytb(fname=fn)
    finally: sys.modules["__main__"] = main_mod
    raw, outs = read_nb(fn), {c.id: c.get("outputs", []) for c in nb.cells}   # NBProcessor strips `#|` lines; keep them
    for c in raw.cells:
        if c.cell_type == "code": c.outputs = outs.get(c.id, [])
    out.mkdir(parents=True, exist_ok=True); write_nb(raw, out / fn.name)
    return ok, time.time() - start, err

def main():
    cfg = get_config()
    sys.path.insert(0, str(cfg.config_path))     # as nbdev_test: this checkout's judo/, whatever .venv has installed
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", help="default: every notebook in nbs/ that nbdev_test would run")
    p.add_argument("--out", default="_build/executed", help="folder for the executed copies")
    p.add_argument("--n_workers", type=int, default=2)
    a = p.parse_args()
    files = [Path(f) for f in a.notebooks] or sorted(f for f in Path(cfg.nbs_path).glob("*.ipynb") if not f.name.startswith(("_", ".")))
    flags = set(cfg.tst_flags.split("|")) if cfg.tst_flags else set()
    start = time.time()
    with ProcessPoolExecutor(a.n_workers, mp_context=mp.get_context("fork")) as ex:
        res = list(ex.map(partial(run_one, out=Path(a.out).absolute(), flags=flags), files))
    for f, (ok, secs, err) in zip(files, res):
        print(f"{'ok  ' if ok else 'FAIL'} {secs:6.1f}s {f.name}")
        if err: sys.stderr.write(err + "\n")
    bad = [f.name for f, r in zip(files, res) if not r[0]]
    print(f"{len(files) - len(bad)} notebooks ran, {len(bad)} failed in {time.time() - start:.0f}s; executed copies in {a.out}")
    sys.exit(1 if bad else 0)

if __name__ == "__main__": main()
