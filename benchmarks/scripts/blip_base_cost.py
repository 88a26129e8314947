"""LoRA vs full fine-tuning training cost at BLIP-base geometry (random weights, the real architecture).

``BlipForConditionalGeneration(BlipConfig())``: ViT-B/16 (here at ``--image-size``, default 224 px) and
a BERT-base decoder, ~250 M parameters. Each method runs in its OWN subprocess (so peak RSS is its own):
build, ``lora_iqa.methods.blip.lora.attach`` (LoRA r=8 on vision + cross attention, or full), then AdamW steps as
in the training loop (loss, backward, clip_grad_norm, step, zero_grad) on random pixels and random
32-token captions. Step 1 is counted by ``FlopCounterMode`` (untimed, like the other warm-up steps),
then ``--steps`` timed steps, then one untimed step under ``torch.profiler``. The fp32 matmul peak
(best of several ``torch.mm``, 2 n^3 FLOPs) is measured in the parent at the same thread count.

    python benchmarks/scripts/blip_base_cost.py --out benchmarks/results/blip_base_cost [--batch 8] [--steps 5] [--warmup 2]

Writes ``results.json``, ``results.md`` and ``cost.png`` (each to a temporary name, then renamed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from lora_iqa.config import AdapterConfig, TrainConfig
from lora_iqa.errors import atomic_path, atomic_write_text
from lora_iqa.methods.blip.lora import attach
from lora_iqa.methods.common import count_params

METHODS = {"lora": AdapterConfig(method="lora", r=8, targets=("vision", "cross")), "full": AdapterConfig(method="full")}
SEQ_LEN = 32  # caption-like length
PHASES = ("forward", "backward", "clip_grad_norm", "optimizer_step", "zero_grad")


def mib_rss() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB: Linux's VmRSS and VmHWM. VmHWM starts afresh at
    exec, unlike ``ru_maxrss``, which a worker inherits from the parent it was forked from."""
    status = {line.split(":")[0]: int(line.split()[1]) for line in open("/proc/self/status")
              if line.startswith(("VmRSS:", "VmHWM:"))}
    return status["VmRSS"] / 1024, status["VmHWM"] / 1024


def blip_config(image_size: int, smoke: bool):
    """BLIP-base defaults at ``image_size`` px; ``smoke``: the same classes with tiny hidden sizes."""
    from transformers import BlipConfig

    if not smoke:
        return BlipConfig(vision_config={"image_size": image_size})
    tiny = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
    return BlipConfig(vision_config=dict(tiny, image_size=image_size, patch_size=16),
                      text_config=dict(tiny, vocab_size=1000, encoder_hidden_size=64, bos_token_id=1, pad_token_id=0,
                                       sep_token_id=2, eos_token_id=2), projection_dim=64)


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 ``torch.mm`` rate (GFLOP/s) of n x n matrices at the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)

    def once() -> float:
        t0 = time.perf_counter()
        torch.mm(a, b)
        return time.perf_counter() - t0

    once()  # warm-up
    return 2 * n**3 / min(once() for _ in range(repeats)) / 1e9


def worker(method: str, args: argparse.Namespace) -> dict:
    """Build, attach, and train one method; returns its figures (run inside its own process)."""
    from torch.profiler import ProfilerActivity, profile, record_function
    from torch.utils.flop_counter import FlopCounterMode
    from tqdm import tqdm
    from transformers import BlipForConditionalGeneration

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rss_import, _ = mib_rss()
    cfg = blip_config(args.image_size, args.smoke)
    model = BlipForConditionalGeneration(cfg)
    rss_built, _ = mib_rss()
    model = attach(model, METHODS[method], quantized=False, tokens=[])
    model.train()
    trainable, total = count_params(model)
    tc = TrainConfig()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    pixels = torch.randn(args.batch, 3, args.image_size, args.image_size)
    ids = torch.randint(1000 if not args.smoke else 10, cfg.text_config.vocab_size, (args.batch, SEQ_LEN))
    mask = torch.ones_like(ids)

    def step() -> None:
        with record_function("forward"):
            loss = model(pixel_values=pixels, input_ids=ids, attention_mask=mask, labels=ids).loss
        with record_function("backward"):
            loss.backward()
        with record_function("clip_grad_norm"):
            torch.nn.utils.clip_grad_norm_(params, tc.max_grad_norm)
        with record_function("optimizer_step"):
            opt.step()
        with record_function("zero_grad"):
            opt.zero_grad()

    times: list[float] = []
    for i in tqdm(range(args.warmup + args.steps), desc=f"{method} steps", file=sys.stderr):
        if i == 0:
            with FlopCounterMode(display=False) as fc:
                step()
            flops = fc.get_total_flops()
            continue
        t0 = time.perf_counter()
        step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    rss_end, peak = mib_rss()  # the training peak, before the profiled step
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    ops = sorted((e for e in events if e.key not in PHASES), key=lambda e: -e.self_cpu_time_total)[:10]
    sec = sum(times) / len(times)
    return {
        "method": method, "trainable_params": trainable, "total_params": total,
        "rss_after_import_mib": rss_import, "rss_after_build_mib": rss_built, "rss_end_mib": rss_end,
        "peak_rss_mib": peak, "step_seconds": times, "seconds_per_step": sec, "samples_per_s": args.batch / sec,
        "train_flops_per_step": flops, "train_gflops": flops / 1e9, "achieved_gflops": flops / sec / 1e9,
        "profile_phases_ms": {e.key: e.cpu_time_total / 1e3 for e in events if e.key in PHASES},
        "profile_top_ops": [{"op": e.key, "self_cpu_ms": e.self_cpu_time_total / 1e3,
                             "cpu_total_ms": e.cpu_time_total / 1e3, "calls": e.count} for e in ops],
    }


def markdown(res: dict) -> str:
    """The results table, the two target checks, and the per-method profiles."""
    m, r = res["methods"], res["ratios_lora_over_full"]
    rows = [("trainable params", "{:,}", "trainable_params"), ("total params", "{:,}", "total_params"),
            ("RSS after building the model (MiB)", "{:.0f}", "rss_after_build_mib"),
            ("peak RSS (MiB)", "{:.0f}", "peak_rss_mib"), ("seconds / step", "{:.3f}", "seconds_per_step"),
            ("samples / s", "{:.3f}", "samples_per_s"), ("training GFLOPs / step", "{:.1f}", "train_gflops"),
            ("achieved GFLOP/s", "{:.1f}", "achieved_gflops"), ("MFU", "{:.1%}", "mfu")]
    c = res["config"]
    out = [f"# LoRA vs full fine-tuning cost, BLIP-base geometry ({'SMOKE, tiny config' if c['smoke'] else 'ViT-B/16 + BERT-base'})",
           "", f"Batch {c['batch']}, {c['image_size']} px, {SEQ_LEN} tokens, {c['steps']} timed steps after "
           f"{c['warmup']} warm-up; {res['threads']} thread(s); torch {res['torch']}; seed {res['seed']}; "
           f"fp32 matmul peak {res['matmul_peak_gflops']:.1f} GFLOP/s.", "",
           "| measure | LoRA | full |", "|---|---|---|"]
    out += [f"| {name} | {fmt.format(m['lora'][k])} | {fmt.format(m['full'][k])} |" for name, fmt, k in rows]
    ok = lambda met: "met" if met else "**NOT met**"  # noqa: E731
    out += ["", "Targets:", f"- LoRA/full peak RSS <= 0.5: {ok(r['peak_rss'] <= 0.5)} ({r['peak_rss']:.3f})",
            f"- LoRA/full samples/s >= 1.3: {ok(r['samples_per_s'] >= 1.3)} ({r['samples_per_s']:.3f})"]
    for name, v in m.items():
        phases = ", ".join(f"{k} {ms:.0f} ms" for k, ms in v["profile_phases_ms"].items())
        out += ["", f"## Profile of one {name} step ({phases})", "", "| op | self CPU ms | total CPU ms | calls |",
                "|---|---|---|---|"]
        out += [f"| `{o['op']}` | {o['self_cpu_ms']:.1f} | {o['cpu_total_ms']:.1f} | {o['calls']} |"
                for o in v["profile_top_ops"]]
    return "\n".join(out) + "\n"


def plot(res: dict, path: Path) -> None:
    """Bars per method: peak RSS, samples/s, MFU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(res["methods"])
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for ax, (key, label) in zip(axes, [("peak_rss_mib", "peak RSS (MiB)"), ("samples_per_s", "samples / s"),
                                       ("mfu", "MFU (fraction of matmul peak)")]):
        ax.bar(names, [res["methods"][n][key] for n in names], color=["tab:blue", "tab:orange"])
        ax.set_title(label)
    fig.suptitle(f"BLIP-base training cost, batch {res['config']['batch']}, {res['threads']} thread(s)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/blip_base_cost"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2, help=">= 1: the first warm-up step counts FLOPs")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count()))
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="tiny hidden sizes, for a fast check")
    ap.add_argument("--worker", choices=list(METHODS), help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.warmup < 1 or args.steps < 1:
        ap.error("--warmup and --steps must be >= 1")
    if args.worker:
        args.worker_out.write_text(json.dumps(worker(args.worker, args)))
        return
    torch.set_num_threads(args.threads)
    peak = matmul_peak()
    print(f"matmul peak: {peak:.1f} GFLOP/s at {args.threads} thread(s)", file=sys.stderr)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    methods = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            dest = Path(tmp) / f"{method}.json"
            cmd = [sys.executable, __file__, *sys.argv[1:], "--worker", method, "--worker-out", str(dest)]
            subprocess.run(cmd, env=env, check=True)
            methods[method] = json.loads(dest.read_text())
            methods[method]["mfu"] = methods[method]["achieved_gflops"] / peak
    lo, fu = methods["lora"], methods["full"]
    res = {"config": {k: v for k, v in vars(args).items() if not k.startswith("worker") and k != "out"},
           "seq_len": SEQ_LEN, "seed": args.seed, "torch": torch.__version__, "threads": args.threads,
           "matmul_peak_gflops": peak, "methods": methods,
           "ratios_lora_over_full": {"peak_rss": lo["peak_rss_mib"] / fu["peak_rss_mib"],
                                     "samples_per_s": lo["samples_per_s"] / fu["samples_per_s"]}}
    text = markdown(res)
    atomic_write_text(args.out / "results.json", json.dumps(res, indent=2, default=str) + "\n")
    atomic_write_text(args.out / "results.md", text)
    plot(res, args.out / "cost.png")
    print(text)


if __name__ == "__main__":
    main()
