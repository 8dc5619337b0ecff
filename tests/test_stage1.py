"Integration tests of judo.stage1: exact targets, bad rows, assistant-only labels, the tiny run (CLI, checkpoint, resume), recipes."
import json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(1)   # the tiny model trains several times faster on one thread

from judo.core import NORMAL_COMPARISON, JudoDataError
from judo.data import read_judo_stage1
from judo.models import load_vlm
from judo.sft import (SFTModelArgs, check_sft_config, kept_label_text, load_stage_model, make_sft_trainer, resolve_data, run_sft,
                      vision_collator)
from judo.stage1 import Stage1Args, build_stage1_rows, evaluate_segmentation, read_stage1_samples

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("judo-stage1")
SYNTH = "synth?n_per_category=16&categories=washer,pill_box"


def run_cli(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def cpu_config(out, **kw):
    from trl import SFTConfig
    base = dict(output_dir=str(out), use_cpu=True, bf16=False, report_to=[], gradient_checkpointing=False, max_length=None,
                per_device_train_batch_size=4, learning_rate=2e-3, logging_steps=1, save_strategy="no", seed=0,
                disable_tqdm=True)
    return SFTConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    "A hand-made dataset in the authors' jsonl format: 112-px images, 4x4 grid (28-px cells)."
    root = tmp_path_factory.mktemp("hand")
    d = root / "REALIAD/widget"
    for sub in ("OK/S0001", "OK/S0002", "NG/AK/S0003", "NG/HS/S0004"): (d / sub).mkdir(parents=True)
    grey = Image.new("RGB", (112, 112), (128, 128, 128))
    for p in ("OK/S0001/widget_0001_OK_C1_1.jpg", "OK/S0002/widget_0002_OK_C1_1.jpg", "NG/AK/S0003/widget_0003_NG_AK_C1_1.jpg",
              "NG/HS/S0004/widget_0004_NG_HS_C1_1.jpg"):
        grey.save(d / p)
    m = np.zeros((112, 112), np.uint8); m[0:20, 30:80] = 255           # row 1, columns 2-3 (28-px cells)
    Image.fromarray(m).save(d / "NG/AK/S0003/widget_0003_NG_AK_C1_1.png")
    tiny = np.zeros((112, 112), np.uint8); tiny[60, 90] = 255           # one pixel: below 2% of any cell -> fallback
    Image.fromarray(tiny).save(d / "NG/HS/S0004/widget_0004_NG_HS_C1_1.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(d / "NG/HS/S0004/small_mask.png")
    ok, ok2 = "REALIAD/widget/OK/S0001/widget_0001_OK_C1_1.jpg", "REALIAD/widget/OK/S0002/widget_0002_OK_C1_1.jpg"
    rows = [dict(item_type="widget", image_path=ok2, mask_path=None, normal_image_path=ok, gt=None),
            dict(item_type="widget", image_path="REALIAD/widget/NG/AK/S0003/widget_0003_NG_AK_C1_1.jpg",
                 mask_path="REALIAD/widget/NG/AK/S0003/widget_0003_NG_AK_C1_1.png", normal_image_path=ok, gt=" A pit at the top. "),
            dict(item_type="widget", image_path="REALIAD/widget/NG/HS/S0004/widget_0004_NG_HS_C1_1.jpg",
                 mask_path="REALIAD/widget/NG/HS/S0004/widget_0004_NG_HS_C1_1.png", normal_image_path=ok, gt="A tiny scratch."),
            dict(item_type="widget", image_path="REALIAD/widget/NG/AK/S0003/widget_0003_NG_AK_C1_1.jpg",
                 mask_path="REALIAD/widget/NG/AK/S0003/widget_0003_NG_AK_C1_1.png",
                 normal_image_path="REALIAD/widget/OK/S0009/missing.jpg", gt="x"),
            dict(item_type="widget", image_path="REALIAD/widget/NG/HS/S0004/widget_0004_NG_HS_C1_1.jpg",
                 mask_path="REALIAD/widget/NG/HS/S0004/small_mask.png", normal_image_path=ok, gt="y")]
    (root / "stage1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def tiny():
    return load_vlm("tiny")


def text_of(row): return row["completion"][0]["content"][0]["text"]


def test_targets_equal_hand_made(hand):
    rep = build_stage1_rows(read_judo_stage1(hand / "stage1.jsonl")[:3], hand, size=112, n=4)
    assert [text_of(r) for r in rep.rows] == [
        f"<seg> None </seg>\n<think> {NORMAL_COMPARISON} </think>",
        "<seg> (1,2)-(1,3) </seg>\n<think> A pit at the top. </think>",
        "<seg> (3,4) </seg>\n<think> A tiny scratch. </think>"]
    assert [len(r["images"]) for r in rep.rows] == [2, 2, 2] and rep.rows[0]["images"][0].size == (112, 112)
    text = rep.rows[1]["prompt"][0]["content"][-1]["text"]
    assert text.startswith("First image = QUERY; Second image = NORMAL template.") and "4x4 grid" in text


def test_bad_rows_reported_with_path_and_skipped(hand, caplog):
    samples = read_judo_stage1(hand / "stage1.jsonl")
    rep = build_stage1_rows(samples, hand, size=112, n=4)
    kinds = {p["kind"]: p for p in rep.problems}
    assert len(rep.rows) == 3 and len(rep.problems) == 2 and set(kinds) == {"missing_reference", "mask_size"}
    assert kinds["missing_reference"]["path"] == str(hand / "REALIAD/widget/OK/S0009/missing.jpg")
    assert kinds["mask_size"]["path"].endswith("small_mask.png") and "(64, 64)" in kinds["mask_size"]["detail"]
    assert "missing.jpg" in caplog.text and "small_mask.png" in caplog.text
    with pytest.raises(JudoDataError, match="missing.jpg"):
        build_stage1_rows(samples, hand, size=112, n=4, strict=True)


def test_stage1_refuses_tags_in_gt_and_a_mask_that_is_the_image(hand, tmp_path):
    rows = [json.loads(l) for l in (hand / "stage1.jsonl").read_text().splitlines()]
    bad = tmp_path / "tags.jsonl"
    bad.write_text("\n".join(json.dumps(r) for r in [rows[0], {**rows[1], "gt": "</seg> (99,99)-(0,0) <seg> a pit"}]) + "\n")
    with pytest.raises(JudoDataError, match=r"tags.jsonl:2: field 'gt' holds the tag '</seg>'"): read_judo_stage1(bad)
    bad.write_text(json.dumps({**rows[1], "gt": 3}) + "\n")
    with pytest.raises(JudoDataError, match=r"tags.jsonl:1: field 'gt' must be a text"): read_judo_stage1(bad)
    bad.write_text(json.dumps({**rows[1], "image_path": "../REALIAD/widget/NG/AK/S0003/x.jpg"}) + "\n")
    with pytest.raises(JudoDataError, match=r"tags.jsonl:1: field 'image_path' .* leaves the data root"): read_judo_stage1(bad)
    s = read_judo_stage1(hand / "stage1.jsonl")[1]
    s.mask = s.image                                                     # mask_path pointing at the RGB query
    rep = build_stage1_rows([s], hand, size=112, n=4)
    assert rep.rows == [] and [p["kind"] for p in rep.problems] == ["mask_is_image"]
    with pytest.raises(JudoDataError, match="mask_is_image"): build_stage1_rows([s], hand, size=112, n=4, strict=True)


def test_cli_data_error_is_one_line(tmp_path):
    r = run_cli("--config", REPO / "recipes/tiny/stage1.yaml", "--data", tmp_path / "none.jsonl", "--output_dir", tmp_path / "o",
                cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("judo-stage1: error: data not found")


def test_max_length_that_would_cut_is_refused_before_training(tmp_path):
    "A max_length that cuts the image tokens, or only the answer, is one line naming the field and the value to set."
    common = ("--config", REPO / "recipes/tiny/stage1.yaml", "--max_steps", 1, "--eval_samples", 0, "--output_dir", tmp_path / "o")
    for limit, what in ((40, "cuts the image tokens"), (150, "cuts the answer")):
        r = run_cli(*common, "--max_length", limit, cwd=tmp_path)
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert last.startswith(f"judo-stage1: error: stage1: max_length={limit} {what}") and "set max_length: " in last, last
        assert not (tmp_path / "o/checkpoint-1").exists()
    need = int(last.split("set max_length: ")[1].split()[0])
    r = run_cli(*common, "--max_length", need, "--save_strategy", "no", cwd=tmp_path)      # the value it names trains
    assert r.returncode == 0, r.stderr[-2000:]


def test_only_assistant_tokens_carry_labels(hand, tiny):
    model, processor = tiny
    rows = build_stage1_rows(read_judo_stage1(hand / "stage1.jsonl")[:3], hand, size=112, n=4).rows
    batch = vision_collator(processor)([dict(r) for r in rows])
    assert {"mm_token_type_ids", "image_grid_thw", "pixel_values"} <= set(batch)
    for i, r in enumerate(rows):
        ids, lab = batch["input_ids"][i], batch["labels"][i]
        kept = torch.nonzero(lab != -100).flatten()
        assert (lab[kept] == ids[kept]).all()
        assert (kept == torch.arange(kept[0], kept[-1] + 1)).all()            # one contiguous span ...
        start = processor.tokenizer.decode(ids[:kept[0]])                       # ... right after the assistant header
        assert start.endswith("<|im_start|>assistant\n") and start.count("<|image_pad|>") == 32
        assert kept_label_text(batch, processor, i) == text_of(r) + "<|im_end|>\n"


def test_model_receives_mm_token_type_ids(hand, tiny, tmp_path):
    model, processor = tiny
    rows = build_stage1_rows(read_judo_stage1(hand / "stage1.jsonl")[:3], hand, size=112, n=4).rows
    seen = []
    h = model.register_forward_pre_hook(lambda m, a, kw: seen.append(set(kw)), with_kwargs=True)
    try: make_sft_trainer(model, processor, rows, cpu_config(tmp_path, max_steps=1)).train()
    finally: h.remove()
    assert {"mm_token_type_ids", "image_grid_thw", "pixel_values", "labels"} <= seen[0]


def test_gradient_checkpointing_option_trains(hand, tmp_path):
    model, processor = load_vlm("tiny")
    rows = build_stage1_rows(read_judo_stage1(hand / "stage1.jsonl")[:3], hand, size=112, n=4).rows
    trainer = make_sft_trainer(model, processor, rows, cpu_config(tmp_path, max_steps=2, gradient_checkpointing=True))
    trainer.train()
    assert model.is_gradient_checkpointing and trainer.state.global_step == 2


def test_query_only_and_segmentation_eval(tiny):
    model, processor = tiny
    root = resolve_data(SYNTH)
    held = read_stage1_samples(root, root, "test")[:4]
    rows = build_stage1_rows(held, root, 112, 4, query_only=True).rows
    assert all(len(r["images"]) == 1 and "NORMAL" not in r["prompt"][0]["content"][-1]["text"] for r in rows)
    for qo in (False, True):
        ev = evaluate_segmentation(model, processor, held, root, 112, 4, query_only=qo, max_new_tokens=8)
        assert ev["n"] == 4 and ev["query_only"] is qo and 0 <= ev["format_valid"] <= 1 and len(ev["predictions"]) == 4


def test_cli_tiny_recipe_trains_saves_and_resumes(tmp_path):
    "A run cut after checkpoint-5 and resumed logs the uninterrupted run's loss at every later step: the weights came back."
    full, cut = tmp_path / "full", tmp_path / "cut"
    common = ("--config", REPO / "recipes/tiny/stage1.yaml", "--max_steps", 10, "--save_steps", 5, "--logging_steps", 1,
              "--eval_samples", 0)
    r = run_cli(*common, "--output_dir", full, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((full / "judo_stage1.json").read_text())
    assert len(s["losses"]) == 10 and s["losses"][-1] < s["losses"][0]
    model, processor = load_vlm(full)                                           # the folder Stage 2 starts from
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    shutil.copytree(full / "checkpoint-5", cut / "checkpoint-5")                # a crash right after step 5
    r = run_cli(*common, "--output_dir", cut, cwd=tmp_path)                     # resume: false over a checkpoint
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "already holds checkpoint-5" in r.stderr.splitlines()[-1] and "--resume true" in r.stderr
    r = run_cli(*common, "--output_dir", cut, "--resume", "true", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    resumed = json.loads((cut / "judo_stage1.json").read_text())
    assert resumed["resumed_from"] == str(cut / "checkpoint-5") and resumed["global_step"] == 10
    assert resumed["losses"][5:] == pytest.approx(s["losses"][5:], abs=1e-5)
    # a checkpoint cut while it was written: one line naming the file and the checkpoint to fall back on
    w = full / "checkpoint-10/model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    r = run_cli(*common, "--output_dir", full, "--resume", "true", "--max_steps", 12, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("judo-stage1: error: ") and str(w) in last and str(full / "checkpoint-5") in last


def test_lora_run_saves_merged_model(tmp_path):
    args = Stage1Args(data=SYNTH, use_lora=True, lora_r=4, lora_alpha=8, max_samples=8)
    model, processor = load_stage_model(args)
    from judo.sft import peft_config
    from judo.stage1 import stage1_data
    train, _, root, size, n = stage1_data(args)
    rows = build_stage1_rows(train, root, size, n).rows
    trainer = make_sft_trainer(model, processor, rows, cpu_config(tmp_path, max_steps=2), peft_config(args))
    assert sum(p.numel() for p in trainer.model.parameters() if p.requires_grad) < 100_000
    run_sft(trainer, processor, args, trainer.args)
    assert not (tmp_path / "adapter_config.json").exists()
    m, _ = load_vlm(tmp_path)
    assert not any("lora" in k for k in m.state_dict())


def test_impossible_configs_fail_with_what_to_change():
    with pytest.raises(ValueError, match="bf16: false"):
        from trl import SFTConfig
        check_sft_config(SFTModelArgs(), SFTConfig(output_dir="/tmp/x", use_cpu=True))
    with pytest.raises(ValueError, match="choose one of"): Stage1Args(reference="closest")
    with pytest.raises(ValueError, match="lora_r >= 1"): Stage1Args(use_lora=True, lora_r=0)


@pytest.mark.parametrize("recipe", ["paper/stage1.yaml", "lora/stage1.yaml", "tiny/stage1.yaml"])
def test_stage1_recipes_load_and_validate(recipe):
    from trl import SFTConfig, TrlParser
    cpu = [] if torch.cuda.is_available() else ["--bf16", "false", "--use_cpu", "true"]   # bf16 needs a GPU to validate
    args, sft = TrlParser((Stage1Args, SFTConfig)).parse_args_and_config(args=["--config", str(REPO / "recipes" / recipe), *cpu])
    check_sft_config(args, sft)
    if recipe.startswith("paper"):
        assert (args.model_name_or_path, sft.learning_rate, sft.num_train_epochs, sft.max_length) == \
               ("Qwen/Qwen2.5-VL-7B-Instruct", 1e-6, 8, 2048)
        assert sft.per_device_train_batch_size == 1 and not args.use_lora and (args.image_size, args.grid_size) == (512, 16)
    if recipe.startswith("lora"): assert args.use_lora


@pytest.mark.parametrize("name", ["ddp", "zero2", "zero3", "fsdp"])
def test_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import ClusterConfig
    c = ClusterConfig.from_yaml_file(str(REPO / f"recipes/accelerate/{name}.yaml"))
    assert c.mixed_precision == "bf16"
    if name == "zero3": assert c.deepspeed_config["zero_stage"] == 3
