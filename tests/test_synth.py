"Integration tests of judo.synth: the judo-synth CLI end to end, determinism, exact masks, questions right by construction."
import hashlib, json, os, subprocess, sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from judo.core import QUESTION_TYPES
from judo.data import read_judo_domain_qa, read_judo_grpo, read_judo_stage1, read_domain_knowledge, validate_samples
from judo.synth import (CATEGORIES, COMPARISON_ONLY, DEFECTS, REGIONS, OptionBalancer, make_item, make_synth, read_synth,
                        region_counts, render, sample_family, sample_params)

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("judo-synth")  # the console script from settings.ini


def run_cli(*args):
    "Run `judo-synth ARGS` (the repo on PYTHONPATH, so a stale editable install does not matter)."
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=120, env=env)


def digest(root: Path) -> str:
    "One hash over every file's path and bytes."
    h = hashlib.sha1()
    for p in sorted(root.rglob("*")):
        if p.is_file(): h.update(p.relative_to(root).as_posix().encode()); h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    "A small dataset made by the console script."
    out = tmp_path_factory.mktemp("synth") / "ds"
    r = run_cli(out, "--n_per_category", 16, "--seed", 3)
    assert r.returncode == 0, r.stderr
    return out


def test_cli_writes_the_layout(synth):
    for f in ("mmad.json", "mmad_train.json", "domain_knowledge.json", "synth_meta.json", "train/realiad_samples_gt.jsonl",
              "train/domain_qa_goods.jsonl", "train/grpo_gt.jsonl"):
        assert (synth / f).is_file(), f
    meta = json.loads((synth / "synth_meta.json").read_text())
    assert (meta["image_size"], meta["grid_size"], meta["seed"]) == (112, 4, 3)
    assert meta["n_train"] + meta["n_test"] == 16 * len(CATEGORIES)
    for c in CATEGORIES: assert len(list((synth / "judo-synth" / c / "train/good").glob("*.png"))) == 12


def test_round_trip_through_read_mmad(synth):
    for split in ("test", "train"):
        samples = read_synth(synth, split)
        assert samples and all(s.meta["split"] == split for s in samples)
        rep = validate_samples(samples, synth, strict=True)
        assert len(rep.samples) == len(samples)
        for s in samples:
            assert s.defect == s.meta["defect"] and (s.mask is None) == (s.defect is None)
            assert s.similar_templates[0] == s.meta["reference"] and "/train/good/" in s.meta["reference"]
            if s.defect:
                m = np.asarray(Image.open(synth / s.mask)) > 0
                assert m.shape == (112, 112) and m.any()
                assert s.meta["visibility"] == ("comparison_only" if s.defect in COMPARISON_ONLY else "visible")
    dk = read_domain_knowledge(synth / "domain_knowledge.json")
    assert set(dk["judo-synth"]) == set(CATEGORIES)


def test_splits_are_disjoint_and_stage_files_use_train_only(synth):
    test, train = {s.image for s in read_synth(synth, "test")}, {s.image for s in read_synth(synth, "train")}
    assert test and train and not test & train
    assert all("/test/" in k for k in test) and all("/train_query/" in k for k in train)
    assert {s.image for s in read_judo_grpo(synth / "train/grpo_gt.jsonl")} <= train
    assert {s.image for s in read_judo_stage1(synth / "train/realiad_samples_gt.jsonl")} == train
    assert all("/train/good/" in s.image for s in read_judo_domain_qa(synth / "train/domain_qa_goods.jsonl"))


def test_questions_right_by_construction(synth):
    samples = read_synth(synth, "test") + read_synth(synth, "train")
    assert {q.type for s in samples for q in s.questions} == set(QUESTION_TYPES)
    for s in samples:
        by = {q.type: q for q in s.questions}
        assert by["Anomaly Detection"].options[by["Anomaly Detection"].answer] == ("Yes." if s.defect else "No.")
        assert by["Object Classification"].options[by["Object Classification"].answer] == CATEGORIES[s.category]["display"].capitalize()
        if not s.defect: continue
        assert by["Defect Classification"].options[by["Defect Classification"].answer] == DEFECTS[s.defect]["cls"]
        hit = region_counts(np.asarray(Image.open(synth / s.mask)) > 0).ravel() > 0
        loc = by["Defect Localization"]
        for letter, text in loc.options.items():
            k = [r.capitalize() + "." for row in REGIONS for r in row].index(text)
            assert hit[k] == (letter == loc.answer), (s.image, text)
    for t in QUESTION_TYPES:  # gold letters balanced per type
        c = Counter(q.answer for s in samples for q in s.questions if q.type == t)
        assert max(c.values()) - min(c.values()) <= 1, (t, c)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = make_synth(tmp_path / "a", n_per_category=6, seed=5, categories="tile,pill_box")
    b = make_synth(tmp_path / "b", n_per_category=6, seed=5, categories="tile,pill_box")
    c = make_synth(tmp_path / "c", n_per_category=6, seed=6, categories="tile,pill_box")
    assert digest(a) == digest(b) != digest(c)


def test_masks_are_exactly_the_changed_pixels():
    rng = np.random.default_rng(0)
    for cat, spec in CATEGORIES.items():
        for d in spec["defects"]:
            fam = sample_family(cat, rng)
            img, mask, *_ = make_item(cat, fam, d, np.random.default_rng(1), OptionBalancer(np.random.default_rng(0)), 96)
            clean = render(sample_params(cat, fam, np.random.default_rng(1)), 96)[0]
            assert ((img != clean).any(-1) == mask).all() and mask.sum() > 0, (cat, d)


def test_size_and_grid_are_parameters(tmp_path):
    r = run_cli(tmp_path / "big", "--n_per_category", 4, "--size", 160, "--grid", 8, "--categories", "washer")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "big/synth_meta.json").read_text())
    assert (meta["image_size"], meta["grid_size"], meta["categories"]) == (160, 8, ["washer"])
    s = read_synth(tmp_path / "big", "train")[0]
    assert Image.open(tmp_path / "big" / s.image).size == (160, 160) and s.meta["grid_size"] == 8


def test_cli_bad_inputs(tmp_path, synth):
    r = run_cli(synth)
    assert r.returncode != 0 and "exists" in r.stderr and "--overwrite" in r.stderr
    r = run_cli(tmp_path / "x", "--categories", "fabric,plush")
    assert r.returncode != 0 and "unknown categories ['plush']" in r.stderr
    r = run_cli(tmp_path / "y", "--size", 16)
    assert r.returncode != 0 and "too small" in r.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert not list(tmp_path.glob(".*tmp-*"))  # no half-built folder left behind
