"End-to-end tests of judo.evaluate / judo.inspect: the scorer on a file, resume after an interruption, missing files, the CLIs."
import json, math, os, subprocess, sys
from pathlib import Path

import pytest

from judo.data import read_mmad
from judo.core import JudoDataError
from judo.evaluate import (EvalConfig, evaluate, read_answers, report, run_eval, score_answers, read_exclude,
                           dataset_geometry)
from judo.synth import synth_dataset

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg"}


@pytest.fixture(scope="module")
def root():
    return synth_dataset(n_per_category=16, categories="washer,pill_box")


@pytest.fixture(scope="module")
def tiny():
    from judo.models import tiny_vlm
    return tiny_vlm()


def _cfg(root, **kw):
    return EvalConfig(**dataset_geometry(root), **{"batch_size": 2, "max_new_tokens": 8, **kw})


AD = "Anomaly Detection"
# (dataset, type, gold, answer, image): hand-scored below
CRAFTED = [("D1", AD, "B", "B", "D1/c/test/good/0.png"), ("D1", AD, "B", "B", "D1/c/test/good/1.png"),
           ("D1", AD, "B", "A", "D1/c/test/good/2.png"), ("D1", AD, "A", "A", "D1/c/test/hole/0.png"),
           ("D1", AD, "A", "<junk>", "D1/c/test/hole/1.png"), ("D1", "Defect Localization", "C", "C", "D1/c/test/hole/0.png"),
           ("D1", "Defect Localization", "C", None, "D1/c/test/hole/1.png"), ("D1", "Object Details", "A", "A", "D1/c/test/good/0.png"),
           ("D1", "Object Structure", "B", "A", "D1/c/test/good/1.png"), ("D1", "Object Structure", "D", "D", "D1/c/test/good/2.png"),
           ("D2", AD, "B", "A", "D2/k/test/good/0.png"), ("D2", AD, "A", "A", "D2/k/test/cut/0.png"),
           ("D2", "Defect Localization", "B", "B", "D2/k/test/cut/0.png"), ("D2", "Object Details", "C", "E", "D2/k/test/good/0.png")]


def test_scorer_on_crafted_answers_file(tmp_path):
    log = tmp_path / "answers.jsonl"
    log.write_text("".join(json.dumps(dict(dataset=d, type=t, gold=g, answer=a, image=i)) + "\n" for d, t, g, a, i in CRAFTED))
    recs = read_answers(log)
    s, m = score_answers(recs), score_answers(recs, mode="mmad")
    # strict: D1 AD = (2/3 + 1/2)/2, DefLoc 1/2, ObjAna 2/3; D2 AD = (0 + 1)/2, DefLoc 1, ObjAna 0 ('E' is readable, wrong)
    d1 = [(2/3 + 1/2) / 2 * 100, 50.0, 200/3]; d2 = [50.0, 100.0, 0.0]
    assert s.columns == [AD, "Defect Localization", "Object Analysis"]
    for col, a, b in zip(s.columns, d1, d2):
        assert math.isclose(s.table["D1"][col], a) and math.isclose(s.table["D2"][col], b)
    assert math.isclose(s.final, (sum(d1) / 3 + sum(d2) / 3) / 2)
    assert math.isclose(s.table["D1"]["Overkill"], 100 / 3) and math.isclose(s.table["D1"]["Miss"], 50)
    assert (s.n_unparseable, s.n_dropped, s.n_scored) == (2, 2, 14)
    # mmad: the two unreadable D1 answers are dropped: AD = (2/3 + 1)/2, DefLoc 1/1
    m1 = [(2/3 + 1) / 2 * 100, 100.0, 200/3]
    for col, a, b in zip(m.columns, m1, d2):
        assert math.isclose(m.table["D1"][col], a) and math.isclose(m.table["D2"][col], b)
    assert math.isclose(m.final, (sum(m1) / 3 + sum(d2) / 3) / 2) and m.n_scored == 12
    assert math.isclose(m.table["Average"]["Miss"], (0 + 0) / 2)


def test_interrupted_then_resumed_equals_uninterrupted(root, tiny, tmp_path):
    model, proc = tiny
    samples, cfg = read_mmad(root)[:3], _cfg(root)
    full = evaluate(model, proc, samples, root, cfg, out=tmp_path / "full", progress=False)
    real_generate, calls = model.generate, {"n": 0}

    def dying_generate(*a, **kw):
        calls["n"] += 1
        if calls["n"] > 2: raise KeyboardInterrupt  # killed after k = 2 batches = 4 questions
        return real_generate(*a, **kw)
    model.generate = dying_generate
    try:
        with pytest.raises(KeyboardInterrupt): evaluate(model, proc, samples, root, cfg, out=tmp_path / "cut", progress=False)
    finally: del model.generate
    assert len(read_answers(tmp_path / "cut/answers.jsonl")) == 4
    resumed = evaluate(model, proc, samples, root, cfg, out=tmp_path / "cut", progress=False)
    assert resumed == full and len(full) > 4
    assert read_answers(tmp_path / "cut/answers.jsonl") == full   # nothing asked twice
    for mode in ("strict", "mmad"):
        assert score_answers(resumed, mode).table == score_answers(full, mode).table
    assert report(resumed) == report(full)


def test_missing_template_and_image_are_reported(root, tiny, tmp_path):
    data = json.loads((root / "mmad.json").read_text())
    keys = list(data)[:3]
    sub = {k: data[k] for k in keys}
    sub[keys[0]] = {**sub[keys[0]], "random_templates": ["judo-synth/washer/train/good/does_not_exist.png"], "similar_templates": []}
    sub["judo-synth/washer/test/good/999.png"] = sub[keys[1]]              # an image that is not there
    (tmp_path / "mmad.json").write_text(json.dumps(sub))
    samples = read_mmad(root, tmp_path / "mmad.json")
    recs = evaluate(*tiny, samples, root, _cfg(root), out=tmp_path / "run", progress=False)
    errs = {r["image"]: r["error"] for r in recs if r["error"]}
    assert errs[keys[0]] == "missing template: judo-synth/washer/train/good/does_not_exist.png"
    assert errs["judo-synth/washer/test/good/999.png"] == "missing image: judo-synth/washer/test/good/999.png"
    assert all(r["raw"] is not None for r in recs if not r["error"])
    s = score_answers(recs)
    assert s.n_errors == len([r for r in recs if r["error"]]) > 0 and s.n_scored == len(recs) - s.n_errors
    md = report(recs, tmp_path / "run")
    assert "## Not asked" in md and "missing template" in md


def _run(*args):
    return subprocess.run([str(BIN / args[0]), *map(str, args[1:])], capture_output=True, text=True, env=ENV, timeout=300)


def test_eval_cli_end_to_end_resume_and_exclude(root, tmp_path):
    out = tmp_path / "eval"
    excl = tmp_path / "exclude.txt"
    first = read_mmad(root)[0].image
    excl.write_text(first + "\n")
    args = ["judo-eval", "--model", "tiny", "--data", root, "--out", out, "--limit", 5, "--batch-size", 4,
            "--max-new-tokens", 8, "--exclude", excl, "--quiet"]
    r = _run(*args)
    assert r.returncode == 0, r.stderr
    assert "## strict scoring (headline): all questions" in r.stdout and "without 1 excluded images" in r.stdout
    for f in ("answers.jsonl", "eval_config.json", "report.md", "scores.json", "scores_strict.csv", "scores_mmad.csv", "subtasks.png"):
        assert (out / f).stat().st_size > 0, f
    recs = read_answers(out / "answers.jsonl")
    assert len(recs) == 5 and {"raw", "seg", "think", "answer", "gold", "options", "templates", "order"} <= set(recs[0])
    r2 = _run(*args)                                                      # resumes: nothing asked again
    assert r2.returncode == 0 and read_answers(out / "answers.jsonl") == recs
    with pytest.raises(JudoDataError, match="seed: 0 -> 3"):             # other settings into the same log: refused
        run_eval("tiny", str(root), str(out), limit=5, seed=3, quiet=True)
    assert read_exclude(excl) == {first}


def test_eval_cli_mmad_prompt_and_bad_data(root, tmp_path):
    r = _run("judo-eval", "--model", "tiny", "--data", root, "--out", tmp_path / "m", "--prompt", "mmad", "--no-shuffle",
             "--limit", 2, "--max-new-tokens", 4, "--quiet")
    assert r.returncode == 0, r.stderr
    recs = read_answers(tmp_path / "m/answers.jsonl")
    assert all(x["order"] is None and x["prompt"] == "mmad" and x["seg_scores"] is None for x in recs)
    bad = _run("judo-eval", "--model", "tiny", "--data", tmp_path / "nowhere", "--out", tmp_path / "b", "--quiet")
    assert bad.returncode != 0 and "MMAD file not found" in bad.stderr


def test_inspect_cli_writes_picture(root, tmp_path):
    s = next(s for s in read_mmad(root) if not s.is_normal)
    png = tmp_path / "pic.png"
    r = _run("judo-inspect", "--model", "tiny", "--query", root / s.image, "--reference", root / f"judo-synth/{s.category}/train/good",
             "--mask", root / s.mask, "--grid", 4, "--image-size", 112, "--out", png)
    assert r.returncode == 0, r.stderr
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "answer:" in r.stdout and str(png) in r.stdout
