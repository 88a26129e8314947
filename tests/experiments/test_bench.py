"""``lora-iqa bench``: a tiny matrix end to end (every cell in its own process), its outputs and their
checks, resuming, and the LLM rows against the loopback chat server."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lora_iqa.cli.main import main
from lora_iqa.metrics import thurstone_map
from tests.conftest import one_error_line

COST = {"trainable_params", "total_params", "trainable_pct", "size_bytes", "peak_rss_mb", "logits_images_per_s",
        "wall_seconds"}
TRAINED_COST = COST | {"train_seconds", "train_samples_per_s", "best_step"}
BUDGET = "[train.max_steps=6, train.batch_size=16, train.warmup_steps=1, train.eval_every=3, train.eval_batch_size=32, data.grid=1]"


def _config(tmp_path: Path, manifest: Path, base: Path, methods: str, **top) -> Path:
    lines = [f"name: {top.pop('name', 'tiny')}", f"base: {base}", f"manifest: {manifest}", f"overrides: {BUDGET}",
             *(f"{k}: {v}" for k, v in top.items()), "methods:", methods]
    path = tmp_path / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory, manifest, base_dir):
    """ss and ds, two seeds: LoRA and a regression head train per seed; zero-shot and classical once."""
    tmp = tmp_path_factory.mktemp("bench")
    methods = ("  - {name: zero_shot, method: zero_shot}\n"
               "  - {name: lora_r4, method: lora, r: 4, overrides: [train.lr=5e-3]}\n"
               "  - {name: head_regression, method: regression, overrides: [train.lr=1e-3]}\n"
               "  - {name: classical, method: classical}\n"
               "  - {name: mllm, method: mllm}")
    cfg = _config(tmp, manifest, base_dir, methods, protocols="[ss, ds]", seeds="[0, 1]", test_per_image=2)
    out = tmp / "out"
    assert main(["bench", str(cfg), "--out", str(out)]) == 0
    return cfg, out, json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_bench_matrix_and_schema(bench):
    _, out, res = bench
    cells = res["cells"]
    got = sorted((c["name"], c["protocol"], c["seed"]) for c in cells)
    want = sorted([(n, p, s) for n in ("lora_r4", "head_regression") for p in ("ss", "ds") for s in (0, 1)]
                  + [(n, p, 0) for n in ("zero_shot", "classical") for p in ("ss", "ds")])
    assert got == want
    assert res["name"] == "tiny" and res["skipped"] and "mllm" in res["skipped"][0]  # no server configured here
    for c in cells:
        assert {"method", "targets", "r", "protocol", "seed", "metrics", "cost", "items"} <= set(c)
        assert c["items"] and (TRAINED_COST if c["method"] in ("lora", "regression") else COST) <= set(c["cost"])
        assert c["cost"]["peak_rss_mb"] > 100  # its own process: torch alone is more than that
    lora = [c for c in cells if c["name"] == "lora_r4"]
    assert all(c["targets"] == ["vision", "cross"] and c["r"] == 4 for c in lora)
    assert all(0 < c["cost"]["trainable_pct"] < 100 and c["cost"]["size_bytes"] > 0 for c in lora)
    ss = next(c for c in lora if c["protocol"] == "ss")
    assert set(ss["captions"]) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider"}
    assert ss["cost"]["generate_images_per_s"] > 0 and [r["step"] for r in ss["curve"]] == [3, 6]
    assert 0 <= ss["scorings"]["caption_template"]["agreement"]["exact"] <= 1
    ds = next(c for c in lora if c["protocol"] == "ds")
    assert ds["metrics"]["pairwise"]["n"] > 0 and "preference" in ds["items"][0]["pred"]


@pytest.mark.slow
def test_every_srcc_recomputes_from_items_with_scipy(bench):
    _, _, res = bench
    checked = 0
    for c in res["cells"]:
        for dim, m in c["metrics"].items():
            if m.get("srcc") is None:
                continue
            if c["protocol"] == "ss":
                pairs = [(it["pred"][dim], it["true"][dim]) for it in c["items"] if it["pred"].get(dim) is not None]
                pred, true = zip(*pairs)
            else:  # the Thurstone scale refitted on the cell's judgements
                truth = {p: t for it in c["items"] for p, t in zip(it["images"], it["true"][dim])}
                names = sorted(truth)
                pos = {p: i for i, p in enumerate(names)}
                comps = [(pos[it["images"][0]], pos[it["images"][1]], 1.0 - it["pred"]["preference"]) for it in c["items"]]
                pred, true = thurstone_map(len(names), comps), [truth[p] for p in names]
            assert abs(stats.spearmanr(pred, true).statistic - m["srcc"]) <= 1e-12
            checked += 1
    assert checked >= 12 and res["srcc_check"]["checked"] >= checked


@pytest.mark.slow
def test_outputs_csv_md_plots_and_wandb(bench):
    _, out, res = bench
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == len(res["cells"]) and "overall_srcc" in rows[0] and "peak_rss_mb" in rows[0]
    md = (out / "results.md").read_text()
    assert "SYNTHETIC" not in md.splitlines()[0]  # a user manifest is not called synthetic
    lora_row = next(line for line in md.splitlines() if line.startswith("| lora_r4 | ss | 2 |"))
    mean = np.mean([c["metrics"]["overall"]["srcc"] for c in res["cells"] if c["name"] == "lora_r4" and c["protocol"] == "ss"])
    assert f"{mean:.3f} ± " in lora_row
    for name in ("quality_vs_params.png", "srcc_vs_step.png", "cost.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for c in res["cells"]:  # one offline W&B run per cell
        cid = f"{c['name']}__{c['protocol']}_nr__s{c['seed']}"
        assert list((out / "cells" / cid / "wandb").glob("offline-run-*")), cid


@pytest.mark.slow
def test_finished_cells_are_not_rerun(bench, capsys):
    cfg, out, _ = bench
    before = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/cell.json")}
    assert main(["bench", str(cfg), "--out", str(out)]) == 0
    assert "done already" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/cell.json")} == before
    text = cfg.read_text().replace("r: 4", "r: 2")  # the same cell id with another spec: refused, not mixed
    changed = cfg.with_name("changed.yaml")
    changed.write_text(text)
    assert main(["bench", str(changed), "--out", str(out)]) == 1
    one_error_line(capsys, "lora_r4__ss_nr__s0", "another spec")


def test_bad_recipe_key_fails_before_any_cell(tmp_path, manifest, base_dir, capsys):
    cfg = _config(tmp_path, manifest, base_dir, "  - {name: x, method: lora, overrides: [train.nope=1]}", tracking="none")
    assert main(["bench", str(cfg), "--out", str(tmp_path / "out")]) == 1
    one_error_line(capsys, "train.nope")
    assert not (tmp_path / "out" / "cells").exists()


@pytest.mark.slow
def test_llm_rows_with_a_configured_server(tmp_path, manifest, base_dir, llm):
    """mllm: the images go to the server; the LoRA row adds the openai scorer, which agrees with the
    template on the exact-oracle server."""
    server = llm()
    methods = "  - {name: lora, method: lora, overrides: [train.lr=5e-3]}"
    cfg = _config(tmp_path, manifest, base_dir, methods, seeds="[0]", tracking="none")
    out = tmp_path / "out"
    assert main(["bench", str(cfg), "--out", str(out)]) == 0
    (cell,) = json.loads((out / "results.json").read_text())["cells"]
    oa = cell["scorings"]["caption_openai"]
    assert oa["agreement"]["exact"] == 1.0 and oa["agreement"]["n"] == len(cell["items"]) and server.calls > 0

    server.answer = lambda body: {"noise": 3, "artifact": 2, "sharpness": 3, "contrast": 1, "overall": 2}
    cfg = _config(tmp_path, manifest, base_dir, "  - {name: mllm, method: mllm}", seeds="[0]", tracking="none",
                  name="mllm_only")
    assert main(["bench", str(cfg), "--out", str(tmp_path / "out2")]) == 0
    res = json.loads((tmp_path / "out2" / "results.json").read_text())
    (cell,) = res["cells"]
    assert not res["skipped"] and cell["items"][0]["pred"]["overall"] == 2


def test_a_cell_process_reports_its_own_peak_rss():
    """A forked child's ru_maxrss starts at its parent's RSS; the bench's VmHWM reading must not."""
    import subprocess
    import sys

    from lora_iqa.experiments.bench.cell import peak_rss_mb

    ballast = np.ones(2 * 1024**3 // 8)  # 2 GiB held by this (parent) process
    code = "import resource; from lora_iqa.experiments.bench.cell import peak_rss_mb; print(peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    own, inherited = map(float, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                               check=True).stdout.split())
    assert peak_rss_mb() > 2048 and inherited > 2048  # the pitfall is real here
    assert own < 1500, own
    del ballast


def test_clip_rows_on_a_synthetic_natural_set(tmp_path, base_dir, clip_dir):
    """synth_kind natural: the bench synthesizes the set; the CLIP rows run on clip_base; BLIP LoRA beside them."""
    cfg = _config(tmp_path, "null", base_dir, "  - {name: clip_zs, method: clip_zero_shot}\n"
                  "  - {name: clip_prompt, method: clip_prompt, overrides: [train.lr=1e-2, adapter.n_ctx=1, adapter.n_vis=0, "
                  "adapter.ctx_per_dim=false]}\n  - {name: lora_r4, method: lora, r: 4}",
                  name="nat", synth_kind="natural", synth="{n: 44, size: 48, seed: 0}", clip_base=clip_dir, seeds="[0]",
                  tracking="none", captions="false")
    text = cfg.read_text().replace("overrides: [", "overrides: ['data.dimensions=[sharpness,noise,artifact,contrast,"
                                   "color,overall]', data.domain=natural, ")
    cfg.write_text(text)
    out = tmp_path / "out"
    assert main(["bench", str(cfg), "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["synthetic"] and (out / "data" / "manifest.csv").exists()
    cells = {c["name"]: c for c in res["cells"]}
    assert set(cells) == {"clip_zs", "clip_prompt", "lora_r4"}
    assert cells["clip_zs"]["cost"]["trainable_params"] == 0 and cells["clip_prompt"]["cost"]["trainable_pct"] <= 0.1
    assert TRAINED_COST <= set(cells["clip_prompt"]["cost"]) and cells["clip_prompt"]["curve"]
    for c in cells.values():
        assert set(c["metrics"]) == {"sharpness", "noise", "artifact", "contrast", "color", "overall"}
        assert {"srcc", "plcc", "krcc"} <= set(c["metrics"]["overall"])
    assert res["srcc_check"]["checked"] == 18 and res["srcc_check"]["max_abs_diff"] <= 1e-12
    assert "clip_prompt" in (out / "results.md").read_text()
