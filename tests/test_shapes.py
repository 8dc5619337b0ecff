"CI-sized part of the real-shape check: the released widths at a shallower cut, one Stage-1 step on 512-px image pairs, and the token budget refusing truncation before training."
import os, time
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from judo.budget import BudgetError, check_budget
from judo.models import image_token_spans, load_vlm
from judo.shapes import build_real_shape, param_groups
from judo.stage1 import build_stage1_rows, read_stage1_samples
from judo.sft import data_root, resolve_data

SYNTH = "synth?n_per_category=4&categories=washer&size=512&grid=16"


@pytest.fixture(scope="module")
def shallow(tmp_path_factory):
    "The released Qwen2.5-VL-7B widths, 1 text layer, 2 vision blocks (windowed + full), the trained tokenizer and a vocabulary cut to it."
    from judo.tiny import tiny_corpus, train_tokenizer
    vocab = len(train_tokenizer(tiny_corpus(0)))
    path = build_real_shape(tokenizer="trained", vocab_size=vocab, out=tmp_path_factory.mktemp("rs") / "model")
    return load_vlm(path, dtype="bfloat16")


@pytest.fixture(scope="module")
def rows():
    path = resolve_data(SYNTH); root = data_root(path)
    samples = read_stage1_samples(path, root, "train")[:2]
    return build_stage1_rows(samples, root, 512, 16).rows


def test_shapes_are_the_released_ones(shallow):
    model, _ = shallow
    t, v = model.config.text_config, model.config.vision_config
    assert (t.hidden_size, t.num_attention_heads, t.num_key_value_heads, t.intermediate_size) == (3584, 28, 4, 18944)
    assert t.rope_parameters["mrope_section"] == [16, 24, 24]
    assert (v.hidden_size, v.depth, v.window_size, v.fullatt_block_indexes, v.spatial_merge_size) == (1280, 2, 112, [1], 2)
    assert not model.config.tie_word_embeddings and model.lm_head.weight.data_ptr() != model.model.language_model.embed_tokens.weight.data_ptr()
    assert param_groups(model)["text_layer"] == 233_057_792   # one 7B decoder layer, exactly
    assert next(model.parameters()).dtype == torch.bfloat16


def test_one_stage1_step_on_512px_pairs(shallow, rows, tmp_path):
    "Two 512-px images per prompt give 2 x 324 image tokens, and one optimizer step of TRL's SFTTrainer changes the weights."
    from trl import SFTConfig
    from judo.sft import make_sft_trainer
    model, proc = shallow
    rep = check_budget(rows, proc, "stage1", max_length=2048)          # the paper's limit fits
    assert {n for c in rep.counts for n in c.image_tokens} == {324}
    batch = proc(text=[proc.apply_chat_template(rows[0]["prompt"], tokenize=False, add_generation_prompt=True)],
                 images=rows[0]["images"], return_tensors="pt")
    assert [e - s for s, e in image_token_spans(batch["input_ids"][0], model.config)] == [324, 324]
    assert batch["input_ids"].shape[1] == rep.counts[0].prompt
    cfg = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], max_length=2048, max_steps=1,
                    per_device_train_batch_size=1, learning_rate=1e-3, optim="adafactor", logging_steps=1,
                    save_strategy="no", disable_tqdm=True, activation_checkpointing=False)
    w = model.model.language_model.layers[0].mlp.down_proj.weight
    before = w.detach().clone()
    t0 = time.perf_counter()
    trainer = make_sft_trainer(model, proc, rows[:1], cfg)
    out = trainer.train()
    assert trainer.state.global_step == 1 and torch.isfinite(torch.tensor(out.training_loss))
    assert not torch.equal(before, w.detach())
    print(f"one Stage-1 step at real width: {time.perf_counter() - t0:.1f}s, loss {out.training_loss:.3f}")


def test_budget_refuses_a_cut_before_training(shallow, rows):
    _, proc = shallow
    need = check_budget(rows, proc, "stage1", max_length=4096).need("max_length")
    with pytest.raises(BudgetError, match=f"max_length=600 cuts the image tokens.*set max_length: {need}"):
        check_budget(rows, proc, "stage1", max_length=600)             # inside the second image (ends past 648)
    with pytest.raises(BudgetError, match="cuts the answer.*set max_length"):
        check_budget(rows, proc, "stage1", max_length=need - 1)
    grpo_row = dict(prompt=rows[0]["prompt"], images=["q.png", "t.png"], gt_cells="(3,4)-(3,6)", domain_gt="A dent near the rim.", solution="A")
    with pytest.raises(BudgetError, match="set max_completion_length"):
        check_budget([grpo_row], proc, "grpo", image_size=512, max_completion_length=4)
