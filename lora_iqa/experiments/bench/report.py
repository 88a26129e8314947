"""A bench's results: SRCC recomputed from the items, mean +- std over seeds, results.csv/.md and PNG plots."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats

from lora_iqa.errors import LoraIqaError, atomic_write_text, save_fig
from lora_iqa.protocols import Protocol, get_protocol


def flat_row(cell: dict) -> dict:
    """One CSV row: the cell's identity, every metric and every cost, flattened."""
    row = {k: cell[k] if not isinstance(cell[k], list) else "+".join(cell[k])
           for k in ("name", "method", "targets", "r", "protocol", "reference", "seed") if cell[k] is not None}
    for dim, m in cell["metrics"].items():
        row.update({f"{dim}_{k}": v for k, v in m.items() if isinstance(v, (int, float)) or v is None})
    for name, s in cell.get("scorings", {}).items():
        overall = s["metrics"].get("overall", {})
        row[f"{name}_overall_srcc"] = overall.get("srcc")
        # the fraction of items whose answer could be read from the caption: an SRCC over few is no figure
        row[f"{name}_read"] = 1 - overall.get("missing", 0) / max(len(s["items"]), 1)
        row.update({f"{name}_agreement_{k}": v for k, v in s["agreement"].items() if k != "n"})
    row.update({f"caption_{k}": v for k, v in cell.get("captions", {}).items()})
    row.update(cell["cost"])
    return row


def check_srcc(cells: Sequence[dict]) -> dict:
    """Recompute every SRCC in the cells from their items with ``scipy.stats.spearmanr``: ss per
    dimension from (pred, true); ds / ms overall from the Thurstone scale refitted on the judgements.
    Raises if any differs by more than 1e-12; returns how many were checked and the largest difference."""
    n, worst = 0, 0.0
    for cell in cells:
        blocks = [(cell["metrics"], cell["items"])] + [(s["metrics"], s["items"]) for s in cell.get("scorings", {}).values()]
        for metrics, items in blocks:
            for dim, m in metrics.items():
                if "srcc" not in m or m["srcc"] is None:
                    continue
                pred, true = _srcc_inputs(items, dim, get_protocol(cell["protocol"], cell["reference"]))
                diff = abs(float(stats.spearmanr(pred, true).statistic) - m["srcc"])
                n, worst = n + 1, max(worst, diff)
                if diff > 1e-12:
                    raise LoraIqaError(f"cell {cell['name']} {cell['protocol']} seed {cell['seed']}: {dim} SRCC "
                                       f"{m['srcc']} does not recompute from its items (|diff| {diff:.2e})")
    return {"checked": n, "max_abs_diff": worst, "tool": "scipy.stats.spearmanr"}


def _srcc_inputs(items: Sequence[dict], dim: str, protocol: Protocol) -> tuple[list[float], list[float]]:
    if protocol.per_image:
        pairs = [(it["pred"][dim], it["true"][dim]) for it in items if it["pred"].get(dim) is not None]
        return [p for p, _ in pairs], [t for _, t in pairs]
    return protocol.scale([it for it in items if protocol.judgement(it["pred"]) is not None], dim)


def summary(cells: Sequence[dict]) -> list[dict]:
    """Mean and std over seeds per (row name, protocol), in the config's order."""
    groups: dict = {}
    for c in cells:
        groups.setdefault((c["name"], c["protocol"]), []).append(flat_row(c))
    out = []
    for (name, protocol), rows in groups.items():
        keys = [k for k in rows[0] if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows)]
        stat = {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))) for k in keys if k != "seed"}
        out.append({"name": name, "protocol": protocol, "method": rows[0]["method"], "runs": len(rows), "stat": stat})
    return out


def _mean_std(stat: dict, key: str, digits: int = 3) -> str:
    if key not in stat:
        return "—"
    mean, std = stat[key]
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _caption_srcc(stat: dict) -> str:
    """The template-read captions' overall SRCC, with the share of test items it could be read from."""
    if "caption_template_read" not in stat:
        return "—"
    return f"{_mean_std(stat, 'caption_template_overall_srcc')} ({stat['caption_template_read'][0]:.0%} read)"


def markdown(results: dict) -> str:
    """results.md: quality and cost tables (mean ± std over seeds), the SRCC check, skipped rows."""
    rows = summary(results["cells"])
    dims = list(results["cells"][0]["metrics"]) if results["cells"] else []
    per_dim = [d for d in dims if d not in ("overall", "pairwise", "ranking")]
    ref = {r["protocol"]: r["stat"].get("overall_srcc", (None,))[0] for r in rows if r["method"] == "full"}
    lines = [f"# bench {results['name']}" + (" (SYNTHETIC data)" if results.get("synthetic") else ""), "",
             f"Data: `{results['data']}`. Base: `{results['base']}`. Mean ± std over seeds "
             f"{results['config']['seeds']} (untrained rows run once). Overall SRCC of ds / ms rows is the Thurstone "
             "scale's; Δ full is the row's mean overall SRCC minus full fine-tuning's. Caption metrics compare the "
             "generated captions with the template caption of the true labels; caption SRCC is the overall SRCC of "
             "the captions as the template scorer reads them (in parentheses: the share of test items it could "
             "read); caption=logits is the share of items whose caption reads as the logits' answer.", "",
             "## Quality (held-out test split)", "",
             "| row | protocol | runs | overall SRCC | Δ full | PLCC | KRCC | RMSE | pairwise acc | Kendall tau | "
             + " | ".join(f"{d} SRCC" for d in per_dim) + " | BLEU-4 | METEOR | ROUGE-L | CIDEr | caption SRCC | caption=logits |",
             "|" + "---|" * (16 + len(per_dim))]
    for r in rows:
        s = r["stat"]
        delta = (f"{s['overall_srcc'][0] - ref[r['protocol']]:+.3f}" if ref.get(r["protocol"]) is not None
                 and "overall_srcc" in s else "—")
        lines.append(f"| {r['name']} | {r['protocol']} | {r['runs']} | {_mean_std(s, 'overall_srcc')} | {delta} | "
                     f"{_mean_std(s, 'overall_plcc')} | {_mean_std(s, 'overall_krcc')} | {_mean_std(s, 'overall_rmse')} | "
                     f"{_mean_std(s, 'pairwise_accuracy')} | {_mean_std(s, 'ranking_kendall')} | "
                     + " | ".join(_mean_std(s, f"{d}_srcc") for d in per_dim) + " | "
                     + " | ".join(_mean_std(s, f"caption_{k}") for k in ("bleu_4", "meteor", "rouge_l", "cider"))
                     + f" | {_caption_srcc(s)} | {_mean_std(s, 'caption_template_agreement_exact', 2)} |")
    lines += ["", "## Cost", "", "| row | protocol | trainable params | % | size on disk (KB) | train samples/s | train s | "
              "peak RSS (MB) | logits images/s | generation images/s | wall s |", "|" + "---|" * 11]
    for r in rows:
        s = r["stat"]
        lines.append(f"| {r['name']} | {r['protocol']} | {_mean_std(s, 'trainable_params', 0).split(' ±')[0]} | "
                     f"{_mean_std(s, 'trainable_pct', 2).split(' ±')[0]} | {s.get('size_bytes', (0,))[0] / 1024:.0f} | "
                     f"{_mean_std(s, 'train_samples_per_s', 1)} | {_mean_std(s, 'train_seconds', 1)} | {_mean_std(s, 'peak_rss_mb', 0)} | "
                     f"{_mean_std(s, 'logits_images_per_s', 1)} | {_mean_std(s, 'generate_images_per_s', 1)} | {_mean_std(s, 'wall_seconds', 1)} |")
    chk = results["srcc_check"]
    lines += ["", f"Every SRCC above recomputes from its cell's items with {chk['tool']} ({chk['checked']} checked, "
              f"max |diff| {chk['max_abs_diff']:.1e})."]
    lines += [f"Skipped: {s}" for s in results["skipped"]]
    return "\n".join(lines) + "\n"


def write_results(results: dict, out: Path) -> None:
    """results.json, results.csv, results.md and the plots, each written atomically."""
    rows = [flat_row(c) for c in results["cells"]]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, keys)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    atomic_write_text(out / "results.csv", buf.getvalue())
    md = markdown(results)
    atomic_write_text(out / "results.md", md)
    plot(results, out)
    print(md)
    print(f"wrote {out / 'results.json'}, results.csv, results.md, quality_vs_params.png, srcc_vs_step.png, cost.png")


def plot(results: dict, out: Path) -> None:
    """quality_vs_params.png (log x), srcc_vs_step.png (validation curves, mean over seeds), cost.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary(results["cells"])
    tag = " (SYNTHETIC)" if results.get("synthetic") else ""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        s = r["stat"]
        if "overall_srcc" not in s:
            continue
        x = max(s["trainable_params"][0], 1)
        ax.errorbar(x, s["overall_srcc"][0], yerr=s["overall_srcc"][1], fmt="o", capsize=3)
        ax.annotate(f"{r['name']} ({r['protocol']})", (x, s["overall_srcc"][0]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.set(xscale="log", xlabel="trainable parameters (log; untrained rows at 1)", ylabel="overall SRCC (test)",
           title=f"bench {results['name']}: quality vs trainable parameters{tag}")
    ax.grid(alpha=0.3)
    save_fig(fig, out / "quality_vs_params.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves: dict = {}
    for c in results["cells"]:
        for row in c.get("curve", []):
            v = row.get("overall", row.get("pairwise_accuracy", row.get("kendall")))
            curves.setdefault(f"{c['name']} ({c['protocol']})", {}).setdefault(row["step"], []).append(v)
    for label, by_step in curves.items():
        steps = sorted(by_step)
        ax.plot(steps, [np.mean(by_step[s]) for s in steps], marker=".", label=label)
    ax.set(xlabel="training step", ylabel="validation overall SRCC (ds: accuracy, ms: tau)",
           title=f"validation curves, mean over seeds{tag}")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7)
    save_fig(fig, out / "srcc_vs_step.png")

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    labels = [f"{r['name']} ({r['protocol']})" for r in rows]
    for ax, key, title in zip(axes, ("train_samples_per_s", "peak_rss_mb", "size_bytes"),
                              ("train samples/s", "peak RSS (MB)", "size on disk (bytes, log)")):
        ax.bar(labels, [r["stat"].get(key, (0, 0))[0] for r in rows], yerr=[r["stat"].get(key, (0, 0))[1] for r in rows])
        ax.set_title(title + tag, fontsize=9)
        ax.tick_params(axis="x", labelsize=6)
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
        if key == "size_bytes":
            ax.set_yscale("log")
    fig.tight_layout()
    save_fig(fig, out / "cost.png")
