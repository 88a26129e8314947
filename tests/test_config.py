import pytest

from lora_iqa.config import Config, config_from_dict, load_config
from lora_iqa.errors import LoraIqaError


def test_overrides_and_round_trip(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("output_dir: runs/x\nadapter:\n  r: 4\ntrain:\n  lr: 1.0e-3\n")
    cfg = load_config(recipe, ["train.max_steps=7", "adapter.targets=[vision]", "seed=3"])
    assert (cfg.adapter.r, cfg.train.lr, cfg.train.max_steps, cfg.seed) == (4, 1e-3, 7, 3)
    assert cfg.adapter.targets == ("vision",)
    assert config_from_dict(cfg.to_dict()) == cfg


def test_part_modes():
    cfg = load_config(None, ["adapter.method=full"])
    assert cfg.adapter.part_modes() == {"vision": "full", "cross": "full", "text": "full"}
    cfg = load_config(None, ["adapter.targets=[cross]", "adapter.text=lora"])
    assert cfg.adapter.part_modes() == {"vision": "frozen", "cross": "lora", "text": "lora"}
    with pytest.raises(LoraIqaError, match="adapter.text"):
        load_config(None, ["adapter.text=full"])  # LoRA adapters cannot carry fully trained weights


@pytest.mark.parametrize("overrides, key", [
    (["train.lr=-1"], "train.lr"),
    (["train.max_steps=abc"], "train.max_steps"),
    (["adapter.method=prefix"], "adapter.method"),
    (["adapter.targets=[vision, ffn]"], "adapter.targets"),
    (["nonsense=1"], "nonsense"),
    (["train.nonsense=1"], "train.nonsense"),
    (["protocol=zz"], "protocol"),
    (["reference=rr"], "reference"),
    (["data.k=9"], "data.k"),
    (["data.per_image=0"], "data.per_image"),
    (["data.same_content=1.5"], "data.same_content"),
    (["adapter.augment=true"], "adapter.augment"),
    (["train"], "train"),
])
def test_bad_values_name_the_key(overrides, key):
    with pytest.raises(LoraIqaError, match=key.replace(".", r"\.")) as e:
        load_config(None, overrides)
    assert "\n" not in str(e.value)


def test_bad_recipe_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(LoraIqaError, match="bad.yaml"):
        load_config(bad)
    with pytest.raises(LoraIqaError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")


def test_defaults_validate():
    assert Config().adapter.part_modes()["text"] == "frozen"


RECIPES = sorted((__import__("pathlib").Path(__file__).resolve().parents[1] / "recipes" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_recipe_is_valid_and_carries_its_launch_command(recipe):
    cfg = load_config(recipe)
    assert "recipes/train.py" in recipe.read_text().split("\n\n")[0] or "accelerate launch" in recipe.read_text()
    assert cfg.data.manifest and cfg.output_dir.startswith("runs/")


@pytest.mark.parametrize("overrides, key", [
    (["quantize=2bit"], "quantize"),
    (["quantize=4bit", "adapter.method=full"], "quantize"),
    (["scorer.strategy=fewshot"], "scorer.strategy"),
    (["scorer.concurrency=0"], "scorer.concurrency"),
])
def test_quantize_and_scorer_keys_are_validated(overrides, key):
    with pytest.raises(LoraIqaError, match=key):
        load_config(None, overrides)
