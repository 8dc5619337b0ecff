"Integration tests of judo.data (and the pairing built on it): fixtures, round trips, and each bad input's documented behaviour."
import json, re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from judo.core import JudoDataError, Question, Sample
from judo.prepare import mvtec_folder_to_mmad
from judo.data import (domain_text, find_mask, load_image, load_mask, read_domain_knowledge,
                       read_judo_domain_qa, read_judo_grpo, read_judo_stage1, read_mmad, read_realiad, read_realiad_json, resolve_path,
                       validate_samples, write_domain_qa_jsonl, write_grpo_jsonl, write_mmad, write_stage1_jsonl)

_HERE = Path(__file__).resolve()
FIX = next(p for p in (_HERE.parents[1] / "fixtures", _HERE.parents[2] / "shared" / "fixtures", Path("/work/shared/fixtures"))
           if p.exists())
OFFICIAL = FIX / "judo_official"
FIXTURE_GRPO = OFFICIAL / "grpo_gt.jsonl"


def draw(path, size=(64, 48), box=None, mode="RGB"):
    "A product image (or, mode='L', a mask) with an optional ellipse at `box`."
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new(mode, size, 0 if mode == "L" else (40, 40, 40))
    d = ImageDraw.Draw(im)
    if mode == "RGB": d.rectangle([6, 6, size[0] - 6, size[1] - 6], fill=(180, 160, 70))
    if box: d.ellipse(box, fill=255 if mode == "L" else (10, 10, 10))
    im.save(path); return path


@pytest.fixture
def mmad_root(tmp_path):
    "A two-query MMAD dataset: one defective DS-MVTec bottle with an rbg_mask, one normal VisA candle."
    draw(tmp_path / "DS-MVTec/bottle/image/broken/000.png", box=(20, 10, 40, 30))
    draw(tmp_path / "DS-MVTec/bottle/rbg_mask/broken/000_rbg_mask.png", box=(20, 10, 40, 30), mode="L")
    draw(tmp_path / "MVTec-AD/bottle/train/good/000.png")
    draw(tmp_path / "VisA/candle/test/good/0001.JPG"); draw(tmp_path / "VisA/candle/train/good/0002.JPG")
    ad = lambda a: {"Question": "Is there any defect in the object?", "Answer": a, "Options": {"A": "Yes.", "B": "No."},
                    "type": "Anomaly Detection", "annotation": True}
    data = {"DS-MVTec/bottle/image/broken/000.png": {"conversation": [ad("A")], "mask_path": "rbg_mask/broken/000_rbg_mask.png",
                "similar_templates": ["MVTec-AD/bottle/train/good/000.png"], "random_templates": ["MVTec-AD/bottle/train/good/000.png"]},
            "VisA/candle/test/good/0001.JPG": {"conversation": [ad("B")], "mask_path": None,
                "similar_templates": ["VisA/candle/train/good/0002.JPG"], "random_templates": ["VisA/candle/train/good/0002.JPG"]}}
    (tmp_path / "mmad.json").write_text(json.dumps(data))
    return tmp_path


# ---- the authors' files and MMAD's domain knowledge parse into records, and write back identically ----

def test_stage1_fixture_round_trip(tmp_path):
    rows = read_judo_stage1(OFFICIAL / "realiad_samples_gt.jsonl")
    assert len(rows) == 40 and all(isinstance(s, Sample) for s in rows)
    assert {s.dataset for s in rows} >= {"Real-IAD", "DS-MVTec", "VisA", "GoodsAD", "MVTec-LOCO"}
    assert all(s.meta["reference"] for s in rows) and all(s.is_normal == (s.mask is None) for s in rows)
    write_stage1_jsonl(rows, tmp_path / "s1.jsonl")
    read = lambda p: [json.loads(l) for l in open(p)]
    assert read(tmp_path / "s1.jsonl") == read(OFFICIAL / "realiad_samples_gt.jsonl")


def test_domain_qa_fixture_round_trip(tmp_path):
    rows = read_judo_domain_qa(OFFICIAL / "domain_qa_goods.jsonl")
    assert len(rows) == 40 and all(s.is_normal and s.meta["problem"] and s.meta["solution"] for s in rows)
    write_domain_qa_jsonl(rows, tmp_path / "qa.jsonl")
    assert [json.loads(l) for l in open(tmp_path / "qa.jsonl")] == [json.loads(l) for l in open(OFFICIAL / "domain_qa_goods.jsonl")]


def test_grpo_fixture_round_trip(tmp_path):
    rows = read_judo_grpo(OFFICIAL / "grpo_gt.jsonl")
    assert len(rows) == 40 and sum(s.is_normal for s in rows) == 5
    assert all(len(s.questions) == 1 and isinstance(s.questions[0], Question) for s in rows)
    assert all(s.meta["reference"] and s.meta["domain_gt"] for s in rows)
    write_grpo_jsonl(rows, tmp_path / "g.jsonl")
    assert [json.loads(l) for l in open(tmp_path / "g.jsonl")] == [json.loads(l) for l in open(OFFICIAL / "grpo_gt.jsonl")]


def test_grpo_options_are_never_evaluated(tmp_path):
    row = json.loads(open(OFFICIAL / "grpo_gt.jsonl").readline())
    row["problem"] = "Q? \n Choice: \n __import__('os').system('touch " + str(tmp_path / "pwned") + "')"
    (tmp_path / "g.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(JudoDataError, match="not a dict literal"): read_judo_grpo(tmp_path / "g.jsonl")
    assert not (tmp_path / "pwned").exists()


def test_domain_knowledge_fixture():
    dk = read_domain_knowledge(FIX / "mmad/domain_knowledge.json")
    assert domain_text(dk, "DS-MVTec", "bottle", "broken_large") == dk["MVTec"]["bottle"]["broken_large"].strip()
    with pytest.raises(JudoDataError, match="no domain knowledge for GoodsAD/'bottle'"): domain_text(dk, "GoodsAD", "bottle")
    with pytest.raises(JudoDataError, match="is empty"): domain_text({"VisA": {"candle": {"good": " "}}}, "VisA", "candle")


# ---- MMAD: read, write, round trip ----

def test_mmad_round_trip(mmad_root, tmp_path):
    samples = read_mmad(mmad_root)
    assert [(s.dataset, s.category, s.defect) for s in samples] == [("DS-MVTec", "bottle", "broken"), ("VisA", "candle", None)]
    assert samples[0].mask == "DS-MVTec/bottle/rbg_mask/broken/000_rbg_mask.png"
    write_mmad(samples, tmp_path / "out")
    assert json.loads((tmp_path / "out/mmad.json").read_text()) == json.loads((mmad_root / "mmad.json").read_text())
    assert read_mmad(mmad_root, tmp_path / "out/mmad.json") == samples


def test_mask_not_found_names_every_path_tried(mmad_root):
    data = json.loads((mmad_root / "mmad.json").read_text())
    data["DS-MVTec/bottle/image/broken/000.png"]["mask_path"] = "rgb_mask/broken/404_rgb_mask.png"
    (mmad_root / "mmad.json").write_text(json.dumps(data))
    with pytest.raises(JudoDataError) as e: read_mmad(mmad_root, strict=True)
    for p in ("rgb_mask/broken/404_rgb_mask.png", "DS-MVTec/bottle/rgb_mask/broken/404_rgb_mask.png",
              "DS-MVTec/bottle/rbg_mask/broken/404_rbg_mask.png"):
        assert p in str(e.value)
    s = read_mmad(mmad_root)[0]                              # default: kept, reported by validation as missing
    rep = validate_samples([s], mmad_root)
    assert rep.counts == {"missing_mask": 1} and rep.samples == [] and "tried" in rep.problems[0]["detail"]


def test_find_mask_loco_layout(tmp_path):
    draw(tmp_path / "MVTec-LOCO/box/ground_truth/logical_anomalies/003/000.png", mode="L", box=(1, 1, 9, 9))
    assert find_mask(tmp_path, "MVTec-LOCO/box/test/logical_anomalies/003.png", "ground_truth/logical_anomalies/003.png")[0] \
        == "MVTec-LOCO/box/ground_truth/logical_anomalies/003/000.png"


# ---- bad inputs, each with its documented behaviour ----

def test_unknown_question_type_names_the_field(mmad_root):
    data = json.loads((mmad_root / "mmad.json").read_text())
    data["VisA/candle/test/good/0001.JPG"]["conversation"][0]["type"] = "Defect Colour"
    (mmad_root / "mmad.json").write_text(json.dumps(data))
    with pytest.raises(JudoDataError, match=r"VisA/candle/test/good/0001.JPG: conversation\[0\]: field 'type' = 'Defect Colour'"):
        read_mmad(mmad_root)


def test_path_escaping_the_root(mmad_root):
    with pytest.raises(JudoDataError, match="escapes the data root"): resolve_path(mmad_root, "../secret.png")
    s = read_mmad(mmad_root)[1]
    s.image = "../../etc/passwd"
    rep = validate_samples([s], mmad_root)
    assert rep.counts == {"escapes_root": 1} and rep.samples == []
    with pytest.raises(JudoDataError, match="escapes_root"): validate_samples([s], mmad_root, strict=True)


def test_missing_and_corrupt_images(mmad_root):
    samples = read_mmad(mmad_root)
    (mmad_root / "VisA/candle/test/good/0001.JPG").unlink()
    (mmad_root / "DS-MVTec/bottle/image/broken/000.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    rep = validate_samples(samples, mmad_root)
    assert rep.counts == {"missing_image": 1, "corrupt_image": 1} and rep.samples == [] and rep.n_checked == 2
    assert {p["path"] for p in rep.problems} == {str(mmad_root / "VisA/candle/test/good/0001.JPG"),
                                                 str(mmad_root / "DS-MVTec/bottle/image/broken/000.png")}
    with pytest.raises(JudoDataError, match="corrupt_image"): validate_samples(samples, mmad_root, strict=True)
    with pytest.raises(JudoDataError, match="cannot decode image"): load_image(mmad_root / "DS-MVTec/bottle/image/broken/000.png")
    with pytest.raises(JudoDataError, match="image not found"): load_image(mmad_root / "VisA/candle/test/good/0001.JPG")


def test_mask_of_another_size(mmad_root):
    s = read_mmad(mmad_root)[0]
    draw(mmad_root / s.mask, size=(32, 24), box=(2, 2, 9, 9), mode="L")
    rep = validate_samples([s], mmad_root)
    assert rep.counts == {"mask_size": 1} and "(32, 24)" in rep.problems[0]["detail"] and rep.samples == []
    with pytest.raises(JudoDataError, match="mask_size"): validate_samples([s], mmad_root, strict=True)


def test_empty_mask_is_kept_and_reported(mmad_root):
    s = read_mmad(mmad_root)[0]
    draw(mmad_root / s.mask, mode="L")                      # all zero
    for strict in (False, True):
        rep = validate_samples([s], mmad_root, strict=strict)
        assert rep.counts == {"empty_mask": 1} and rep.samples == [s]
    assert not load_mask(mmad_root / s.mask).any()


# ---- Real-IAD folders and bring-your-own MVTec-style folders ----

def test_read_realiad_folder_layout(tmp_path):
    base = tmp_path / "REALIAD/toy"
    draw(base / "OK/S0001/toy_0001_OK_C1_2023.jpg"); draw(base / "OK/S0002/toy_0002_OK_C2_2023.jpg")
    draw(base / "NG/AK/S0003/toy_0003_NG_AK_C1_2023.jpg", box=(5, 5, 15, 15))
    draw(base / "NG/AK/S0003/toy_0003_NG_AK_C1_2023.png", box=(5, 5, 15, 15), mode="L")
    samples = read_realiad(tmp_path)
    ng = [s for s in samples if not s.is_normal]
    assert len(samples) == 3 and len(ng) == 1
    assert (ng[0].dataset, ng[0].category, ng[0].defect) == ("Real-IAD", "toy", "pit")
    assert ng[0].mask == "REALIAD/toy/NG/AK/S0003/toy_0003_NG_AK_C1_2023.png"
    assert ng[0].random_templates == ["REALIAD/toy/OK/S0001/toy_0001_OK_C1_2023.jpg"]     # same class, same camera view
    assert validate_samples(samples, tmp_path).problems == []


def test_read_realiad_split_file(tmp_path):
    base = tmp_path / "Real-IAD/realiad_1024"
    for rel in ("toy/OK/S0001/toy_0001_OK_C2_2023.jpg", "toy/OK/S0002/toy_0002_OK_C2_2023.jpg"):
        draw(base / rel)
    draw(base / "toy/NG/HS/S0003/toy_0003_NG_HS_C2_2023.jpg", box=(5, 5, 15, 15))
    draw(base / "toy/NG/HS/S0003/toy_0003_NG_HS_C2_2023.png", box=(5, 5, 15, 15), mode="L")
    entry = lambda cls, rel, mask=None: {"category": "toy", "anomaly_class": cls, "image_path": rel, "mask_path": mask}
    doc = {"meta": {"prefix": "", "normal_class": "OK"},   # paths that already start with the class folder
           "train": [entry("OK", "toy/OK/S0001/toy_0001_OK_C2_2023.jpg")],
           "test": [entry("OK", "toy/OK/S0002/toy_0002_OK_C2_2023.jpg"),
                    entry("HS", "toy/NG/HS/S0003/toy_0003_NG_HS_C2_2023.jpg", "toy/NG/HS/S0003/toy_0003_NG_HS_C2_2023.png")]}
    split = tmp_path / "Real-IAD/realiad_jsons/toy.json"; split.parent.mkdir(parents=True)
    split.write_text(json.dumps(doc))
    samples = read_realiad_json(split, images=base, root=tmp_path / "Real-IAD", split="all")
    assert [(s.meta["split"], s.defect, s.meta["view"]) for s in samples] == [("train", None, "C2"), ("test", None, "C2"), ("test", "scratch", "C2")]
    assert samples[2].mask == "realiad_1024/toy/NG/HS/S0003/toy_0003_NG_HS_C2_2023.png"
    assert set(samples[2].random_templates) == {samples[0].image, samples[1].image}
    assert validate_samples(samples, tmp_path / "Real-IAD").problems == []
    rows = read_judo_stage1(write_stage1_jsonl(samples, tmp_path / "stage1.jsonl"))         # the split -> Stage-1 rows
    assert [(r.image, r.category, r.defect, r.mask) for r in rows] == [(s.image, s.category, s.defect, s.mask) for s in samples]
    doc["test"][1]["mask_path"] = None; split.write_text(json.dumps(doc))
    with pytest.raises(JudoDataError, match=r"toy.json test\[1\]: anomalous \(HS\) but no mask_path"):
        read_realiad_json(split, images=base)
    split.write_text("{not json")
    with pytest.raises(JudoDataError, match="not valid JSON"): read_realiad_json(split, images=base)
    with pytest.raises(JudoDataError, match="split file not found"): read_realiad_json(tmp_path / "none.json")


def test_mvtec_folder_to_mmad(tmp_path):
    src = tmp_path / "line"
    for cat in ("widget", "gadget"):
        for i in range(2): draw(src / f"{cat}/train/good/{i:03d}.png")
        draw(src / f"{cat}/test/good/000.png")
        for d, box in (("scratch", (4, 4, 14, 12)), ("dent", (44, 30, 58, 42))):
            draw(src / f"{cat}/test/{d}/000.png", box=box); draw(src / f"{cat}/ground_truth/{d}/000_mask.png", box=box, mode="L")
    samples = mvtec_folder_to_mmad(src, tmp_path / "out", seed=1)
    assert len(samples) == 6 and read_mmad(tmp_path / "out") == samples
    assert validate_samples(samples, tmp_path / "out").problems == []
    types = {q.type for s in samples for q in s.questions}
    assert types == {"Anomaly Detection", "Object Classification", "Defect Classification", "Defect Localization"}
    loc = {s.defect: q.options[q.answer] for s in samples for q in s.questions if q.type == "Defect Localization"}
    assert loc == {"scratch": "Top left.", "dent": "Bottom right."}
    with pytest.raises(JudoDataError, match="MVTec-style"): mvtec_folder_to_mmad(tmp_path / "empty", tmp_path / "o2")


# ---- pairing on a dataset read from disk ----

def test_conversations_from_read_dataset(mmad_root):
    from judo.pairing import grpo_prompt_messages, mmad_messages, pick_reference, stage1_messages
    s = read_mmad(mmad_root)[0]
    ref = pick_reference(s, "random", np.random.default_rng(0))
    assert ref == "MVTec-AD/bottle/train/good/000.png" == pick_reference(s, "similar", root=mmad_root)
    msgs, imgs = stage1_messages(s, ref, mmad_root)
    assert [c["type"] for c in msgs[0]["content"]] == ["image", "image", "text"] and len(imgs) == 2
    assert msgs[1]["content"][0]["text"].startswith("<seg> (") and "</seg>\n<think> " in msgs[1]["content"][0]["text"]
    assert len(grpo_prompt_messages(s, ref, mmad_root)[1]) == 2
    m, im = mmad_messages(s, ref, mmad_root)
    assert np.array_equal(np.asarray(im[0]), np.asarray(load_image(mmad_root / ref)))   # MMAD: template first


# ---- malformed files: one line naming the file and the field or line ----

def test_mmad_json_structure_errors_name_file_and_field(mmad_root):
    path = mmad_root / "mmad.json"
    good = json.loads(path.read_text())
    key = "DS-MVTec/bottle/image/broken/000.png"
    cases = {"expected one JSON object": list(good.values()),
             f"{key}: expected an object": {**good, key: ["x"]},
             "field 'random_templates' must be a list": {**good, key: {**good[key], "random_templates": "a.png"}},
             "conversation[0]: field 'Options' key 'a' is not a capital letter": {**good, key: {**good[key], "conversation": [
                 {**good[key]["conversation"][0], "Options": {"a": "Yes.", "b": "No."}, "Answer": "a"}]}},
             "'Options' value of 'A' must be a non-empty text": {**good, key: {**good[key], "conversation": [
                 {**good[key]["conversation"][0], "Options": {"A": None, "B": "No."}}]}},
             "expected a question object": {**good, key: {**good[key], "conversation": [3]}}}
    for msg, data in cases.items():
        path.write_text(json.dumps(data))
        with pytest.raises(JudoDataError, match=re.escape(msg)) as e: read_mmad(mmad_root)
        assert str(path) in str(e.value), msg
    path.write_text(json.dumps({**good, key: {**good[key], "random_templates": None}}))     # null: no templates
    assert read_mmad(mmad_root)[0].random_templates == []


def test_symlink_out_of_the_root_is_refused(mmad_root, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    draw(outside)
    (mmad_root / "VisA/candle/train/good/0003.JPG").symlink_to(outside)
    with pytest.raises(JudoDataError, match="symbolic link"): resolve_path(mmad_root, "VisA/candle/train/good/0003.JPG")
    s = read_mmad(mmad_root)[1]
    s.image = "VisA/candle/train/good/0003.JPG"
    assert validate_samples([s], mmad_root).counts == {"escapes_root": 1}


def test_huge_options_literal_is_refused_by_size(tmp_path):
    row = json.loads(FIXTURE_GRPO.read_text().splitlines()[0])
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps({**row, "problem": "What? \n Choice: \n " + "-" * 100000 + "1"}) + "\n")
    with pytest.raises(JudoDataError, match=r"g.jsonl:1: field 'problem' options are 1"): read_judo_grpo(p)
    p.write_text(json.dumps({**row, "problem": "What? \n Choice: \n " + "(" * 5000 + ")" * 5000}) + "\n")
    with pytest.raises(JudoDataError, match=r"g.jsonl:1: field 'problem' options are not a dict literal"): read_judo_grpo(p)
