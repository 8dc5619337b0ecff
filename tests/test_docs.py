"""The docs checks fail when they should (tools/check_docs.py, tools/figures.py), and `make lab` starts as root."""
import base64, io, json, os, signal, socket, subprocess, sys, time, urllib.request, uuid
from pathlib import Path
import numpy as np, pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import check_docs, figures

def _png(a) -> str:
    buf = io.BytesIO(); Image.fromarray(np.asarray(a, np.uint8)).save(buf, format="PNG"); return base64.b64encode(buf.getvalue()).decode()

def test_same_picture_tolerates_noise_not_changes():
    a = np.full((40, 40, 3), 200)
    assert figures.same_picture(_png(a), _png(a + np.eye(40)[..., None] * 3))      # faint differences: the same picture
    b = a.copy(); b[:10] = 0
    assert not figures.same_picture(_png(a), _png(b)) and not figures.same_picture(_png(a), _png(a[:30]))

def _nb(cells): return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
def _code(cid, outs): return {"cell_type": "code", "id": cid, "metadata": {}, "source": "x", "outputs": outs, "execution_count": None}
def _fig(b64): return {"output_type": "display_data", "data": {"image/png": b64}, "metadata": {}}

def test_compare_finds_stale_missing_and_extra_figures(tmp_path, monkeypatch):
    (tmp_path / "nbs").mkdir(); (tmp_path / "ex").mkdir()
    monkeypatch.setattr(figures, "ROOT", tmp_path); monkeypatch.setattr(figures, "EXECUTED", tmp_path / "ex")
    a, b = _png(np.zeros((20, 20, 3))), _png(np.full((20, 20, 3), 255))
    def write(saved, drawn):
        (tmp_path / "nbs/x.ipynb").write_text(json.dumps(_nb([_code("c1", saved)])))
        (tmp_path / "ex/x.ipynb").write_text(json.dumps(_nb([_code("c1", drawn)])))
    write([_fig(a)], [_fig(a)]); assert figures.compare("x") == []
    write([_fig(a)], [_fig(b)]); assert "not what the cell draws" in figures.compare("x")[0]
    write([], [_fig(a)]); assert "0 figure(s) saved, 1 drawn" in figures.compare("x")[0]
    write([_fig(a), {"output_type": "stream", "name": "stdout", "text": "hi"}], [_fig(a)])
    assert "other than figures" in figures.compare("x")[0]

def test_check_docs_flags_missing_page_figures_and_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(check_docs, "SITE", tmp_path / "site"); monkeypatch.setattr(check_docs, "EXECUTED", tmp_path / "ex")
    monkeypatch.setattr(check_docs, "expected_figures", lambda name: 2)
    (tmp_path / "ex").mkdir()
    assert "no page" in check_docs.page_problems("09_x")[0]
    (tmp_path / "site/09_x").mkdir(parents=True)
    (tmp_path / "site/09_x/index.html").write_text('<img alt="" src="data:image/png;base64,AAAA">')
    (tmp_path / "ex/09_x.ipynb").write_text(json.dumps(_nb([_code("c", [{"output_type": "error", "ename": "KeyError", "evalue": "", "traceback": []}])])))
    probs = check_docs.page_problems("09_x")
    assert any("cell errors ['KeyError']" in p for p in probs) and any("1 figure(s) on its page, expected at least 2" in p for p in probs)

def test_expected_figures_of_a_saved_notebook_is_at_least_one():
    assert all(check_docs.expected_figures(n) >= 1 for n in figures.FIGURE_NOTEBOOKS)

def test_make_lab_starts_as_root():
    "`make lab` (JupyterLab with --allow-root) answers on 127.0.0.1; the process group is killed at the end."
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    token = uuid.uuid4().hex
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 --IdentityProvider.token={token}"
    p = subprocess.Popen(["make", "-s", "-o", ".venv/.installed", "lab", f"LAB_ARGS={args}"], cwd=REPO, start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        end = time.time() + 60
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(req, timeout=5) as r: assert r.status == 200; break
            except (OSError, AssertionError):
                assert p.poll() is None, p.stdout.read().decode()[-2000:]
                assert time.time() < end, "make lab did not answer within 60 s"
                time.sleep(0.5)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try: p.wait(15)
        except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL)
