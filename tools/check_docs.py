"""Fail when the built site lacks a page, a page lacks a figure its notebook should have, or a notebook cell errored."""
import json, re, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from figures import EXECUTED, FIGURE_NOTEBOOKS, ROOT, png_outputs

SITE = ROOT / "_build/site"
# figures of the notebooks whose pictures are not saved yet (tools/figures.py); at least this many on their pages
MIN_FIGURES = {"03_synth": 2, "06_stage1": 1, "09_grpo": 1, "10_evaluate": 1}

def expected_figures(name: str) -> int:
    "What the notebook should show: its saved figures (at least one) or its MIN_FIGURES entry."
    if name not in FIGURE_NOTEBOOKS: return MIN_FIGURES.get(name, 0)
    nb = json.loads((ROOT / "nbs" / f"{name}.ipynb").read_text())
    return max(1, sum(len(png_outputs(c)) for c in nb["cells"]))

def page_problems(name: str) -> list:
    page = SITE / name / "index.html"
    if not page.exists(): return [f"{name}: no page {page}"]
    ex = json.loads((EXECUTED / f"{name}.ipynb").read_text())
    errors = [o.get("ename", "?") for c in ex["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    shown, want = len(re.findall(r'<img[^>]+src="data:image/png', page.read_text())), expected_figures(name)
    return ([f"{name}: cell errors {errors}"] if errors else []) + \
           ([f"{name}: {shown} figure(s) on its page, expected at least {want}"] if shown < want else [])

def main():
    names = [p.stem for p in sorted((ROOT / "nbs").glob("*.ipynb")) if not p.name.startswith(("_", "."))]
    home = SITE / "index.html"
    bad = [] if home.exists() and "Quick start" in home.read_text() else ["the home page is not the README"]
    bad += [b for n in names for b in page_problems(n)]
    for b in bad: print(b, file=sys.stderr)
    if bad: sys.exit(f"docs site incomplete: {len(bad)} problem(s)")
    print(f"docs site: home page + {len(names)} notebook pages, every expected figure present")

if __name__ == "__main__": main()
