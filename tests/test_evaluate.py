"End-to-end tests of judo.evaluate / judo.inspect: the scorer on a file, resume after an interruption, missing files, the CLIs."
import json, math, os, subprocess, sys
from pathlib import Path

import pytest

from judo.data import read_mmad
from judo.core import JudoDataError
from judo.evaluate import (EvalArgs, EvalConfig, evaluate, read_answers, report, run_eval, score_answers, read_exclude,
                           dataset_geometry)
from judo.synth import synth_dataset

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg"}


@pytest.fixture(scope="module")
def root():
    return synth_dataset(n_per_category=16, categories="washer,pill_box")


@pytest.fixture(scope="module")
def tiny():
    from judo.models import load_vlm
    return load_vlm("tiny")


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
    args = ["judo-eval", "--model_name_or_path", "tiny", "--data", root, "--out", out, "--max_samples", 5, "--batch-size", 4,
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
        run_eval(EvalArgs("tiny", out=str(out), quiet=True), EvalConfig(data=str(root), max_samples=5, seed=3))
    assert read_exclude(excl) == {first}


def test_eval_cli_mmad_prompt_and_bad_data(root, tmp_path):
    r = _run("judo-eval", "--model_name_or_path", "tiny", "--data", root, "--out", tmp_path / "m", "--prompt", "mmad", "--shuffle_options", "false",
             "--max_samples", 2, "--max-new-tokens", 4, "--quiet")
    assert r.returncode == 0, r.stderr
    recs = read_answers(tmp_path / "m/answers.jsonl")
    assert all(x["order"] is None and x["prompt"] == "mmad" and x["seg_scores"] is None for x in recs)
    bad = _run("judo-eval", "--model_name_or_path", "tiny", "--data", tmp_path / "nowhere", "--out", tmp_path / "b", "--quiet")
    assert bad.returncode != 0 and f"data not found: {tmp_path / 'nowhere'}" in bad.stderr


def test_inspect_cli_writes_picture(root, tmp_path):
    s = next(s for s in read_mmad(root) if not s.is_normal)
    png = tmp_path / "pic.png"
    r = _run("judo-inspect", "--model_name_or_path", "tiny", "--query", root / s.image, "--reference", root / f"judo-synth/{s.category}/train/good",
             "--mask", root / s.mask, "--grid", 4, "--image-size", 112, "--out", png)
    assert r.returncode == 0, r.stderr
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "answer:" in r.stdout and str(png) in r.stdout


# --- broken data: an MMAD-layout folder drawn with PIL (dataset X, class c), 56x56 images, a 4x4 grid ---

def _mmad_folder(tmp_path, masks=("ok", "corrupt", "small", "empty"), missing=0) -> Path:
    "A data root with 2 normal templates, 1 normal query, one defective query per mask kind and `missing` unlisted images."
    from PIL import Image
    import numpy as np
    d = tmp_path / "data"
    def png(rel, a):
        (d / rel).parent.mkdir(parents=True, exist_ok=True); Image.fromarray(a).save(d / rel)
    grey = np.full((56, 56, 3), 128, np.uint8)
    for i in range(2): png(f"X/c/train/good/{i}.png", grey)
    png("X/c/test/good/0.png", grey)
    box = np.zeros((56, 56), np.uint8); box[14:28, 14:28] = 255
    for k in masks:
        png(f"X/c/test/hole/{k}.png", grey)
        rel = d / f"X/c/ground_truth/hole/{k}_mask.png"
        if k == "corrupt": rel.parent.mkdir(parents=True, exist_ok=True); rel.write_bytes(b"not a png")
        else: png(rel.relative_to(d), {"ok": box, "small": box[:28, :28], "empty": 0 * box}[k])
    q = lambda t, a: dict(Question="Is there any defect in the object?", Answer=a, Options={"A": "Yes.", "B": "No."}, type=t)
    tpl = dict(similar_templates=[], random_templates=["X/c/train/good/0.png", "X/c/train/good/1.png"])
    entries = {"X/c/test/good/0.png": dict(conversation=[q(AD, "B")], mask_path=None, **tpl)}
    entries |= {f"X/c/test/hole/{k}.png": dict(conversation=[q(AD, "A"), q("Defect Localization", "A")],
                                               mask_path=f"ground_truth/hole/{k}_mask.png", **tpl) for k in masks}
    entries |= {f"X/c/test/good/gone{i}.png": dict(conversation=[q(AD, "B")], mask_path=None, **tpl) for i in range(missing)}
    (d / "mmad.json").write_text(json.dumps(entries))
    (d / "synth_meta.json").write_text(json.dumps({"grid_size": 4, "image_size": 56}))
    return d


def test_broken_masks_leave_the_seg_table_with_counts(tmp_path):
    from judo.evaluate import check_samples, plan_questions, SegTruth, finish_record, seg_summary, broken_masks
    d = _mmad_folder(tmp_path)
    samples, cfg = read_mmad(d), _cfg(d)
    checked = check_samples(samples, d, cfg)
    jobs = plan_questions(samples, d, cfg, checked)
    truth = SegTruth(d, cfg, broken_masks(checked))
    recs = [finish_record(j, "<seg>None</seg><think>.</think><answer>A</answer>", truth) for j in jobs]
    assert all(r["error"] is None for r in recs)                          # a broken mask does not stop the questions
    left = {r["image"].split("/")[-1]: r["seg_skipped"] for r in recs if r["seg_skipped"]}
    assert left == {"corrupt.png": "corrupt_mask", "small.png": "mask_size", "empty.png": "empty_mask"}
    assert all(r["seg_scores"] is None for r in recs if r["seg_skipped"])  # 'None' on an empty mask no longer scores F1 1.0
    seg = seg_summary(recs)["X"]
    assert (seg["n anomalous"], seg["n normal"], seg["left out"]) == (2, 1, 6) and seg["cell F1"] == 0.0
    md = report(recs, tmp_path / "rep", checked=checked)
    assert "Left out of the seg scores (images): 1 corrupt_mask, 1 mask_size, 1 empty_mask" in md
    js = json.loads((tmp_path / "rep/scores.json").read_text())
    assert js["segmentation_left_out"] == {"corrupt_mask": 1, "mask_size": 1, "empty_mask": 1}
    assert js["data_problems"]["counts"] == {"corrupt_mask": 1, "mask_size": 1, "empty_mask": 1}


def test_headline_says_how_many_questions_were_not_asked(tmp_path, caplog):
    d = _mmad_folder(tmp_path, masks=("ok",), missing=2)
    with caplog.at_level("WARNING", logger="judo.evaluate"):
        md = run_eval(EvalArgs("tiny", out=str(tmp_path / "out"), quiet=True), EvalConfig(data=str(d), batch_size=4, max_new_tokens=4))
    line = "over 3 of 5 questions; 2 not asked: 2 missing_image"
    assert line in md.splitlines()[2] and line in (tmp_path / "out/report.md").read_text()
    assert any(line in r.getMessage() for r in caplog.records if r.name == "judo.evaluate")
    js = json.loads((tmp_path / "out/scores.json").read_text())
    assert js["strict | all questions"]["not_asked"] == {"missing_image": 2}


def test_strict_fails_at_the_first_broken_file_before_the_model(tmp_path):
    d = _mmad_folder(tmp_path, masks=("ok", "corrupt"))
    with pytest.raises(JudoDataError, match=r"corrupt_mask: .*X/c/ground_truth/hole/corrupt_mask\.png"):
        run_eval(EvalArgs("tiny", out=str(tmp_path / "out"), quiet=True), EvalConfig(data=str(d), strict=True))
    assert not (tmp_path / "out/answers.jsonl").exists()


def _cli_error(monkeypatch, cli, *argv) -> str:
    "The message a console script exits with (it must be one line)."
    monkeypatch.setattr(sys, "argv", [cli.__name__, *map(str, argv)])
    with pytest.raises(SystemExit) as e: cli()
    msg = str(e.value.code)
    assert "\n" not in msg, msg
    return msg


def test_missing_model_folder_is_one_line_before_the_data(tmp_path, monkeypatch):
    from judo.evaluate import eval_cli
    from judo.inspect import inspect_cli
    msg = _cli_error(monkeypatch, eval_cli, "--model_name_or_path", "/no/such/folder", "--data", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert msg.startswith("judo-eval: error: model path /no/such/folder does not exist"), msg
    msg = _cli_error(monkeypatch, inspect_cli, "--model_name_or_path", "/no/such/folder", "--query", "q.png", "--reference", "r.png")
    assert msg.startswith("judo-inspect: error: model path /no/such/folder does not exist"), msg


def test_bad_answers_line_names_file_and_line(tmp_path, monkeypatch):
    from judo.evaluate import eval_cli
    d, out = _mmad_folder(tmp_path, masks=("ok",)), tmp_path / "out"
    args = ["--model_name_or_path", "tiny", "--data", d, "--out", out, "--max-new-tokens", 4, "--quiet"]
    run_eval(EvalArgs("tiny", out=str(out), quiet=True), EvalConfig(data=str(d), max_samples=2, max_new_tokens=4))
    log = out / "answers.jsonl"
    first, second = log.read_text().splitlines()
    for bad in ("[1, 2]", '{"key": "X/c/test/good/0.png#0"}', "{not json"):
        log.write_text(f"{first}\n{bad}\n{second}\n")
        msg = _cli_error(monkeypatch, eval_cli, *args)
        assert msg.startswith(f"judo-eval: error: {log}:2: ") and "delete that line" in msg, msg
    log.write_text(f"{first}\n{second}\n[1, 2]\n")                      # a whole last line is checked too
    assert f"{log}:3: " in _cli_error(monkeypatch, eval_cli, *args)


# ---- one reader: the accuracy reward is 1 exactly when the evaluation scores the answer right ----

AGREEMENT_CASES = [
    "<seg> None </seg>\n<think> fine </think>\n<answer>A</answer>", "<answer>A is correct.</answer>", "A is correct.",
    "The answer: A scratch", "<answer>The answer: A scratch</answer>", "<answer>A crack</answer>", "<answer>A</answer>",
    "<answer>B</answer> then <answer>A</answer>", "<answer>B", "<seg> None </seg><think> A </think>",
    "<answer> option C </answer>", "<answer>E</answer>", "<answer>A. Yes.</answer>", "<answer>Option A fits best</answer>",
    "<answer>I pick C over B</answer>", "", "<answer></answer>", "<answer>a</answer>",
    [{"role": "assistant", "content": "<answer>B</answer>"}],
    [{"role": "assistant", "content": [{"type": "text", "text": "<answer>C is correct</answer>"}]}]]


def test_accuracy_reward_is_one_exactly_when_evaluation_scores_right():
    from judo.answers import completion_text
    from judo.evaluate import finish_record
    from judo.rewards import AccuracyReward
    reward, n_right = AccuracyReward(), 0     # the default letter rule, the one evaluation reads
    for c in AGREEMENT_CASES:
        for gold in "ABC":
            job = dict(key="k", image="X/cap/test/crack/0.png", dataset="X", type="Defect Classification", gold=gold,
                       options={"A": "A crack.", "B": "A dent.", "C": "Nothing."}, prompt="judo")
            right = score_answers([finish_record(job, completion_text(c))]).table["X"]["Defect Classification"] == 100
            assert right == (reward([c], solution=[gold]) == [1.0]), (c, gold)
            n_right += right
    assert 8 <= n_right < len(AGREEMENT_CASES)                  # the table has right and wrong answers
    # the cases, read the same way by both
    assert AccuracyReward()(["<answer>A is correct.</answer>", "The answer: A scratch"], solution=["A", "A"]) == [1.0, 0.0]
