"""The figures a reader sees on GitHub without running anything: the PNG outputs saved in the committed notebooks.

`make figures` copies every PNG output of the executed notebooks (`_build/executed/`, written by `make nbtest`) into
the notebooks listed in FIGURE_NOTEBOOKS (text outputs are not kept); `--check` (run by `make test`) fails when a
committed figure is missing, extra, or no longer what its cell draws (pixels compared with a small tolerance, so a
font-hinting difference is not a change). `nbdev_clean` keeps image outputs, so `make check` stays idempotent."""
import argparse, base64, io, json, subprocess, sys
from pathlib import Path
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build/executed"
# notebooks whose figures are saved; a notebook joins by being listed here and running `make figures`
FIGURE_NOTEBOOKS = ["00_core", "01_grid", "02_data", "04_pairing", "05_models", "06a_look", "07_stage2", "08_rewards", "11_inspect", "14_report"]

def png_outputs(cell) -> list:
    "The cell's PNG outputs as `display_data` dicts holding only image/png (+ text/plain)."
    keep = []
    for o in cell.get("outputs", []):
        d = o.get("data", {})
        if "image/png" in d:
            data = {"image/png": d["image/png"].rstrip()} | ({"text/plain": d["text/plain"]} if "text/plain" in d else {})
            keep.append({"output_type": "display_data", "data": data, "metadata": {}})
    return keep

def _pixels(b64: str) -> np.ndarray: return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"), np.int16)

def same_picture(a: str, b: str) -> bool:
    "Two base64 PNGs show the same picture: same size, <1% of pixels off by more than 32 levels."
    pa, pb = _pixels(a), _pixels(b)
    return pa.shape == pb.shape and (np.abs(pa - pb).max(-1) > 32).mean() < 0.01

def compare(name: str) -> list:
    "Problems between nbs/NAME.ipynb's saved figures and what the executed copy drew."
    src, ex = (json.loads((d / f"{name}.ipynb").read_text()) for d in (ROOT / "nbs", EXECUTED))
    drawn = {c["id"]: png_outputs(c) for c in ex["cells"] if c["cell_type"] == "code"}
    bad = []
    for c in (c for c in src["cells"] if c["cell_type"] == "code"):
        saved, now = png_outputs(c), drawn.get(c["id"], [])
        if len(saved) != len(c.get("outputs", [])): bad.append(f"{name} cell {c['id']}: saved outputs other than figures")
        if len(saved) != len(now): bad.append(f"{name} cell {c['id']}: {len(saved)} figure(s) saved, {len(now)} drawn")
        elif not all(same_picture(a["data"]["image/png"], b["data"]["image/png"]) for a, b in zip(saved, now)):
            bad.append(f"{name} cell {c['id']}: the saved figure is not what the cell draws now")
    return bad

def write(name: str):
    "Save the executed copy's figures into nbs/NAME.ipynb, then nbdev_clean it."
    p = ROOT / "nbs" / f"{name}.ipynb"
    src, ex = json.loads(p.read_text()), json.loads((EXECUTED / f"{name}.ipynb").read_text())
    drawn = {c["id"]: png_outputs(c) for c in ex["cells"] if c["cell_type"] == "code"}
    for c in src["cells"]:
        if c["cell_type"] == "code": c["outputs"] = drawn.get(c["id"], [])
    p.write_text(json.dumps(src, indent=1, ensure_ascii=False) + "\n")
    subprocess.run([str(Path(sys.executable).parent / "nbdev_clean"), "--fname", str(p)], check=True, cwd=ROOT)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    ap.add_argument("names", nargs="*", default=FIGURE_NOTEBOOKS)
    a = ap.parse_args()
    if a.check:
        bad = [b for n in a.names for b in compare(n)]
        for b in bad: print(b, file=sys.stderr)
        if bad: sys.exit(f"{len(bad)} saved figure(s) out of date: run `make nbtest figures` and commit nbs/")
        print(f"saved figures match what {len(a.names)} notebooks draw")
    else:
        for n in a.names: write(n)

if __name__ == "__main__": main()
