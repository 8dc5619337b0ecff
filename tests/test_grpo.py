"""Integration tests for judo.grpo: GRPO rows from the three sources, recipes, bad recipes, and judo-grpo end to end."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from PIL import Image, ImageDraw
from safetensors.torch import load_file

from judo.core import GRID_SIZE, IMAGE_SIZE, NO_CELLS, JudoDataError
from judo.grpo import (GRPO_COLUMNS, GRPOArgs, build_grpo_rows, check_recipe, grpo_dataset, parse_args, rows_from_jsonl,
                       rows_from_mmad, start_checkpoint)
from judo.sft import data_geometry
from judo.models import load_vlm
from judo.pairing import true_cells_text
from judo.rewards import REWARDS, SegF1Reward

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures/judo_official/grpo_gt.jsonl"
TINY = REPO / "recipes/tiny/grpo.yaml"
ON_CPU = [] if torch.cuda.is_available() else ["--bf16", "false", "--use_cpu", "true"]


def stand_ins(jsonl, root, side=96):
    "Draw a stand-in image, template and RGB mask (a white blob) for every path of a grpo_gt.jsonl under root."
    rng = np.random.default_rng(0)
    for line in Path(jsonl).read_text().splitlines():
        r = json.loads(line)
        for key in ("image", "template_image", "mask_path"):
            if not r.get(key): continue
            p = Path(root) / r[key]; p.parent.mkdir(parents=True, exist_ok=True)
            im = Image.new("RGB", (side, side), (0, 0, 0) if key == "mask_path" else (120, 120, 120))
            if key == "mask_path":
                x, y = rng.integers(0, side // 2, 2); ImageDraw.Draw(im).ellipse([x, y, x + side // 3, y + side // 4], fill="white")
            im.save(p, format="JPEG" if p.suffix.lower() in (".jpg", ".jpeg") else "PNG")
    return Path(root)


@pytest.fixture(scope="module")
def synth_args():
    return GRPOArgs()          # the tiny defaults: data 'synth' (cached judo-synth), model 'tiny-warm'


# ---------------------------------------------------------------- rows
def test_rows_from_fixture_have_columns_and_precomputed_cells(tmp_path):
    root = stand_ins(FIXTURE, tmp_path / "MMAD")
    raw = [json.loads(l) for l in FIXTURE.read_text().splitlines()]
    rows = rows_from_jsonl(FIXTURE, root, size=IMAGE_SIZE, n=GRID_SIZE)
    assert len(rows) == len(raw) == 40
    for r, x in zip(rows, raw):
        assert tuple(r) == GRPO_COLUMNS
        assert [c["type"] for c in r["prompt"][0]["content"]] == ["image", "image", "text"]
        assert r["images"] == [str(root / x["image"]), str(root / x["template_image"])]
        assert (r["solution"], r["domain_gt"], r["image"]) == (x["solution"], x["domain_gt"], x["image"])
        want = true_cells_text(root / x["mask_path"], GRID_SIZE, IMAGE_SIZE) if x["mask_path"] else NO_CELLS
        assert r["gt_cells"] == want and (want != NO_CELLS) == bool(x["mask_path"])
    # the cells are in the row: seg_f1 scores without the mask files
    for x in raw:
        if x["mask_path"]: (root / x["mask_path"]).unlink()
    r = next(r for r in rows if r["gt_cells"] != NO_CELLS)
    assert SegF1Reward(GRID_SIZE)([f"<seg> {r['gt_cells']} </seg>"], gt_cells=[r["gt_cells"]]) == [1.0]


def test_fixture_rows_without_images_are_skipped_and_counted(tmp_path, caplog):
    assert rows_from_jsonl(FIXTURE, tmp_path) == [] and "missing_image" in caplog.text
    with pytest.raises(JudoDataError, match="missing_image"): rows_from_jsonl(FIXTURE, tmp_path, strict=True)
    with pytest.raises(JudoDataError, match="no usable GRPO rows"): build_grpo_rows(GRPOArgs(data=str(FIXTURE), root=str(tmp_path)))


def test_broken_masks_never_become_rows(tmp_path):
    "A mask of another size or an empty mask on a defective query would train seg_f1 towards wrong cells: skipped, counted."
    root = stand_ins(FIXTURE, tmp_path / "MMAD")
    raw = [json.loads(l) for l in FIXTURE.read_text().splitlines()]
    masked = [x for x in raw if x["mask_path"]]
    Image.new("L", (40, 30), 255).save(root / masked[0]["mask_path"])                   # another size
    Image.new("RGB", (96, 96), 0).save(root / masked[-1]["mask_path"])                  # empty on a defective query
    broken = {masked[0]["image"], masked[-1]["image"]}
    rows = rows_from_jsonl(FIXTURE, root, size=IMAGE_SIZE, n=GRID_SIZE)
    assert len(rows) == len(raw) - sum(x["image"] in broken for x in raw) and not any(r["image"] in broken for r in rows)
    with pytest.raises(JudoDataError, match="mask_size"): rows_from_jsonl(FIXTURE, root, strict=True)


def test_rows_from_synth_and_mmad(synth_args):
    from judo.sft import resolve_data
    rows, size, n = build_grpo_rows(synth_args)
    root = resolve_data(synth_args.data)
    assert (size, n) == data_geometry(root) == (112, 4)
    assert all(tuple(r) == GRPO_COLUMNS and r["domain_gt"] for r in rows)
    assert {r["gt_cells"] == NO_CELLS for r in rows} == {True, False}
    mm = rows_from_mmad(root, root / "mmad_train.json", size, n, domain_knowledge=root / "domain_knowledge.json")
    assert sorted(r["gt_cells"] for r in mm) == sorted(r["gt_cells"] for r in rows)
    ds = grpo_dataset(rows, size)
    assert set(ds.column_names) == set(GRPO_COLUMNS)
    assert [im.size for im in ds[0]["images"]] == [(size, size)] * 2
    few, size8, n8 = build_grpo_rows(GRPOArgs(max_samples=5, grid_size=8))
    assert (len(few), size8, n8) == (5, 112, 8)


def test_unknown_data_source():
    with pytest.raises(JudoDataError, match="not found"): build_grpo_rows(GRPOArgs(data="/nonexistent/grpo.jsonl"))


# ---------------------------------------------------------------- recipes
@pytest.mark.parametrize("name", ["tiny", "paper", "lora"])
def test_recipes_load(name):
    args, cfg = parse_args(["--config", str(REPO / f"recipes/{name}/grpo.yaml"), *([] if name == "tiny" else ON_CPU)])
    assert (cfg.loss_type, cfg.scale_rewards, cfg.beta, cfg.epsilon, cfg.num_iterations) == ("grpo", "group", 0.04, 0.2, 1)
    assert args.rewards == list(REWARDS) and cfg.reward_weights == [1.0] * 5
    assert cfg.generation_batch_size % cfg.num_generations == 0
    if name != "tiny":
        assert (cfg.num_generations, cfg.temperature, cfg.top_p, cfg.max_completion_length, cfg.num_train_epochs) == (16, 0.8, 0.95, 256, 14)
        assert cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps == 32        # 2 prompts x G
        assert (args.image_size, args.grid_size, args.use_lora) == (512, 16, name == "lora")
    if name == "paper": assert cfg.learning_rate == 7e-7


def test_bad_batch_says_what_to_change():
    with pytest.raises(ValueError, match="whole groups of num_generations"):
        parse_args(["--config", str(TINY), "--per_device_train_batch_size", "6"])


def test_unknown_reward_name():
    with pytest.raises(ValueError, match=r"unknown reward\(s\) \['speed'\]"):
        parse_args(["--config", str(TINY), "--rewards", "accuracy", "speed"])


def test_reward_weights_must_match(tmp_path):
    args, cfg = parse_args(["--config", str(TINY), "--rewards", "accuracy", "format", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="one weight per reward"): check_recipe(args, cfg)


def test_vllm_needs_gpu_extra(tmp_path):
    args, cfg = parse_args(["--config", str(TINY), "--use_vllm", "true", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match=r"judo\[gpu\]|tiny model"): check_recipe(args, cfg)


# ---------------------------------------------------------------- judo-grpo end to end
def console(name, *argv):
    "Run one of the package's console scripts from the repo root, one torch thread; the CompletedProcess."
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(Path(sys.executable).parent / name), *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def judo_grpo(*argv): return console("judo-grpo", *argv)


def test_cli_bad_recipe_fails_with_message(tmp_path):
    r = judo_grpo("--config", str(TINY), "--output_dir", str(tmp_path), "--per_device_train_batch_size", "3")
    assert r.returncode != 0 and "whole groups of num_generations" in r.stderr


def test_cli_tiny_run_changes_weights_logs_rewards_and_resumes(tmp_path, synth_args):
    out = tmp_path / "grpo"
    r = judo_grpo("--config", str(TINY), "--output_dir", str(out), "--max_steps", "4", "--num_completions_to_print", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    log = json.loads((out / "trainer_state.json").read_text())["log_history"]
    steps = [h for h in log if "loss" in h]
    assert [h["step"] for h in steps] == [1, 2, 3, 4]
    for name in REWARDS:
        assert all(np.isfinite(h[f"rewards/{name}_reward/mean"]) for h in steps), name
    assert any(h["rewards/domain_reward/mean"] != 0 or h["rewards/format_reward/mean"] > 0 for h in steps)
    table = sorted((out / "completions").glob("*.parquet"))
    assert table                                                             # sample completions with their rewards
    # the weights moved away from the start checkpoint
    start = load_file(f"{start_checkpoint(synth_args)}/model.safetensors")
    after = load_file(str(out / "model.safetensors"))
    assert max(float((after[k] - start[k]).abs().max()) for k in start) > 0
    model, processor = load_vlm(out)                                         # model + processor saved
    assert model.config.model_type == "qwen2_5_vl"
    assert json.loads((out / "judo_grpo.json").read_text())["grid_size"] == 4
    # a crash right after checkpoint-2, resumed (resume: true is the GRPO default): steps 3 and 4 are the uninterrupted run's
    cut = tmp_path / "cut"
    shutil.copytree(out / "checkpoint-2", cut / "checkpoint-2")
    r = judo_grpo("--config", str(TINY), "--output_dir", str(cut), "--max_steps", "4", "--num_completions_to_print", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from" in r.stderr and "checkpoint-2" in r.stderr
    logged = lambda d: [(h["step"], h["loss"], h["reward"]) for h in
                        json.loads((d / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    want, got = logged(out), logged(cut)
    assert [s for s, *_ in got] == [1, 2, 3, 4]
    assert np.allclose([v for _, *v in got[2:]], [v for _, *v in want[2:]], atol=1e-6)
    r = judo_grpo("--config", str(TINY), "--output_dir", str(cut), "--max_steps", "5", "--resume", "false")
    assert r.returncode == 1 and "already holds checkpoint-4" in r.stderr.splitlines()[-1] and "Traceback" not in r.stderr


def test_lora_run_saves_merged_model(tmp_path):
    from judo.grpo import main
    args, cfg = parse_args(["--config", str(TINY), "--output_dir", str(tmp_path), "--max_steps", "1", "--use_lora", "true",
                            "--lora_r", "4", "--lora_alpha", "8", "--save_strategy", "no", "--log_completions", "false",
                            "--rewards", "accuracy", "format", "structure", "seg_f1", "--reward_weights", "1", "1", "1", "1"])
    out = main(args, cfg)
    assert not (out / "adapter_config.json").exists()                       # adapters merged into a plain checkpoint
    state = load_file(str(out / "model.safetensors"))
    assert not any("lora" in k for k in state)
    model, _ = load_vlm(out)
    assert model.config.model_type == "qwen2_5_vl"


def run_cli(name, *argv):
    r = console(name, *argv)
    assert r.returncode == 0, f"{name}: {r.stderr[-3000:]}"
    return r


def test_grpo_from_a_stage2_checkpoint(tmp_path, synth_args):
    "JUDO's order: an instruction-following start model -> Stage 1 -> Stage 2 -> GRPO from the Stage-2 folder."
    base = start_checkpoint(synth_args)          # tiny-warm: the tiny stand-in for an Instruct model
    s1, s2, out = tmp_path / "stage1", tmp_path / "stage2", tmp_path / "grpo"
    gentle = ["--max_steps", "2", "--learning_rate", "1e-4", "--save_steps", "2"]
    run_cli("judo-stage1", "--config", str(REPO / "recipes/tiny/stage1.yaml"), "--model_name_or_path", base,
            "--output_dir", str(s1), "--eval_samples", "0", *gentle)
    run_cli("judo-stage2", "--config", str(REPO / "recipes/tiny/stage2.yaml"), "--model_name_or_path", str(s1),
            "--output_dir", str(s2), "--probe_questions", "0", *gentle)
    run_cli("judo-grpo", "--config", str(TINY), "--model_name_or_path", str(s2), "--output_dir", str(out), "--max_steps", "2",
            "--save_strategy", "no")
    assert json.loads((out / "judo_grpo.json").read_text())["model_name_or_path"] == str(s2)
    log = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert [h["step"] for h in log] == [1, 2]
    for name in REWARDS:                                     # all five rewards logged, every step
        assert all(np.isfinite(h[f"rewards/{name}_reward/mean"]) for h in log), name
    assert any(h["reward_std"] > 0 for h in log)             # completions differ in reward: advantages are not all zero
    start, after = load_file(str(s2 / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert max(float((after[k] - start[k]).abs().max()) for k in start) > 0


def test_bad_encoder_dtype_says_what_to_use(tmp_path):
    # refused while the recipe is parsed (so the pipeline's dry run names it too), before any model or encoder loads
    with pytest.raises(ValueError, match=r"encoder_dtype='int4': use one of \('float32', 'bfloat16', 'float16'\)"):
        parse_args(["--config", str(TINY), "--encoder_dtype", "int4", "--output_dir", str(tmp_path)])


def test_grpo_loss_is_conditioned_on_the_sampled_images(tmp_path):
    """The policy gradient is taken on log-probs of the completions given the images they were sampled with. One
    generation batch of TRL's GRPOTrainer (the model that looks, prompts of two lengths so some are left-padded): the
    log-probs of TRL's loss path equal one unpadded forward per completion at the sampling temperature, and they change
    when the images are zeroed or the query and its reference trade places. (TRL drops a batch's images without a word
    when it finds the image tokens do not match them; then these log-probs would not move.)"""
    from judo.grpo import make_trainer
    args, cfg = parse_args(["--config", str(TINY), "--model_name_or_path", "tiny-look", "--output_dir", str(tmp_path),
                            "--max_steps", "1", "--max_completion_length", "32", "--log_completions", "false",
                            "--rewards", "accuracy", "format", "seg_f1", "--reward_weights", "1", "1", "1"])
    rows, size, n = build_grpo_rows(args)
    tr = make_trainer(args, cfg, rows, size, n)
    ds, G = tr.train_dataset, cfg.num_generations
    lengths = [len(json.dumps(r["prompt"])) for r in rows]
    pick = [int(np.argmin(lengths)), int(np.argmax(lengths))]                 # the shortest and the longest prompt
    torch.manual_seed(0); tr.model.eval()
    with torch.no_grad(): out = tr._generate_and_score_completions([ds[i] for i in pick for _ in range(G)])
    assert (out["prompt_mask"] == 0).any()                                    # some prompts are left-padded
    keys = ("pixel_values", "image_grid_thw", "num_images", "mm_token_type_ids")
    assert all(out.get(k) is not None for k in keys), sorted(out)
    kw = {k: out[k] for k in keys}
    ids, m = torch.cat([out["prompt_ids"], out["completion_ids"]], 1), out["completion_mask"].bool()
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)

    def loss_path(**change):
        with torch.no_grad():
            return tr._get_per_token_logps_and_entropies(tr.model, ids, mask, m.size(1), **{**kw, **change})[0]
    real = loss_path()
    per_image = int(kw["image_grid_thw"][0].prod())                           # pixel rows of one image (all one size here)
    pv = kw["pixel_values"].view(len(pick) * G, 2, per_image, -1)             # (completion, query / reference, rows, dims)
    for i in range(len(m)):                                                  # one completion at a time, no padding
        seq = torch.cat([out["prompt_ids"][i][out["prompt_mask"][i].bool()], out["completion_ids"][i][m[i]]])[None]
        with torch.no_grad():
            logits = tr.model(input_ids=seq, pixel_values=pv[i].flatten(0, 1), image_grid_thw=kw["image_grid_thw"][2 * i:2 * i + 2],
                              mm_token_type_ids=(seq == tr.model.config.image_token_id).long()).logits[0]
        k = int(m[i].sum())
        want = torch.log_softmax(logits[-k - 1:-1].float() / cfg.temperature, -1).gather(-1, seq[0, -k:, None])[:, 0]
        assert torch.allclose(real[i][m[i]], want, atol=1e-4), i
    zeroed = loss_path(pixel_values=torch.zeros_like(kw["pixel_values"]))
    swapped = loss_path(pixel_values=pv.flip(1).flatten(0, 2))
    for other in (zeroed, swapped):
        assert float((other - real)[m].abs().max()) > 0.05
