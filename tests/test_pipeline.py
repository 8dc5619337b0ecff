"judo-pipeline end to end on a micro configuration, every recipe's dry run, bad paths and settings, skip and resume."
import json, os, re, shutil, subprocess, sys
from pathlib import Path

import pytest
import yaml

from judo.report import TABLE_COLUMNS, UNTRAINED
from judo.pipeline import (PipelineError, STAGE_DONE, STAGES, load_pipeline_config,
                           recipes_dirs, run_pipeline, stage_status)

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"
MICRO_STEPS = {"stage1": dict(max_steps=2, save_steps=1, per_device_train_batch_size=2, eval_samples=0),
               "stage2": dict(max_steps=2, save_steps=1, per_device_train_batch_size=2, probe_questions=0),
               "coldstart": dict(max_steps=2, save_steps=1, per_device_train_batch_size=2, think="scan"),   # as the tiny recipe
               "grpo": dict(max_steps=1, save_steps=1, max_completion_length=48, log_completions=False)}   # the shortest well-formed answer of GRPO's draw (judo.budget)


def micro_recipe(d: Path, **changes) -> Path:
    "The tiny recipe shrunk to seconds: same stage recipes, 2 steps each, a small judo-synth, in-process stages."
    cfg = yaml.safe_load((RECIPES / "tiny/pipeline.yaml").read_text())
    cfg.update(synth=dict(n_per_category=12, size=112, grid=4, seed=0, categories="washer,pill_box"),
               stage_configs={s: str(RECIPES / "tiny" / f"{s}.yaml") for s in cfg["stages"]},
               stage_args=MICRO_STEPS, eval=dict(templates="similar", max_new_tokens=12, batch_size=32),
               tiny_model=dict(copy_steps=20),   # the recipe's copy pre-training path, in 20 steps instead of 1,500
               launcher="inprocess", overlays=2)
    cfg.update(changes)
    d.mkdir(parents=True, exist_ok=True)
    (d / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    return d


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    "One micro pipeline run (all four stages), shared by the report and skip/resume tests."
    tmp = tmp_path_factory.mktemp("pipe")
    recipe, out = micro_recipe(tmp / "micro", stage_synth={"grpo": {"seed": 1}}), tmp / "run"   # GRPO on its own draw
    md = run_pipeline(str(recipe), out=str(out), quiet=True)
    return recipe, out, md


def test_report_has_every_stage(micro_run):
    recipe, out, md = micro_run
    stages = yaml.safe_load((recipe / "pipeline.yaml").read_text())["stages"]
    table = md.split("## Scores", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (\w[\w ]*?) \| (.+) \|$", table, re.M)}
    for name in ["chance", UNTRAINED, *stages]:
        assert name in rows, f"no table row for {name}"
        cells = [c.strip() for c in rows[name].split("|")]
        assert len(cells) == len(TABLE_COLUMNS)
        for c in cells: assert c == "–" or 0 <= float(c) <= 100
    scores = json.loads((out / "report/scores.json").read_text())
    assert list(scores["rows"]) == ["chance", UNTRAINED, *stages]
    assert scores["rows"]["chance"]["AD"] == 50.0 and scores["n_questions"] > 0
    for png in ("curves.png", "overlays.png"): assert (out / "report" / png).stat().st_size > 1000
    for s in stages:
        assert stage_status(out / s)[0] == "done" and (out / "eval" / s / "answers.jsonl").is_file()
    assert "coldstart" in md and "Time (s)" in md
    assert "random init + 20 steps of copy pre-training" in md   # the base model the recipe built, said in the report
    # the last stage against the one before it, paired question by question, on every question both were asked
    ch = scores["change"]; assert (ch["before"], ch["after"]) == tuple(stages[-2:])
    logs = [{r["key"]: r for r in map(json.loads, open(out / "eval" / s / "answers.jsonl")) if not r.get("error")} for s in stages[-2:]]
    assert ch["rows"]["all"]["n"] == len(logs[0].keys() & logs[1].keys()) > 0
    assert f"## What `{stages[-1]}` changed over `{stages[-2]}`" in md and "p (sign test)" in md and "p (by image)" in md


def test_report_pairs_in_the_stages_order(micro_run, tmp_path):
    "The paired section counts the last stage against the one before it, in that direction, from the answer logs."
    recipe, out, _ = micro_run
    run = tmp_path / "run"; shutil.copytree(out, run)
    before, after = list(STAGES)[-2:]
    logs = {s: [json.loads(l) for l in open(run / "eval" / s / "answers.jsonl")] for s in (before, after)}
    asked = [i for i, r in enumerate(logs[after]) if not r.get("error") and not logs[before][i].get("error")]
    for r in (logs[before], logs[after]):
        for x in r: x["answer"] = None                        # the micro model seldom answers: start from all wrong
    for i in asked[:3]: logs[after][i]["answer"] = logs[after][i]["gold"]      # right only after: gained
    for i in asked[3:5]: logs[before][i]["answer"] = logs[before][i]["gold"]   # right only before: lost
    for s, rs in logs.items(): (run / "eval" / s / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    md = run_pipeline(str(recipe), out=str(run), quiet=True)             # every stage finished: the report is rewritten
    ch = json.loads((run / "report/scores.json").read_text())["change"]["rows"]["all"]
    assert (ch["n"], ch["before"], ch["after"], ch["gained"], ch["lost"]) == (len(asked), 2, 3, 3, 2)
    assert f"| all | {len(asked)} | 2 → 3 | 3 | 2 | 1.000 |" in md


def test_grpo_trains_on_its_own_draw(micro_run):
    "stage_synth: GRPO's rows and images come from another judo-synth draw; the cold start's from the main one."
    recipe, out, md = micro_run
    cmd = lambda s: json.loads((out / s / STAGE_DONE).read_text())["command"]
    arg = lambda c, k: Path(c[c.index(k) + 1])
    main_root, grpo_root = arg(cmd("coldstart"), "--root"), arg(cmd("grpo"), "--root")
    assert grpo_root != main_root and arg(cmd("grpo"), "--data") == grpo_root / STAGES["grpo"].data_file
    assert arg(cmd("coldstart"), "--data") == main_root / STAGES["coldstart"].data_file
    meta = lambda r: json.loads((r / "synth_meta.json").read_text())
    assert (meta(grpo_root)["seed"], meta(main_root)["seed"]) == (1, 0)
    assert {k: meta(grpo_root)[k] for k in ("image_size", "grid_size", "categories")} == \
           {k: meta(main_root)[k] for k in ("image_size", "grid_size", "categories")}
    rows = [json.loads(l) for l in (grpo_root / STAGES["grpo"].data_file).open()]
    main_pngs = {p.read_bytes() for p in main_root.rglob("*.png") if not any(d.endswith("_mask") for d in p.parts)}
    assert rows and not any((grpo_root / r["image"]).read_bytes() in main_pngs for r in rows)
    assert f"- grpo: its own judo-synth draw" in md and "'seed': 1" in md


def test_coldstart_trains_on_option_shuffled_copies(micro_run):
    recipe, out, _ = micro_run
    cmd = json.loads((out / "coldstart" / STAGE_DONE).read_text())["command"]
    rows = sum(1 for l in Path(cmd[cmd.index("--data") + 1]).open() if l.strip())
    copies = yaml.safe_load((RECIPES / "tiny/coldstart.yaml").read_text())["option_copies"]
    assert copies > 1 and json.loads((out / "coldstart/judo_coldstart.json").read_text())["n_rows"] == copies * rows


def test_scan_targets_follow_the_shown_options(micro_run):
    "Every scan target writes the options it was shown, in letter order, up to the gold one; the answer is that last letter."
    from judo.data import read_judo_grpo
    from judo.coldstart import coldstart_rows
    from judo.sft import data_root
    _, out, _ = micro_run
    cmd = json.loads((out / "coldstart" / STAGE_DONE).read_text())["command"]
    assert cmd[cmd.index("--think") + 1] == "scan"
    path = Path(cmd[cmd.index("--data") + 1])
    rows = coldstart_rows(read_judo_grpo(path), data_root(path), 112, 4, "scan", option_copies=3)
    assert rows
    for r in rows:
        prompt, target = r["prompt"][0]["content"][-1]["text"], r["completion"][0]["content"][0]["text"]
        shown = re.findall(r"^([A-H]): (.*)$", prompt, re.M)
        think = re.search(r"<think> (.*) </think>", target).group(1)
        lines = re.findall(r"([A-H]): (.*?)\. (yes|no)\.", think)
        answer = re.search(r"<answer>([A-H])</answer>", target).group(1)
        assert [(l, t.rstrip(".")) for l, t, _ in lines] == [(l, t.rstrip(".")) for l, t in shown[:len(lines)]]
        assert [v for _, _, v in lines] == ["no"] * (len(lines) - 1) + ["yes"] and lines[-1][0] == answer


def test_second_run_skips_finished_stages(micro_run, capsys):
    recipe, out, _ = micro_run
    before = {s: (out / s / STAGE_DONE).stat().st_mtime for s in STAGES}
    plan = run_pipeline(str(recipe), out=str(out), dry_run=True)
    assert plan.count("skip (finished)") == len(STAGES)
    run_pipeline(str(recipe), out=str(out), quiet=True)
    assert {s: (out / s / STAGE_DONE).stat().st_mtime for s in STAGES} == before


def test_partial_stage_resumes(micro_run):
    recipe, out, _ = micro_run
    g = out / "grpo"
    for f in [STAGE_DONE, "model.safetensors", "config.json"]: (g / f).unlink()
    shutil.rmtree(out / "eval/grpo")
    status, ck = stage_status(g)
    assert status == "partial" and ck.name == "checkpoint-1"
    plan = run_pipeline(str(recipe), out=str(out), dry_run=True)
    assert "resume from checkpoint-1" in plan and "--resume true" in plan
    run_pipeline(str(recipe), out=str(out), quiet=True)
    assert stage_status(g)[0] == "done" and (out / "eval/grpo/report.md").is_file()
    starts = (out / "plan.txt").read_text().split("# started ")[1:]      # plan.txt keeps every start, the first one too
    assert len(starts) >= 2 and "resume from" not in starts[0] and "resume from checkpoint-1" in starts[-1]


def fake_paper_data(cwd: Path) -> None:
    "The paper recipes' data layout (data/MMAD + the authors' three files), filled from a small judo-synth."
    from judo.synth import synth_dataset
    src = synth_dataset(n_per_category=12, categories="washer,pill_box")
    shutil.copytree(src, cwd / "data/MMAD")
    for f in ("realiad_samples_gt.jsonl", "domain_qa_goods.jsonl", "grpo_gt.jsonl"):
        shutil.copy(src / "train" / f, cwd / "data" / f)


@pytest.mark.parametrize("recipe", sorted(p.parent.name for p in RECIPES.glob("*/pipeline.yaml")))
def test_every_recipe_dry_runs(recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg, d = load_pipeline_config(recipe)
    if cfg.data != "synth": fake_paper_data(tmp_path)
    plan = run_pipeline(recipe, dry_run=True)
    for s in cfg.stages: assert f"] {s}:" in plan
    assert plan.count("$ ") == len(cfg.stages) and "steps" in plan
    if cfg.launcher == "accelerate": assert f"launch --config_file {RECIPES}/accelerate/zero3.yaml --num_processes 4" in plan
    assert not Path("runs").exists()          # a dry run writes no run folder


def test_paper_recipe_reports_missing_data(tmp_path, monkeypatch):
    "Before the data is downloaded a dry run prints the whole plan, then what is missing, and fails; a real run only fails."
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PipelineError) as e: run_pipeline("paper", dry_run=True)
    plan, _, missing = str(e.value).partition("cannot run yet, missing:")
    assert "[1] stage1" in plan and "[3] grpo" in plan and "judo-grpo --config" in plan and "--image_size 512" in plan
    assert re.search(r"data root .*data/MMAD does not exist", missing)
    # the token budget from the released Qwen2.5-VL image processor: 324 merged tokens per 512-px image, two per prompt
    assert "| stage1 | 512 | 2 x 324 | 648 " in plan and "max_length=2048 | 1400 |" in plan
    assert "| grpo | 512 | 2 x 324 |" in plan and "max_completion_length=256" in plan and "| eval | 512 | 2 x 324 |" in plan
    with pytest.raises(PipelineError, match=r"^cannot run:\n  data root .*data/MMAD does not exist"): run_pipeline("paper")


@pytest.mark.parametrize("change, message", [
    (dict(launcher="python", num_processes=2), "needs launcher: accelerate"),
    (dict(stages=["grpo", "stage1"]), "must be in the order"),
    (dict(eval=dict(shots=3)), "exactly one template"),
    (dict(stage_args={"grpo": dict(per_device_train_batch_size=3, num_generations=4)}), "num_generations"),
    (dict(stage_configs={"stage1": "/no/such/stage1.yaml"}), "stage1.yaml does not exist"),
    (dict(bogus_field=1), "unknown fields"),
    (dict(stage_args={"coldstart": dict(think="bogus")}), "think='bogus'"),
    (dict(stage_args={"coldstart": dict(option_copies=0)}), "option_copies=0"),
])
def test_impossible_settings_fail_clearly(change, message, tmp_path):
    cfg = yaml.safe_load((RECIPES / "tiny/pipeline.yaml").read_text())
    stages = change.get("stages", cfg["stages"])
    cfg.update(stage_configs={s: str(RECIPES / "tiny" / f"{s}.yaml") for s in stages if s in STAGES})
    cfg["stage_args"] = {k: v for k, v in cfg["stage_args"].items() if k in stages}
    for k, v in change.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict): cfg[k] = {**cfg[k], **v}
        else: cfg[k] = v
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(PipelineError, match=message): run_pipeline(str(tmp_path), dry_run=True)


def test_cli_wrong_recipe_and_data(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-c", "from judo.pipeline import pipeline_cli; pipeline_cli()"]
    r = subprocess.run(cli + ["--recipe", "nosuch", "--dry-run"], capture_output=True, text=True, env=env, cwd=REPO)
    assert r.returncode != 0 and "known recipes" in r.stderr and "tiny" in r.stderr
    r = subprocess.run(cli + ["--data", str(tmp_path / "missing"), "--dry-run"], capture_output=True, text=True, env=env, cwd=REPO)
    assert r.returncode != 0 and "does not exist" in r.stderr


def draw_line(root: Path) -> Path:
    "An MVTec-style folder: two classes, 3 normal training images, 3 good and 3 dented test images with masks."
    from test_data import draw
    for cat in ("widget", "gadget"):
        for i in range(3):
            draw(root / f"{cat}/train/good/{i:03d}.png"); draw(root / f"{cat}/test/good/{i:03d}.png")
            box = (8 + 4 * i, 8, 28 + 4 * i, 28)
            draw(root / f"{cat}/test/dent/{i:03d}.png", box=box); draw(root / f"{cat}/ground_truth/dent/{i:03d}_mask.png", box=box, mode="L")
    return root


def test_in_process_stage_error_is_shown_and_nothing_trains(tmp_path, capsys):
    "A GRPO budget that cannot hold an answer: the stage's one-line error reaches the user before any GRPO step."
    grpo = {**MICRO_STEPS["grpo"], "max_completion_length": 12}
    recipe = micro_recipe(tmp_path / "micro", stages=["grpo"], stage_args={"grpo": grpo},
                          stage_configs={"grpo": str(RECIPES / "tiny/grpo.yaml")})
    with pytest.raises(PipelineError, match="grpo failed"): run_pipeline(str(recipe), out=str(tmp_path / "run"), quiet=True)
    err = capsys.readouterr().err
    assert "judo-grpo: error: grpo: max_completion_length=12 cannot hold even the shortest well-formed answer" in err
    assert "set max_completion_length: " in err and not list((tmp_path / "run/grpo").glob("checkpoint-*"))


def test_own_folder_prepare_then_pipeline(tmp_path):
    "README's own-product-line path: `judo-pipeline prepare` on an MVTec-style folder, then the micro pipeline on it."
    line = draw_line(tmp_path / "line")
    dk = tmp_path / "dk.json"
    dk.write_text(json.dumps({"line": {c: {"good": "A flat tile with an even yellow face.", "dent": "A dark round pit in the face."}
                                      for c in ("widget", "gadget")}}))
    data = tmp_path / "line_mmad"
    r = subprocess.run([str(Path(sys.executable).parent / "judo-pipeline"), "prepare", str(line), str(data),
                        "--test_frac", "0.34", "--domain_knowledge", str(dk)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "8 train, 4 held out" in r.stdout
    for s in STAGES.values(): assert (data / s.data_file).is_file()
    grpo = {**MICRO_STEPS["grpo"], "max_completion_length": 96}      # 16x16 cells: the shortest answer needs 94 tokens
    recipe = micro_recipe(tmp_path / "micro", data=str(data), stage_args={**MICRO_STEPS, "grpo": grpo})
    md = run_pipeline(str(recipe), out=str(tmp_path / "run"), quiet=True)
    scores = json.loads((tmp_path / "run/report/scores.json").read_text())
    from judo.data import read_mmad
    held_out = read_mmad(data)
    assert len(held_out) == 4 and scores["n_questions"] == sum(len(s.questions) for s in held_out)
    assert list(scores["rows"]) == ["chance", UNTRAINED, *STAGES]
    assert str(data) in md
    # each stage trained on every row `prepare` wrote for it
    lines = lambda f: sum(1 for _ in open(data / f))
    for stage in ("stage1", "stage2", "grpo"):
        summary = json.loads((tmp_path / "run" / stage / f"judo_{stage}.json").read_text())
        assert summary["n_rows"] == lines(STAGES[stage].data_file) > 0, stage
    # without domain knowledge there is no Stage-2 file, and the pipeline's path check says what writes it
    r = subprocess.run([str(Path(sys.executable).parent / "judo-pipeline"), "prepare", str(line),
                        str(tmp_path / "nodk")], capture_output=True, text=True)
    assert r.returncode == 0 and "Stage 2 has no data" in r.stdout
    with pytest.raises(PipelineError, match="judo-pipeline prepare"):
        run_pipeline(str(micro_recipe(tmp_path / "micro2", data=str(tmp_path / "nodk"))), out=str(tmp_path / "run2"), dry_run=True)
