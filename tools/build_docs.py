"""Lay out the docs sources (README.md as the home page, the executed notebooks from tools/run_nbs.py) and run MkDocs."""
import os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXECUTED, SRC = ROOT / "_build/executed", ROOT / "_build/docs_src"

def home_page(readme: str) -> str:
    "README text with its links into nbs/ pointed at the notebook pages."
    return re.sub(r"\]\(nbs/([^)#]+)\.ipynb", r"](\1.ipynb", readme)

def main():
    nbs = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")))
    missing = [p.name for p in nbs if not (EXECUTED / p.name).exists()]
    if missing: sys.exit(f"not executed yet (run `make nbtest` first): {missing}")
    shutil.rmtree(SRC, ignore_errors=True); SRC.mkdir(parents=True)
    (SRC / "index.md").write_text(home_page((ROOT / "README.md").read_text()))
    for p in nbs: shutil.copy(EXECUTED / p.name, SRC / p.name)
    import jupyter_server_mathjax                           # MathJax 2 from PyPI, so the formulas render offline
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", SRC / "assets/mathjax",
                    ignore=shutil.ignore_patterns("*.md", "LICENSE", "unpacked", "test"))
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml")], check=True)

if __name__ == "__main__": main()
