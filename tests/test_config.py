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


# --- bench configs ---

BENCH_OK = "name: b\nmethods:\n  - {name: lora, method: lora, r: 4}\n  - {name: full, method: full}\n"


@pytest.mark.parametrize("text, key", [
    ("name: b\n", "methods"),
    ("name: b\nmethods: {name: x}\n", "methods"),
    ("name: b\nmethods:\n  - {name: x, method: prompt}\n", "methods.x.method"),
    ("name: b\nmethods:\n  - {name: x, method: lora}\n  - {name: x, method: full}\n", "methods"),
    ("name: b\nmethods:\n  - {name: x, method: lora, rank: 4}\n", "methods.rank"),
    ("name: b\nprotocols: [ss, xs]\nmethods:\n  - {name: x, method: full}\n", "protocols"),
    ("name: b\nseeds: []\nmethods:\n  - {name: x, method: full}\n", "seeds"),
    ("name: b c\nmethods:\n  - {name: x, method: full}\n", "name"),
    ("name: b\nsynth: 3\nmethods:\n  - {name: x, method: full}\n", "synth"),
    ("name: b\nrecipes: {xs: a.yaml}\nmethods:\n  - {name: x, method: full}\n", "recipes"),
])
def test_bad_bench_config_names_file_and_key(tmp_path, text, key):
    from lora_iqa.config import load_bench

    path = tmp_path / "bench.yaml"
    path.write_text(text)
    with pytest.raises(LoraIqaError) as e:
        load_bench(path)
    assert str(path) in str(e.value) and key in str(e.value) and "\n" not in str(e.value)


def test_bench_method_recipe_overrides(tmp_path):
    from lora_iqa.config import load_bench

    path = tmp_path / "bench.yaml"
    path.write_text(BENCH_OK)
    bc = load_bench(path)
    assert [m.name for m in bc.methods] == ["lora", "full"] and bc.seeds == (0, 1, 2) and bc.protocols == ("ss",)
    cfg = load_config(None, bc.methods[0].recipe_overrides())
    assert (cfg.adapter.method, cfg.adapter.r, cfg.adapter.targets) == ("lora", 4, ("vision", "cross"))
    assert load_config(None, bc.methods[1].recipe_overrides()).adapter.method == "full"


def test_every_bench_config_is_valid():
    from pathlib import Path

    from lora_iqa.config import load_bench

    root = Path(__file__).parents[1]
    configs = sorted((root / "benchmarks" / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        bc = load_bench(path)
        for m in bc.methods:  # every row's keys build a valid recipe
            load_config(bc.recipes.get("ss"), [*bc.overrides, *m.recipe_overrides()])
        # the first line is the launch command; it writes the committed results under benchmarks/results/
        first = path.read_text().splitlines()[0]
        assert f"lora-iqa bench benchmarks/configs/{path.name} --out benchmarks/results/" in first
        assert (root / first.split("--out ", 1)[1].strip()).is_dir(), first
