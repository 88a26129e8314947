"""W&B sweep files, the local grid runner (``lora-iqa sweep``) and the Accelerate launch configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lora_iqa.cli.main import main
from lora_iqa.cli.parser import _parser
from lora_iqa.config import Config
from lora_iqa.errors import LoraIqaError
from lora_iqa.experiments import sweep as sw
from lora_iqa.template import CT_DIMENSIONS
from lora_iqa.training.outdir import LOCK

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "recipes" / "sweeps").glob("*.yaml"))
ACCELERATE = sorted((ROOT / "recipes" / "accelerate").glob("*.yaml"))


def _get(cfg: Config, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


# --- (a) every parameter of every sweep file is a recipe key and every value builds a valid Config ---

def test_there_are_sweep_files():
    assert {p.name for p in SWEEPS} >= {"lora_rank.yaml", "lora_lr.yaml"}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_sweep_parameter_is_a_recipe_key_and_every_value_builds_a_config(path, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # the command's paths are relative to the repository root, as under `wandb agent`
    s = sw.read_sweep(path.relative_to(ROOT))
    points = sw.grid(s.parameters)
    assert len(points) == len({sw.label(s, p) for p in points}) >= 2  # one folder per point
    for point in points:
        cfg = sw.point_config(s, point, tmp_path)  # raises LoraIqaError naming the key on any bad key/value
        assert isinstance(cfg, Config) and cfg.tracking == "none"
        assert Path(cfg.output_dir) == tmp_path / s.name / sw.label(s, point)
        for key, value in point.items():  # the value really lands on that key (not silently ignored)
            got = _get(cfg, key)
            assert got == (tuple(value) if isinstance(value, list) else value), (path.name, key, got, value)


# --- (b) the command launches recipes/train.py through accelerate and passes the point as key=value ---

@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_sweep_command_launches_the_recipe_through_accelerate(path):
    raw = yaml.safe_load(path.read_text())
    cmd = [str(c) for c in raw["command"]]
    # The brief allows ${args} too, but recipes/train.py takes key=value: ${args} (--key=value) would be
    # rejected by its argument parser, so the files must use ${args_no_hyphens}.
    assert "${args_no_hyphens}" in cmd or "${args}" in cmd
    assert "${args_no_hyphens}" in cmd
    assert cmd[cmd.index("accelerate") + 1] == "launch"
    assert cmd.index("accelerate") < cmd.index("recipes/train.py") < cmd.index("${args_no_hyphens}")
    assert raw["program"] == "recipes/train.py" and (ROOT / raw["program"]).is_file()
    recipe = cmd[cmd.index("recipes/train.py") + 1]
    assert (ROOT / recipe).is_file()
    assert raw["method"] == "grid"
    assert raw["metric"]["goal"] == "maximize"
    dim = raw["metric"]["name"].removeprefix("val/").removesuffix("_srcc")
    assert raw["metric"]["name"] == f"val/{dim}_srcc" and dim in CT_DIMENSIONS  # what the loop logs
    # What the W&B agent would run is a valid `lora-iqa train` command line.
    s = sw.read_sweep(path)
    argv = [recipe, *s.before, *sw.point_args(sw.grid(s.parameters)[0]), *s.after]
    args = _parser().parse_args(["train", *argv])
    assert args.recipe == recipe and all("=" in o for o in args.overrides)
    # The header documents the data to synthesize first, then the local sweep and the W&B route.
    header = path.read_text().split("\nprogram:")[0]
    assert "lora-iqa synth ct --out" in header and f"lora-iqa sweep recipes/sweeps/{path.name}" in header
    assert f"wandb sweep recipes/sweeps/{path.name}" in header
    manifest = s.parameters["data.manifest"][0]
    assert f"--out {Path(manifest).parent} " in header


def test_point_args_match_the_wandb_agent():
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    point = {"adapter.r": 16, "train.lr": 5.0e-4, "train.augment": False, "adapter.targets": ["vision", "cross"]}
    wandb_args = create_sweep_command_args({"args": {k: {"value": v} for k, v in point.items()}})
    assert sw.point_args(point) == wandb_args["args_no_hyphens"]
    # ... and the rendered values parse back to the right types
    from lora_iqa.config import load_config

    cfg = load_config(None, sw.point_args(point))
    assert (cfg.adapter.r, cfg.train.lr, cfg.train.augment, cfg.adapter.targets) == (16, 5e-4, False, ("vision", "cross"))


# --- (c) grid expansion and the sweep file's structure ---

GRIDS = [
    ({"a.x": [1, 2, 3]}, [{"a.x": 1}, {"a.x": 2}, {"a.x": 3}]),
    ({"a.x": [1, 2], "b.y": ["u"]}, [{"a.x": 1, "b.y": "u"}, {"a.x": 2, "b.y": "u"}]),
    ({"a.x": [1, 2], "b.y": [3, 4]}, [{"a.x": 1, "b.y": 3}, {"a.x": 1, "b.y": 4}, {"a.x": 2, "b.y": 3},
                                      {"a.x": 2, "b.y": 4}]),
    ({"a.x": [5]}, [{"a.x": 5}]),
]


@pytest.mark.parametrize("params, expected", GRIDS)
def test_grid_expansion(params, expected):
    assert sw.grid(params) == expected


def _sweep_file(tmp_path: Path, parameters: dict, command: list | None = None, **top) -> Path:
    doc = {"program": "recipes/train.py", "method": "grid", "metric": {"name": "val/overall_srcc", "goal": "maximize"},
           "parameters": parameters,
           "command": command if command is not None else
           ["${env}", "accelerate", "launch", "recipes/train.py", "recipes/configs/ct_ss_lora.yaml", "tracking=wandb",
            "${args_no_hyphens}"], **top}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize("params, labels", [
    ({"adapter.r": {"values": [4, 8]}, "train.max_steps": {"value": 60}}, ["r=4", "r=8"]),
    ({"adapter.r": {"values": [4]}, "train.lr": {"values": [1e-3, 2e-3]}}, ["lr=0.001", "lr=0.002"]),
    ({"adapter.r": {"values": [4, 8]}, "train.lr": {"values": [1e-3, 2e-3]}},
     ["r=4,lr=0.001", "r=4,lr=0.002", "r=8,lr=0.001", "r=8,lr=0.002"]),
    ({"adapter.targets": {"values": [["vision"], ["vision", "cross"]]}}, ["targets=vision", "targets=vision,cross"]),
    ({"train.seed": {"values": [0, 1]}, "seed": {"values": [0, 1]}},  # same leaf: the full key names the folder
     ["train.seed=0,seed=0", "train.seed=0,seed=1", "train.seed=1,seed=0", "train.seed=1,seed=1"]),
    ({"train.max_steps": {"value": 60}}, ["run"]),
])
def test_read_sweep_and_labels(tmp_path, params, labels):
    s = sw.read_sweep(_sweep_file(tmp_path, params, name="my sweep/1"))
    assert s.name == "my_sweep_1" and s.recipe == "recipes/configs/ct_ss_lora.yaml"
    assert s.before == ["tracking=wandb"] and s.after == []
    assert [sw.label(s, p) for p in sw.grid(s.parameters)] == labels


def test_command_order_is_kept(tmp_path):
    s = sw.read_sweep(_sweep_file(tmp_path, {"adapter.r": {"values": [4, 8]}}, command=[
        "${env}", "accelerate", "launch", "--config_file", "recipes/accelerate/cpu_ddp_2proc.yaml", "${program}",
        "recipes/configs/ct_ss_full.yaml", "seed=1", "${args_no_hyphens}", "train.lr=1e-4"]))
    assert (s.recipe, s.before, s.after) == ("recipes/configs/ct_ss_full.yaml", ["seed=1"], ["train.lr=1e-4"])


@pytest.mark.parametrize("change, words", [
    ({"method": "hyperband"}, ["'method'", "grid"]),
    ({"metric": {"goal": "maximize"}}, ["'metric'"]),
    ({"parameters": {"train.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}}},
     ["'train.lr'", "distribution", "values"]),
    ({"parameters": {"adapter": {"parameters": {"r": {"values": [4]}}}}}, ["'adapter'", "dotted key"]),
    ({"parameters": {"output_dir": {"values": ["a", "b"]}}}, ["output_dir"]),
    ({"command": []}, ["'command'", "${args_no_hyphens}"]),
    ({"command": ["${env}", "${interpreter}", "${program}", "recipes/configs/ct_ss_lora.yaml", "${args}"]},
     ["${args}", "${args_no_hyphens}"]),
    ({"command": ["accelerate", "launch", "recipes/train.py", "${args_no_hyphens}"]}, ["recipe YAML"]),
])
def test_bad_sweep_files_are_refused_in_one_line(tmp_path, change, words):
    base = {"parameters": {"adapter.r": {"values": [4, 8]}}}
    base.update(change)
    path = _sweep_file(tmp_path, base.pop("parameters"), **base)
    with pytest.raises(LoraIqaError) as e:
        sw.read_sweep(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    for w in words:
        assert w in msg, (w, msg)


# --- (d) a tiny end-to-end local sweep; a second invocation reruns nothing ---

@pytest.mark.slow
def test_local_sweep_end_to_end_and_resume(tmp_path, monkeypatch, capsys, manifest, base_dir):
    import lora_iqa.training.run

    recipe = ROOT / "recipes" / "configs" / "ct_ss_lora.yaml"
    fixed = [f"base={base_dir}", f"data.manifest={manifest}", "train.max_steps=4", "train.batch_size=8",
             "train.eval_every=2", "train.save_every=0", "train.warmup_steps=1", "train.lr=1e-2",
             "train.eval_batch_size=32"]
    path = _sweep_file(tmp_path, {"adapter.r": {"values": [2, 4]}, "adapter.alpha": {"value": 8}},
                       command=["${env}", "accelerate", "launch", "recipes/train.py", str(recipe), "tracking=wandb",
                                *fixed, "${args_no_hyphens}"], name="tiny")
    out = tmp_path / "out"
    calls = []
    real_run = lora_iqa.training.run.run

    def counting_run(cfg, *a, **kw):
        calls.append(cfg)
        kw["progress"] = False
        return real_run(cfg, *a, **kw)

    monkeypatch.setattr(lora_iqa.training.run, "run", counting_run)
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "run 1/2: adapter.r=2" in printed and "run 2/2: adapter.r=4" in printed
    assert [c.adapter.r for c in calls] == [2, 4] and all(c.tracking == "none" for c in calls)
    assert all(c.adapter.alpha == 8 and c.train.max_steps == 4 for c in calls)

    result = json.loads((out / "comparison.json").read_text())
    assert [r["label"] for r in result["runs"]] == ["r=2", "r=4"]
    assert result["metric"] == {"name": "val/overall_srcc", "goal": "maximize"} and result["best"] in ("r=2", "r=4")
    for r in result["runs"]:
        run_dir = Path(r["dir"])
        assert run_dir == out / "tiny" / r["label"] and (run_dir / "lora_iqa.json").is_file()
        assert (run_dir / "adapter_model.safetensors").is_file()
        assert 1 <= r["best_step"] <= 4 and not r["reused"]
        assert set(r["metrics"]) == set(CT_DIMENSIONS)
        assert all(isinstance(m["srcc"], float) or m["srcc"] is None for m in r["metrics"].values())
        assert r["trainable_params"] > 0 and r["train_seconds"] > 0 and r["samples_per_s"] > 0
    r2, r4 = result["runs"]
    assert r4["trainable_params"] == 2 * r2["trainable_params"]  # LoRA parameters grow linearly with r

    md = (out / "comparison.md").read_text()
    table = sw.comparison_table(result)
    assert table in md and table in printed  # the table is printed, too
    head = table.splitlines()[0]
    for col in ("adapter.r", "best step", "overall SRCC", "noise SRCC", "trainable params", "train s", "samples/s"):
        assert f"| {col} |" in head
    rows = table.splitlines()[2:]
    assert len(rows) == 2 and rows[0].startswith("| r=2") and rows[1].startswith("| r=4")
    assert f"{r2['trainable_params']:,}" in rows[0] and f"{r4['trainable_params']:,}" in rows[1]
    png = (out / "comparison.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert not [p for p in out.rglob("*.tmp")]  # nothing half-written left behind

    # Second invocation: nothing is retrained, the comparison is the same.
    calls.clear()
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert calls == [] and printed.count("not rerun") == 2
    again = json.loads((out / "comparison.json").read_text())
    assert [r["reused"] for r in again["runs"]] == [True, True]
    for a, b in zip(again["runs"], result["runs"]):
        assert (a["metrics"], a["best_step"], a["trainable_params"]) == (b["metrics"], b["best_step"], b["trainable_params"])

    # A point whose adapter dir lacks lora_iqa.json (a crash: its lock file is left) is the only one rerun.
    (out / "tiny" / "r=4" / "lora_iqa.json").unlink()
    (out / "tiny" / "r=4" / LOCK).write_text("999999999")
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    assert [c.adapter.r for c in calls] == [4]
    capsys.readouterr()

    # A finished folder trained with another config is not silently reused.
    path.write_text(path.read_text().replace("train.max_steps=4", "train.max_steps=5"))
    calls.clear()
    assert main(["sweep", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out / "tiny" / "r=2") in err[0] and "train.max_steps" in err[0]
    assert calls == []


# --- (e) an unknown key (or a bad value) fails in one line naming it, before any training ---

@pytest.mark.parametrize("params, words", [
    ({"adapter.r": {"values": [4, 8]}, "adapter.rank": {"values": [4, 8]}}, ["'adapter.rank'"]),
    ({"trian.lr": {"values": [1e-3]}}, ["'trian'"]),
    ({"adapter.r": {"values": [4, 0]}}, ["'adapter.r'", "must be >= 1", "adapter.r=0"]),  # only the 2nd point is bad
    ({"train.max_steps": {"values": [10, "many"]}}, ["'train.max_steps'"]),
])
def test_unknown_key_or_bad_value_fails_before_training(tmp_path, monkeypatch, capsys, params, words):
    import lora_iqa.training.run

    def no_training(*a, **kw):
        raise AssertionError("training started before the sweep was validated")

    monkeypatch.setattr(lora_iqa.training.run, "run", no_training)
    monkeypatch.chdir(ROOT)
    path = _sweep_file(tmp_path, params)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lora-iqa: error: ") and "Traceback" not in captured.err
    assert str(path) in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not out.exists()


def test_missing_data_or_recipe_fails_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    path = _sweep_file(tmp_path, {"adapter.r": {"values": [4, 8]},
                                  "data.manifest": {"value": str(tmp_path / "nope" / "manifest.csv")}})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "nope" / "manifest.csv") in err and "lora-iqa synth" in err and len(err.splitlines()) == 1
    path = _sweep_file(tmp_path, {"adapter.r": {"values": [4, 8]}}, command=[
        "accelerate", "launch", "recipes/train.py", "recipes/configs/missing.yaml", "${args_no_hyphens}"])
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 1
    assert "recipes/configs/missing.yaml" in capsys.readouterr().err


def test_sweep_has_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--help"])
    assert e.value.code == 0 and "usage: lora-iqa sweep" in capsys.readouterr().out


# --- (f) the Accelerate configs load with accelerate's own config classes and pass its launch checks ---

def test_the_accelerate_configs_are_all_there():
    assert {p.stem for p in ACCELERATE} >= {"single_gpu", "multi_gpu", "multi_node", "fsdp", "deepspeed_zero2",
                                            "deepspeed_zero3", "cpu_ddp_2proc"}


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_config_loads_and_passes_launch_validation(path, monkeypatch):
    from accelerate.commands.config.config_args import (
        ClusterConfig,
        load_config_from_file,
    )
    from accelerate.commands.launch import (
        _validate_launch_command,
        launch_command_parser,
    )

    cfg = load_config_from_file(str(path))
    assert isinstance(cfg, ClusterConfig)
    assert ClusterConfig.from_yaml_file(str(path)).distributed_type == cfg.distributed_type
    # Nested keys are copied onto launch arguments (fsdp_config.x -> --fsdp_x): each must be one.
    parser = launch_command_parser()
    dests = {a.dest for a in parser._actions}
    for section in ("fsdp_config", "deepspeed_config"):
        for key in getattr(cfg, section) or {}:
            flag = f"fsdp_{key}" if section == "fsdp_config" and not key.startswith("fsdp") else key
            assert flag in dests, (path.name, section, key)
    # accelerate's own launch-time checks (everything short of starting processes).
    monkeypatch.chdir(ROOT)
    args = parser.parse_args(["--config_file", str(path), "recipes/train.py", "recipes/configs/ct_ss_lora.yaml"])
    _validate_launch_command(args)
    # The header comment is the exact launch command of this file.
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    launch = [line for line in header if "accelerate launch --config_file" in line]
    assert launch and all(f"--config_file recipes/accelerate/{path.name} " in line for line in launch)
    assert all("recipes/train.py recipes/configs/ct_ss_" in line for line in launch)


def _load(name: str):
    from accelerate.commands.config.config_args import load_config_from_file

    return load_config_from_file(str(ROOT / "recipes" / "accelerate" / name))


def test_accelerate_config_specifics():
    from accelerate.utils import DistributedType

    single = _load("single_gpu.yaml")
    assert single.distributed_type == DistributedType.NO and single.num_processes == 1
    ddp = _load("multi_gpu.yaml")
    assert ddp.distributed_type == DistributedType.MULTI_GPU and ddp.num_processes > 1 and ddp.num_machines == 1
    node = _load("multi_node.yaml")
    assert node.distributed_type == DistributedType.MULTI_GPU and node.num_machines == 2
    assert node.main_process_ip and node.main_process_port
    text = (ROOT / "recipes" / "accelerate" / "multi_node.yaml").read_text()
    assert "PLACEHOLDER" in text and "--machine_rank 1" in text and "main_process_ip" in text.split("compute_env")[0]
    z2, z3 = _load("deepspeed_zero2.yaml"), _load("deepspeed_zero3.yaml")
    assert z2.distributed_type == z3.distributed_type == DistributedType.DEEPSPEED
    assert z2.deepspeed_config["zero_stage"] == 2 and z3.deepspeed_config["zero_stage"] == 3
    assert z3.deepspeed_config["zero3_save_16bit_model"] is True  # ZeRO-3 saves gather real weights
    cpu = _load("cpu_ddp_2proc.yaml")
    assert cpu.distributed_type == DistributedType.MULTI_GPU and cpu.num_processes == 2


def test_fsdp_wraps_blip_layers():
    from accelerate.utils import DistributedType
    from conftest import tiny_base

    fsdp = _load("fsdp.yaml")
    assert fsdp.distributed_type == DistributedType.FSDP
    fc = fsdp.fsdp_config
    assert fc["fsdp_sharding_strategy"] == "FULL_SHARD" and fc["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    classes = fc["fsdp_transformer_layer_cls_to_wrap"].split(",")
    assert classes == ["BlipEncoderLayer", "BlipTextLayer"]
    model, _ = tiny_base()
    present = {type(m).__name__ for m in model.modules()}
    assert set(classes) <= present  # the wrap policy finds real layers of the captioner (ViT and BERT)
    vision = sum(type(m).__name__ == "BlipEncoderLayer" for m in model.vision_model.modules())
    text = sum(type(m).__name__ == "BlipTextLayer" for m in model.text_decoder.modules())
    assert vision == model.config.vision_config.num_hidden_layers and text == model.config.text_config.num_hidden_layers
