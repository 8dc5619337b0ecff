"""Integration tests for judo.models: the tiny Qwen-VL, load_vlm's checks, and the judo-demo CLI."""
import hashlib, json, os, subprocess, sys, threading
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from judo.core import GRID_SIZE, GRPO_PROMPT, format_options
from judo.models import (ModelFolderError, chat_inputs, demo_images, generate_text, image_token_counts,
                         image_token_spans, load_vlm, param_counts)
from judo.tiny import build_tiny_vlm, tiny_vlm

REPO = Path(__file__).resolve().parents[1]


def two_image_conv(question="Is there any defect in the object?"):
    text = GRPO_PROMPT.format(category="bottle", question=question, options=format_options({"A": "Yes", "B": "No"}), n=GRID_SIZE)
    return [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": text}]}]


def digest(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_vlm(out=tmp_path_factory.mktemp("models") / "tiny")
    model, processor = load_vlm(path)
    return path, model, processor


@pytest.fixture(scope="module")
def pair():
    return demo_images(112, seed=0)


def test_two_image_forward_and_generate(tiny, pair):
    _, model, processor = tiny
    inputs = chat_inputs(processor, two_image_conv(), list(pair))
    assert "mm_token_type_ids" in inputs
    with torch.no_grad(): logits = model(**inputs).logits
    assert logits.shape == (1, inputs["input_ids"].shape[1], len(processor.tokenizer))
    assert torch.isfinite(logits).all()
    out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape[0] == 1 and 1 <= out.shape[1] - inputs["input_ids"].shape[1] <= 6
    assert torch.equal(out[:, :inputs["input_ids"].shape[1]], inputs["input_ids"])
    texts = generate_text(model, processor, two_image_conv(), list(pair), max_new_tokens=6)
    assert len(texts) == 1 and isinstance(texts[0], str)


def test_batched_generation_left_padded(tiny, pair):
    _, model, processor = tiny
    q, r = pair
    convs = [two_image_conv(), two_image_conv("Where?")]
    inputs = chat_inputs(processor, convs, [[q, r], [r, q]])
    assert processor.tokenizer.padding_side == "left"
    assert inputs["attention_mask"][:, -1].tolist() == [1, 1]
    assert inputs["attention_mask"][1, 0] == 0  # the shorter prompt is padded at the start
    assert len(generate_text(model, processor, convs, [[q, r], [r, q]], max_new_tokens=3)) == 2


def test_save_reload_identical_logits(tiny, pair, tmp_path):
    _, model, processor = tiny
    model.save_pretrained(tmp_path); processor.save_pretrained(tmp_path)
    m2, p2 = load_vlm(tmp_path)
    with torch.no_grad():
        a = model(**chat_inputs(processor, two_image_conv(), list(pair))).logits
        b = m2(**chat_inputs(p2, two_image_conv(), list(pair))).logits
    assert torch.equal(a, b)


@pytest.mark.parametrize("sizes", [[(112, 112), (112, 112)], [(512, 512), (300, 200)]])
def test_image_tokens_match_grid(tiny, sizes):
    _, model, processor = tiny
    from PIL import Image
    images = [Image.new("RGB", s, (120, 60, 30)) for s in sizes]
    inputs = chat_inputs(processor, two_image_conv(), images)
    counts = image_token_counts(inputs, processor)
    grid = inputs["image_grid_thw"]
    assert counts == [int(g.prod()) // processor.image_processor.merge_size ** 2 for g in grid]
    ids = inputs["input_ids"][0]
    spans = image_token_spans(ids, model.config)
    assert [e - s for s, e in spans] == counts
    assert all(bool((ids[s:e] == model.config.image_token_id).all()) for s, e in spans)
    assert int((ids == model.config.image_token_id).sum()) == sum(counts)
    if sizes[0] == (112, 112): assert counts == [16, 16]


def test_chat_template_renders_each_image(tiny):
    _, _, processor = tiny
    text = processor.apply_chat_template(two_image_conv(), add_generation_prompt=True, tokenize=False)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")


def test_load_vlm_missing_path(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match=str(missing)) as e: load_vlm(missing)
    assert "expected a Hugging Face model folder" in str(e.value)


@pytest.mark.parametrize("files,expected", [
    ({}, "has no config.json"),
    ({"config.json": "{not json"}, "is not valid JSON"),
    ({"config.json": '{"model_type": "bert"}'}, "unknown model type 'bert'"),
    ({"config.json": '{"architectures": []}'}, "unknown model type None"),
    ({"config.json": '{"model_type": "qwen2_5_vl"}'}, "no weights"),
    ({"config.json": '{"model_type": "qwen2_5_vl"}', "model.safetensors": ""}, "no processor files"),
])
def test_load_vlm_malformed_folder(tmp_path, files, expected):
    for name, text in files.items(): (tmp_path / name).write_text(text)
    with pytest.raises(ModelFolderError, match=str(tmp_path)) as e: load_vlm(tmp_path)
    assert expected in str(e.value)


def test_load_vlm_missing_processor_of_real_folder(tiny, tmp_path):
    path = tiny[0]
    for f in path.iterdir():
        if f.name not in ("processor_config.json", "preprocessor_config.json"): (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ModelFolderError, match="no processor files"): load_vlm(tmp_path)


def test_load_vlm_uncached_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="nobody/no-such-vlm.*not in the Hugging Face cache"): load_vlm("nobody/no-such-vlm")


def test_load_vlm_bad_options(tiny):
    with pytest.raises(ValueError, match="unknown dtype"): load_vlm(tiny[0], dtype="float99")
    with pytest.raises(ValueError, match="padding_side"): load_vlm(tiny[0], padding_side="middle")


def test_load_vlm_dtype_and_padding(tiny):
    model, processor = load_vlm(tiny[0], dtype="bfloat16", padding_side="right")
    assert model.dtype == torch.bfloat16 and processor.tokenizer.padding_side == "right"


def test_same_seed_same_weights(tmp_path):
    a, b = build_tiny_vlm(seed=3, out=tmp_path / "a"), build_tiny_vlm(seed=3, out=tmp_path / "b")
    for f in ("model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"): assert digest(a / f) == digest(b / f)
    c = build_tiny_vlm(seed=4, out=tmp_path / "c")
    assert digest(a / "model.safetensors") != digest(c / "model.safetensors")


def test_cache_reused_and_concurrent_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("JUDO_CACHE", str(tmp_path))
    paths, errors = [], []
    def build():
        try: paths.append(build_tiny_vlm(seed=5))
        except Exception as e: errors.append(e)
    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert not errors and len(set(paths)) == 1
    path = paths[0]
    assert path.parent == tmp_path / "models" and path.name.startswith("qwen2_5_vl-")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp folders left behind
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_vlm(seed=5) == path and (path / "model.safetensors").stat().st_mtime_ns == stamp
    model, processor = tiny_vlm(seed=5)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"


def test_tiny_sizes(tiny):
    _, model, _ = tiny
    cfg = model.config
    assert (cfg.text_config.hidden_size, cfg.text_config.num_hidden_layers, cfg.vision_config.depth) == (128, 2, 2)
    assert 0.5e6 < param_counts(model)["total"] < 1e6


def test_a_few_training_steps_lower_the_loss(tiny, pair):
    path = tiny[0]
    model, processor = load_vlm(path)
    conv = two_image_conv() + [{"role": "assistant", "content": [{"type": "text", "text": "<seg> None </seg>\n<answer>B</answer>"}]}]
    inputs = chat_inputs(processor, conv, list(pair), add_generation_prompt=False)
    labels = inputs["input_ids"].clone()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train(); losses = []
    for _ in range(4):
        loss = model(**inputs, labels=labels).loss
        loss.backward(); opt.step(); opt.zero_grad(); losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_lora_wrap(tiny):
    model, _ = load_vlm(tiny[0], lora={"r": 4})
    counts = param_counts(model)
    assert 0 < counts["trainable"] < counts["total"] / 10
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("language_model" in n and "lora_" in n for n in names)


def test_qwen3_vl_tiny(tmp_path, pair):
    model, processor = tiny_vlm("qwen3_vl", out=tmp_path / "q3")
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    inputs = chat_inputs(processor, two_image_conv(), list(pair))
    assert image_token_counts(inputs, processor) == [16, 16]
    with torch.no_grad(): assert torch.isfinite(model(**inputs).logits).all()
    assert len(generate_text(model, processor, two_image_conv(), list(pair), max_new_tokens=3)) == 1


def test_bad_tiny_kind():
    with pytest.raises(ValueError, match="unknown tiny model kind"): build_tiny_vlm("llava")
    with pytest.raises(ValueError, match="multiple of 28"): build_tiny_vlm(image_size=100)


def _cli(*args, cache):
    exe = Path(sys.executable).parent / "judo-demo"
    env = {**os.environ, "JUDO_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=300)


def test_demo_cli_end_to_end(tmp_path):
    r = _cli("--max_new_tokens", "5", cache=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "=== prompt ===" in r.stdout and r.stdout.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert "=== tokens per image (query, template) === [16, 16]" in r.stdout
    assert "=== output ===" in r.stdout
    assert len(list((tmp_path / "models").iterdir())) == 1  # built into the cache


def test_demo_cli_bad_model(tmp_path):
    r = _cli("--model", str(tmp_path / "nope"), cache=tmp_path)
    assert r.returncode != 0 and str(tmp_path / "nope") in r.stderr and "does not exist" in r.stderr


def test_copy_pretrained_build(tiny, tmp_path):
    "`copy_steps` trains the text model at build time: recorded in judo_tiny.json, other weights and cache key than random init."
    path = build_tiny_vlm(out=tmp_path / "copy", copy_steps=60)
    rec = json.loads((path / "judo_tiny.json").read_text())
    assert rec["copy_steps"] == 60 and rec["copy_pretrain"]["steps"] == 60
    assert rec["copy_pretrain"]["last_loss"] < rec["copy_pretrain"]["first_loss"]
    assert json.loads((tiny[0] / "judo_tiny.json").read_text())["copy_pretrain"] is None
    assert digest(path / "model.safetensors") != digest(tiny[0] / "model.safetensors")
    assert digest(path / "tokenizer.json") == digest(tiny[0] / "tokenizer.json")
    model, processor = load_vlm(path)   # loads like any other folder
    assert not model.training
    with pytest.raises(ValueError, match="copy_steps=-1"): build_tiny_vlm(out=tmp_path / "bad", copy_steps=-1)
