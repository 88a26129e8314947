"""``lora-iqa sweep SWEEP.yaml``: run a W&B sweep file's grid locally, in-process, with no W&B server.

The sweep file is the one ``wandb sweep`` takes (``recipes/sweeps/*.yaml``). Its ``command`` names the
base recipe (the item after ``recipes/train.py``) and fixed ``key=value`` overrides; its ``parameters``
are dotted recipe keys. Each grid point is ``load_config(recipe, command overrides + point)`` with
``output_dir={out}/{name}/{label}`` and ``tracking=none``, trained by ``lora_iqa.training.run.run``. Every point
is validated before anything trains; a point whose directory already holds ``lora_iqa.json`` (from the
same config) is not rerun. Writes ``comparison.md``, ``comparison.json`` and ``comparison.png`` in ``out``.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_iqa.artifact import META_FILE, read_meta
from lora_iqa.config import Config, load_config, read_yaml_mapping
from lora_iqa.errors import (
    LoraIqaError,
    atomic_write_text,
    check_writable_dir,
    save_fig,
)
from lora_iqa.metrics import fmt

METHODS = ("grid", "random", "bayes")
_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")
_METRIC = re.compile(r"^val/(?P<dim>\w+)_(?P<stat>srcc|plcc|krcc|rmse)$")


@dataclass
class Sweep:
    """A parsed sweep file: the grid's parameters and how the command launches the recipe."""

    path: Path
    name: str
    method: str
    metric: dict
    recipe: str
    before: list[str]  # command key=value items before the args macro
    after: list[str]  # ... and after it (W&B keeps the command's order; later items win)
    parameters: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def varying(self) -> list[str]:
        return [k for k, v in self.parameters.items() if len(v) > 1]


def read_sweep(path: str | Path) -> Sweep:
    """Parse and check a W&B sweep file (structure only; recipe keys are checked by ``validate``)."""
    path = Path(path)
    raw = read_yaml_mapping(path, "sweep file")

    method = raw.get("method")
    if method not in METHODS:
        raise LoraIqaError(f"{path}: key 'method' must be one of {', '.join(METHODS)}, got {method!r}")
    metric = raw.get("metric") or {}
    if not isinstance(metric, dict) or not metric.get("name") or metric.get("goal", "maximize") not in ("maximize", "minimize"):
        raise LoraIqaError(f"{path}: key 'metric' must be {{name: ..., goal: maximize|minimize}}, got {metric!r}")
    metric = {"name": str(metric["name"]), "goal": metric.get("goal", "maximize")}

    params = raw.get("parameters")
    if not isinstance(params, dict) or not params:
        raise LoraIqaError(f"{path}: key 'parameters' must map dotted recipe keys to {{values: [...]}} or {{value: x}}")
    parameters: dict[str, list[Any]] = {}
    for key, spec in params.items():
        key = str(key)
        where = f"{path}: parameter '{key}'"
        if not isinstance(spec, dict):
            raise LoraIqaError(f"{where} must be {{values: [...]}} or {{value: x}}, got {spec!r}")
        if "parameters" in spec:
            raise LoraIqaError(f"{where}: nested parameters are not supported; use a dotted key such as 'adapter.r'")
        if "values" in spec:
            if not isinstance(spec["values"], list) or not spec["values"]:
                raise LoraIqaError(f"{where}: 'values' must be a non-empty list, got {spec['values']!r}")
            parameters[key] = list(spec["values"])
        elif "value" in spec:
            parameters[key] = [spec["value"]]
        else:
            kind = spec.get("distribution", "min/max range")
            raise LoraIqaError(f"{where} uses a distribution ({kind}); the local grid runner needs 'values' or 'value'")
        if key == "output_dir":
            raise LoraIqaError(f"{where}: output_dir is set per run by `lora-iqa sweep` ({{out}}/{{name}}/{{point}})")

    recipe, before, after = _parse_command(path, raw.get("command"), str(raw.get("program") or "recipes/train.py"))
    name = _safe(str(raw.get("name") or path.stem))
    return Sweep(path, name, method, metric, recipe, before, after, parameters)


def _parse_command(path: Path, command: Any, program: str) -> tuple[str, list[str], list[str]]:
    """The recipe and the fixed overrides of a command such as
    ``[${env}, accelerate, launch, recipes/train.py, RECIPE.yaml, k=v, ${args_no_hyphens}]``."""
    if not isinstance(command, list) or not command:
        raise LoraIqaError(f"{path}: key 'command' is required: a list launching recipes/train.py RECIPE.yaml "
                           "with ${args_no_hyphens} (the recipe takes key=value, not --key=value)")
    items = [str(c) for c in command]
    if "${args}" in items and "${args_no_hyphens}" not in items:
        raise LoraIqaError(f"{path}: key 'command' passes ${{args}} (--key=value); recipes/train.py takes "
                           "key=value: use ${args_no_hyphens}")
    if "${args_no_hyphens}" not in items:
        raise LoraIqaError(f"{path}: key 'command' must pass the grid point with ${{args_no_hyphens}}")
    script = next((i for i, c in enumerate(items) if c in ("${program}", program) or c.endswith("train.py")), None)
    if script is None:
        raise LoraIqaError(f"{path}: key 'command' does not launch {program}")
    rest = items[script + 1:]
    if not rest or rest[0].startswith("$") or "=" in rest[0]:
        raise LoraIqaError(f"{path}: key 'command' needs the recipe YAML right after {items[script]}")
    macro = rest.index("${args_no_hyphens}")
    other = [c for c in rest[1:] if not c.startswith("${") and not _OVERRIDE.match(c)]
    if other:
        raise LoraIqaError(f"{path}: key 'command' has items after the recipe that are not key=value: {other}")
    before = [c for c in rest[1:macro] if _OVERRIDE.match(c)]
    after = [c for c in rest[macro + 1:] if _OVERRIDE.match(c)]
    return rest[0], before, after


def grid(parameters: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the listed values, in file order (the first key varies slowest)."""
    keys = list(parameters)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(parameters[k] for k in keys))]


def point_args(point: dict[str, Any]) -> list[str]:
    """The grid point as W&B's ``${args_no_hyphens}`` renders it: ``f"{key}={value}"``."""
    return [f"{k}={v}" for k, v in point.items()]


def label(sweep: Sweep, point: dict[str, Any]) -> str:
    """A run's folder name from the values that vary, e.g. ``r=4`` (the full key when leaves collide)."""
    keys = sweep.varying
    leaves = [k.rsplit(".", 1)[-1] for k in keys]
    parts = [f"{leaf if leaves.count(leaf) == 1 else k}={_value_str(point[k])}" for k, leaf in zip(keys, leaves)]
    return _safe(",".join(parts)) or "run"


def point_config(sweep: Sweep, point: dict[str, Any], out: Path) -> Config:
    """The validated Config of one grid point. Errors name the sweep file and the key at fault."""
    forced = [f"output_dir={out / sweep.name / label(sweep, point)}", "tracking=none", "overwrite=true"]  # its own folder
    try:
        return load_config(sweep.recipe, [*sweep.before, *point_args(point), *sweep.after, *forced])
    except LoraIqaError as e:
        msg = str(e)
        if msg.startswith(f"{sweep.recipe}: "):  # the key is the sweep's, not the recipe's
            msg = msg[len(sweep.recipe) + 2:]
        at = " ".join(point_args({k: point[k] for k in sweep.varying})) or "the fixed values"
        raise LoraIqaError(f"{sweep.path}: {msg} (recipe {sweep.recipe}, grid point {at})") from None


def validate(sweep: Sweep, out: Path) -> list[tuple[dict[str, Any], Config]]:
    """Build every grid point's Config before anything trains (unknown keys and bad values fail here)."""
    if not Path(sweep.recipe).is_file():
        raise LoraIqaError(f"{sweep.path}: the command's recipe {sweep.recipe} was not found "
                           f"(paths are relative to the current directory: run from the repository root)")
    points = [(p, point_config(sweep, p, out)) for p in grid(sweep.parameters)]
    for manifest in dict.fromkeys(str(c.data.manifest) for _, c in points):
        if not Path(manifest).is_file():
            raise LoraIqaError(f"{sweep.path}: data.manifest {manifest} not found (make it first: the sweep "
                               "file's header gives the `lora-iqa synth` command)")
    return points


def run_sweep(path: str | Path, out: str | Path, progress: bool = True) -> dict:
    """Run (or resume) every grid point of the sweep file; write and return the comparison."""
    from lora_iqa.bases.embedded import resolve_base
    from lora_iqa.training.run import run

    sweep, out = read_sweep(path), Path(out)
    points = validate(sweep, out)
    check_writable_dir(out)  # after the sweep is valid, before anything trains
    if sweep.method != "grid":
        print(f"note: method '{sweep.method}' needs a W&B server; running the grid of the listed values instead")
    bases: dict[str, str] = {}
    runs = []
    for i, (point, cfg) in enumerate(points, 1):
        name = label(sweep, point)
        run_dir = Path(cfg.output_dir)
        record_path = out / sweep.name / f"{name}.run.json"
        shown = " ".join(point_args({k: point[k] for k in sweep.varying})) or "(fixed values)"
        cfg.base = bases.setdefault(cfg.base, resolve_base(cfg.base, progress=progress))
        if (run_dir / META_FILE).exists():
            meta = read_meta(run_dir)
            _check_same(run_dir, meta.config, cfg.to_dict())
            record = json.loads(record_path.read_text()) if record_path.exists() else {}
            print(f"[sweep {sweep.name}] run {i}/{len(points)}: {shown}: done already ({run_dir}), not rerun", flush=True)
            runs.append(_row(name, point, run_dir, meta.step, meta.metrics, record, reused=True))
            continue
        print(f"[sweep {sweep.name}] run {i}/{len(points)}: {shown} -> {run_dir}", flush=True)
        res = run(cfg, progress=progress)
        record = {"trainable_params": res.trainable_params, "total_params": res.total_params,
                  "train_seconds": round(res.train_seconds, 2), "samples_per_s": round(res.samples_per_s, 2)}
        atomic_write_text(record_path, json.dumps(record, indent=1))
        runs.append(_row(name, point, Path(res.dir), res.best_step, res.metrics, record, reused=False))

    result = _comparison(sweep, runs)
    table = comparison_table(result)
    atomic_write_text(out / "comparison.json", json.dumps(result, indent=1))
    atomic_write_text(out / "comparison.md", _markdown(result, table))
    _plot(result, out / "comparison.png")
    print(table)
    best = result["best"]
    if best is not None:
        print(f"best by {sweep.metric['name']} ({sweep.metric['goal']}): {best}")
    print(f"wrote {out / 'comparison.md'}, comparison.json, comparison.png")
    return result


def _check_same(run_dir: Path, saved: dict, wanted: dict) -> None:
    """A finished run is reused only if it was trained with this grid point's config."""
    saved, wanted = _flat(saved), _flat(wanted)  # keys one side lacks (another lora_iqa version) are not compared
    diff = [k for k in sorted(set(saved) & set(wanted)) if k != "output_dir" and saved[k] != wanted[k]]
    if diff:
        raise LoraIqaError(f"{run_dir}: holds a run trained with another config ({', '.join(diff[:4])} differ); "
                           "use another --out or remove that folder")


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat.update(_flat(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def _row(name: str, point: dict, run_dir: Path, step: int, metrics: dict, record: dict, reused: bool) -> dict:
    return {"label": name, "params": point, "dir": str(run_dir), "best_step": step, "metrics": metrics,
            "trainable_params": record.get("trainable_params"), "total_params": record.get("total_params"),
            "train_seconds": record.get("train_seconds"), "samples_per_s": record.get("samples_per_s"),
            "reused": reused}


def metric_value(metric: dict, run: dict) -> float | None:
    """The sweep metric (``val/{dim}_{srcc|plcc|krcc|rmse}``) of a run, from its saved validation metrics."""
    m = _METRIC.match(metric["name"])
    if not m:
        return None
    return run["metrics"].get(m["dim"], {}).get(m["stat"])


def _comparison(sweep: Sweep, runs: list[dict]) -> dict:
    scored = [(metric_value(sweep.metric, r), r["label"]) for r in runs]
    scored = [(v, n) for v, n in scored if v is not None]
    pick = max if sweep.metric["goal"] == "maximize" else min
    return {"sweep": str(sweep.path), "name": sweep.name, "method": sweep.method, "metric": sweep.metric,
            "recipe": sweep.recipe, "fixed": [*sweep.before, *sweep.after], "parameters": sweep.parameters,
            "varying": sweep.varying, "runs": runs, "best": pick(scored)[1] if scored else None,
            "data": _data_of(runs)}


def _data_of(runs: list[dict]) -> dict:
    """The manifests the runs trained on, and whether they are SYNTHETIC (a ``synthetic`` column)."""
    manifests = set()
    for r in runs:
        if (Path(r["dir"]) / META_FILE).is_file():
            manifests.add(read_meta(r["dir"]).data_manifest)
    manifests.discard(None)
    synthetic = False
    for m in manifests:
        try:
            synthetic |= "synthetic" in Path(m).open().readline().strip().split(",")
        except OSError:
            pass
    return {"manifests": sorted(manifests), "synthetic": synthetic}


def comparison_table(result: dict) -> str:
    """Markdown table: parameters, best step, val SRCC per dimension, trainable params, train s, samples/s."""
    keys = result["varying"] or list(result["parameters"])
    dims = list(result["runs"][0]["metrics"]) if result["runs"] else []
    head = ["run", *keys, "best step", *[f"{d} SRCC" for d in dims], "trainable params", "train s", "samples/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["runs"]:
        cells = [r["label"] + (" **(best)**" if r["label"] == result["best"] else ""),
                 *[_value_str(r["params"][k]) for k in keys], str(r["best_step"]),
                 *[fmt(r["metrics"].get(d, {}).get("srcc")) for d in dims],
                 "—" if r["trainable_params"] is None else f"{r['trainable_params']:,}",
                 "—" if r["train_seconds"] is None else f"{r['train_seconds']:.1f}",
                 "—" if r["samples_per_s"] is None else f"{r['samples_per_s']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markdown(result: dict, table: str) -> str:
    fixed = {k: v[0] for k, v in result["parameters"].items() if k not in result["varying"]}
    return (f"# Sweep `{result['name']}` ({result['sweep']}, run locally by `lora-iqa sweep`)\n\n"
            f"- recipe: `{result['recipe']}`; command overrides: `{' '.join(result['fixed']) or '—'}`\n"
            f"- fixed parameters: `{' '.join(point_args(fixed)) or '—'}`\n"
            f"- data: {', '.join(f'`{m}`' for m in result.get('data', {}).get('manifests', [])) or '—'}"
            + (" (**SYNTHETIC** images and labels, made by `lora-iqa synth`)" if result.get("data", {}).get("synthetic")
               else "") + "\n"
            f"- metric: `{result['metric']['name']}` ({result['metric']['goal']}), read from each run's saved "
            f"validation metrics at its best step; best run: **{result['best'] or '—'}**\n\n"
            f"Validation SRCC per dimension at the selected (best) step; train s and samples/s are the "
            f"training loop's own figures (validation included).\n\n{table}\n")


def _plot(result: dict, path: Path) -> None:
    """The sweep metric per grid point: a line against the swept value when one numeric key varies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, metric = result["runs"], result["metric"]
    values = [metric_value(metric, r) for r in runs]
    ys = [float("nan") if v is None else v for v in values]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(runs) + 2), 3.6))
    varying = result["varying"]
    xs = [r["params"][varying[0]] for r in runs] if len(varying) == 1 else []
    if xs and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs):
        ax.plot(xs, ys, "o-")
        if min(xs) > 0 and max(xs) / min(xs) >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [_value_str(x) for x in xs])
        ax.set_xlabel(varying[0])
    else:
        ax.bar(range(len(runs)), ys)
        ax.set_xticks(range(len(runs)), [r["label"] for r in runs], rotation=30, ha="right", fontsize=8)
    for x, y in zip(ax.get_lines()[0].get_xdata() if ax.get_lines() else range(len(runs)), ys):
        if y == y:
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=8)
    ax.set_ylabel(metric["name"])
    ax.set_title(f"sweep {result['name']}: {metric['name']} per grid point", fontsize=10)
    fig.tight_layout()
    save_fig(fig, path)


def _value_str(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return str(v)


def _safe(s: str) -> str:
    return re.sub(r"[^\w.,=+-]+", "_", s).strip("._")
