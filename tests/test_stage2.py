"Integration tests of judo.stage2: the QA generator, bad knowledge files, answer-only labels, a tiny run from a Stage-1 checkpoint, recipes."
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(1)

from judo.core import STAGE2_PROMPT, JudoDataError
from judo.data import read_domain_knowledge, read_judo_domain_qa
from judo.models import load_vlm
from judo.sft import check_sft_config, kept_label_text, resolve_data, vision_collator
from judo.stage1 import Stage1Args, main as stage1_main
from judo.stage2 import (QA_TEMPLATES, Stage2Args, build_stage2_rows, check_domain_knowledge, generate_domain_qa,
                         main, qa_samples, split_probe, stage2_samples)

REPO = Path(__file__).resolve().parents[1]
DK = REPO / "fixtures/mmad/domain_knowledge.json"
QA = REPO / "fixtures/judo_official/domain_qa_goods.jsonl"
CLI = Path(sys.executable).with_name("judo-stage2")
SYNTH = "synth?n_per_category=16&categories=washer,pill_box"


def cpu_config(out, **kw):
    from trl import SFTConfig
    base = dict(output_dir=str(out), use_cpu=True, bf16=False, report_to=[], gradient_checkpointing=False, max_length=None,
                per_device_train_batch_size=4, learning_rate=2e-3, logging_steps=1, save_strategy="no", seed=0, disable_tqdm=True)
    return SFTConfig(**{**base, **kw})


def test_generator_is_deterministic_and_covers_every_class_and_defect():
    dk = read_domain_knowledge(DK)
    qa = generate_domain_qa(dk, seed=3)
    assert qa == generate_domain_qa(dk, seed=3)
    assert [q["question"] for q in qa] != [q["question"] for q in generate_domain_qa(dk, seed=4)]
    want = {(d, c, k) for d in dk for c in dk[d] for k, v in dk[d][c].items() if isinstance(v, str) and v.strip()}
    assert {(q["dataset"], q["category"], q["key"]) for q in qa} == want
    assert {(q["dataset"], q["category"]) for q in qa} == {(d, c) for d in dk for c in dk[d]}
    defects = [q for q in qa if q["key"] != "good"]
    for aspect in ("look", "distinguish"):   # every defect gets its look and, where the class has others, the contrast
        assert {(q["dataset"], q["category"], q["key"]) for q in defects if q["aspect"] == aspect} >= \
               {(d, c, k) for d, c, k in want if k != "good" and (aspect == "look" or sum(x != "good" for x in dk[d][c]) > 1)}
    groups = {}
    for q in qa: groups.setdefault((q["dataset"], q["category"], q["key"], q["aspect"], q["answer"]), set()).add(q["question"])
    assert all(len(g) == 3 for g in groups.values())            # three distinct paraphrases per fact
    assert all(q["question"].endswith(("?", ".")) and q["answer"].strip() for q in qa)
    assert len(generate_domain_qa(dk, seed=3, paraphrases=1)) * 3 == len(qa)


def test_missing_or_empty_category_reported_clearly(tmp_path, caplog):
    bad = {"MVTec": {"bottle": {}, "cable": {"good": "  "}, "grid": {"good": " <Normal>\n Description: A regular mesh."}}}
    f = tmp_path / "dk.json"; f.write_text(json.dumps(bad))
    probs = check_domain_knowledge(read_domain_knowledge(f), [("DS-MVTec", "zipper")], where=f.name)
    assert [(p["kind"], p["path"]) for p in probs] == [("empty_category", "dk.json:MVTec/bottle"),
                                                      ("empty_category", "dk.json:MVTec/cable"),
                                                      ("missing_category", "dk.json:MVTec/zipper")]
    with pytest.raises(JudoDataError, match="dk.json:MVTec/bottle"):
        generate_domain_qa(read_domain_knowledge(f), strict=True, where=f.name)
    qa = generate_domain_qa(read_domain_knowledge(f), where=f.name)
    assert {q["category"] for q in qa} == {"grid"} and "dk.json:MVTec/cable" in caplog.text
    samples, probs = qa_samples(qa, tmp_path)                  # no images under tmp_path: reported with the folders tried
    assert samples == [] and probs[0]["kind"] == "no_normal_image" and "DS-MVTec/grid/train/good" in probs[0]["detail"]


def test_authors_rows_and_missing_image_reported(tmp_path):
    samples = read_judo_domain_qa(QA)[:4]
    for s in samples[:2]:
        (tmp_path / s.image).parent.mkdir(parents=True, exist_ok=True); Image.new("RGB", (64, 64)).save(tmp_path / s.image)
    rep = build_stage2_rows(samples, tmp_path, size=56)
    assert len(rep.rows) == 2 and len(rep.problems) == 2 and str(tmp_path / samples[2].image) in rep.problems[0]["path"]
    r = rep.rows[0]
    assert r["prompt"][0]["content"][-1]["text"] == STAGE2_PROMPT.format(question=samples[0].meta["problem"])
    assert r["completion"][0]["content"][0]["text"] == samples[0].meta["solution"] and r["images"][0].size == (56, 56)
    with pytest.raises(JudoDataError, match=samples[2].image.split("/")[-1]):
        build_stage2_rows(samples, tmp_path, size=56, strict=True)


def test_only_answer_tokens_carry_labels():
    root = resolve_data(SYNTH)
    train, _, root, size = stage2_samples(Stage2Args(data=str(root), max_samples=3))
    rows = build_stage2_rows(train, root, size).rows
    _, processor = load_vlm("tiny")
    batch = vision_collator(processor)([dict(r) for r in rows])
    for i, r in enumerate(rows):
        assert kept_label_text(batch, processor, i) == r["answer"] + "<|im_end|>\n"


def test_probe_holds_out_new_wordings_of_trained_facts():
    train, probe, _, _ = stage2_samples(Stage2Args(data=SYNTH, probe_questions=6))
    assert len(probe) == 6 and not {s.meta["problem"] for s in probe} & {s.meta["problem"] for s in train}
    assert all(any(t.meta["solution"] == p.meta["solution"] for t in train) for p in probe)


@pytest.fixture(scope="module")
def stage1_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("s1") / "stage1"
    stage1_main(Stage1Args(data=SYNTH), cpu_config(out, max_steps=4))
    return out


def test_cli_from_stage1_checkpoint_lowers_loss_saves_and_resumes(stage1_ckpt, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = lambda out, *a: subprocess.run([str(CLI), "--config", str(REPO / "recipes/tiny/stage2.yaml"), "--model_name_or_path",
                                          str(stage1_ckpt), "--output_dir", str(out), "--max_steps", "12", "--save_steps",
                                          "6", "--logging_steps", "1", "--probe_questions", "4",
                                          "--probe_encoder", "none", *map(str, a)],
                                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    full, cut = tmp_path / "full", tmp_path / "cut"
    r = run(full)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((full / "judo_stage2.json").read_text())
    assert s["losses"][-1] < s["losses"][0] and (full / "checkpoint-12").is_dir()
    assert s["probe_before"]["n"] == 4 and 0 <= s["probe_after"]["token_f1"] <= 1
    model, _ = load_vlm(full)                                  # what Stage 3 loads
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    shutil.copytree(full / "checkpoint-6", cut / "checkpoint-6")   # a crash right after step 6
    r = run(cut, "--resume", "true")             # the same rows: the probe questions are held out of both
    assert r.returncode == 0, r.stderr[-3000:]
    resumed = json.loads((cut / "judo_stage2.json").read_text())
    assert resumed["resumed_from"] == str(cut / "checkpoint-6") and resumed["global_step"] == 12
    assert resumed["losses"][6:] == pytest.approx(s["losses"][6:], abs=1e-5)   # the same run, step for step


def test_text_only_rows_can_be_packed(stage1_ckpt, tmp_path):
    args = Stage2Args(model_name_or_path=str(stage1_ckpt), data=SYNTH, with_image=False, max_samples=16)
    s = main(args, cpu_config(tmp_path, max_steps=2, packing=True, max_length=256, per_device_train_batch_size=2))
    assert s["global_step"] == 2 and not s["with_image"]
    with pytest.raises(ValueError, match="with_image: false"):
        check_sft_config(Stage2Args(), cpu_config(tmp_path, packing=True), vision=True)


@pytest.mark.parametrize("recipe", ["paper/stage2.yaml", "lora/stage2.yaml", "tiny/stage2.yaml"])
def test_stage2_recipes_load_and_validate(recipe):
    from trl import SFTConfig, TrlParser
    cpu = [] if torch.cuda.is_available() else ["--bf16", "false", "--use_cpu", "true"]
    args, sft = TrlParser((Stage2Args, SFTConfig)).parse_args_and_config(args=["--config", str(REPO / "recipes" / recipe), *cpu])
    check_sft_config(args, sft, vision=args.with_image)
    if recipe.startswith("paper"):
        assert (sft.learning_rate, sft.num_train_epochs, sft.max_length) == (5e-7, 2, 4096)
        assert args.model_name_or_path.endswith("stage1") and not args.use_lora
