"""The ``lora-iqa`` command. Errors: one line on stderr naming the file or key, exit status 1."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from lora_iqa.cli.scoring import (
    _check_protocol,
    _items_failed,
    _scorer,
    _window,
)
from lora_iqa.errors import (
    LoraIqaError,
    atomic_write_text,
    check_output_file,
    check_writable_dir,
)


def _demo(args) -> None:
    from lora_iqa.experiments.demo import run_demo

    run_demo(check_writable_dir(args.out), quick=args.quick)


def _synth(args) -> None:
    if args.kind == "natural":
        from lora_iqa.data.synth.natural import SynthNaturalConfig, synth_natural

        path = synth_natural(Path(args.out), SynthNaturalConfig(n=args.n, size=args.size, seed=args.seed))
        print(f"wrote {path} (SYNTHETIC distortions and labels)")
        return
    from lora_iqa.data.synth.ct import SynthCTConfig, synth_ct

    given = {k: getattr(args, k) for k in ("n", "size", "spacing", "seed", "format", "jitter") if getattr(args, k) is not None}
    cfg = SynthCTConfig(**given)  # the config's defaults for what was not given
    t0 = time.perf_counter()
    path = synth_ct(Path(args.out), cfg)
    secs = time.perf_counter() - t0
    print(f"wrote {path} (SYNTHETIC images and labels): {cfg.n} images in {secs:.1f} s ({cfg.n / secs:.2f} images/s)")


def _train(args) -> None:
    from lora_iqa.bases.clip_standin import EMBEDDED_CLIP
    from lora_iqa.bases.embedded import EMBEDDED, built, resolve_base
    from lora_iqa.config import load_config
    from lora_iqa.training.accel import partial_state
    from lora_iqa.training.run import run

    cfg = load_config(args.recipe, args.overrides)
    state = partial_state()
    if cfg.base in (EMBEDDED, EMBEDDED_CLIP) and state.num_processes > 1 and not built(cfg.base):
        module = "lora_iqa.bases.embedded" if cfg.base == EMBEDDED else "lora_iqa.bases.clip_standin"
        raise LoraIqaError(f"base '{cfg.base}' is not built yet: build it once with one process "
                           f"(python -m {module}), then launch the processes")
    cfg.base = resolve_base(cfg.base)
    res = run(cfg)
    if state.is_main_process:
        print(f"saved {res.dir} (best step {res.best_step}, val overall SRCC "
              f"{res.metrics.get(cfg.data.dimensions[-1], {}).get('srcc')})")


def _eval(args) -> int:
    from lora_iqa.artifact import read_meta
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.samples import protocol_samples
    from lora_iqa.evaluation import evaluate
    from lora_iqa.methods.load import load_trained
    from lora_iqa.methods.registry import get_method

    if args.out:
        check_output_file(args.out)  # before any work
    meta = read_meta(args.adapter)  # inputs are checked before the model is loaded
    template = meta.template()
    protocol = meta.make_protocol()
    d = meta.data_settings()
    seed = args.seed if args.seed is not None else meta.seed + 2
    manifest = read_manifest(args.data, template.dimensions)
    rows = manifest.split(args.split)
    view = meta.make_view()
    samples = protocol_samples(rows, protocol, template.dimensions, seed, d["per_image"], d["same_content"],
                               d["similar_below"], d["window"], spacing=view.spacing)
    if not samples:
        raise LoraIqaError(f"{args.data}: no rows in split '{args.split}'" if not rows or protocol.per_image else
                           f"{args.data}: split '{args.split}' ({len(rows)} rows) gives no {protocol.name} samples")
    model, processor, meta = load_trained(args.adapter)
    both = ("logits", "caption") if get_method(meta.method).captions else ("logits",)
    methods = both if args.method == "both" else (args.method,)
    scorer, _ = _scorer(args, meta)
    results = {m: evaluate(model, processor, samples, template, args.split, m, scorer=scorer, protocol=protocol,
                           index=meta.multi_image, view=view) for m in methods}
    out = dict(results[methods[0]])
    out["adapter"] = str(args.adapter)
    if not protocol.per_image or protocol.full_reference:
        out["reference"] = protocol.reference
    if not protocol.per_image:  # ds pairs / ms groups are drawn by this seed
        out["seed"] = seed
    for m in methods[1:]:
        out[m] = results[m]
    for m, r in results.items():
        print(f"{m:8s} " + protocol.metrics_line(r["metrics"], template.overall))
    if scorer.name != "template":
        print(scorer.usage_line(), file=sys.stderr)
    if args.out:
        atomic_write_text(args.out, json.dumps(out, indent=1, allow_nan=False))
        print(f"wrote {args.out}")
    items = [it for r in results.values() for it in r["items"]]
    return _items_failed(sum(it.get("status") == "failed" for it in items), len(items))


def _report(args) -> None:
    from lora_iqa.artifact import read_meta
    from lora_iqa.data.samples import ImageFile, Sample
    from lora_iqa.evaluation import predict
    from lora_iqa.methods.load import load_trained

    if args.out:
        check_output_file(args.out)  # before any work
    meta = read_meta(args.adapter)
    args.protocol, args.images = "ss", [args.image]
    protocol = _check_protocol(args, meta)  # an ss adapter; --reference exactly for fr
    window, view = _window(args), meta.make_view()
    image = ImageFile(Path(args.image), window, view.spacing).load()  # read now: a bad file stops before the model
    ref = (ImageFile(Path(args.reference), window, view.spacing).load(),) if args.reference else ()
    scorer, template = _scorer(args, meta)
    model, processor, meta = load_trained(args.adapter)
    pred = predict(model, processor, [Sample(images=(image,) + ref, labels={}, item=None)], template, "caption",
                   scorer=scorer, protocol=protocol, index=meta.multi_image, view=view)[0]
    text = scorer.report(pred["caption"], pred["scores"], image=args.image)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text)
    if scorer.name != "template":
        print(scorer.usage_line(), file=sys.stderr)


def _push(args) -> None:
    from lora_iqa.hub import push

    print(push(args.dir, args.repo_id, private=args.private))


def _sweep(args) -> None:
    from lora_iqa.experiments.sweep import run_sweep

    run_sweep(args.sweep, Path(args.out))


def _bench(args) -> None:
    from lora_iqa.config import load_bench
    from lora_iqa.experiments.bench.plan import run_bench

    bench = load_bench(args.config)
    run_bench(bench, check_writable_dir(args.out))


def _data(args) -> None:
    from lora_iqa.data.datasets import import_dataset

    res = import_dataset(args.format, args.root, args.out, seed=args.seed, check_files=args.check_files)
    print(f"wrote {res.path} and {res.meta_path.name} ({args.format}; dimensions {', '.join(res.dimensions)}): "
          + ", ".join(f"{s} {n}" for s, n in res.counts.items()))
