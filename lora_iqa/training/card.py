"""The model card (README.md) and the directory writer of a trained adapter or model."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from lora_iqa.artifact import AdapterMeta, write_meta
from lora_iqa.methods.interface import Method
from lora_iqa.metrics import fmt


def save_trained(method: Method, model, processor, out: Path, meta: AdapterMeta, state_dict: dict | None = None) -> None:
    """Write the adapter (or full model) directory: ``method``'s weights first, ``lora_iqa.json`` last, each atomically.

    ``state_dict`` is the gathered full state under ZeRO-3/FSDP (else the model's own is used).
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".save-", dir=out) as tmp_name:  # removed afterwards, even on error
        tmp = Path(tmp_name)
        method.save(model, processor, tmp, state_dict)
        (tmp / "README.md").write_text(model_card(meta, method))
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
    write_meta(meta, out)


def model_card(meta: AdapterMeta, method: Method) -> str:
    """A model card: base, protocol, dimensions, template, training config, metrics, how to load."""
    import yaml

    cfg, base, protocol = meta.config, meta.base.name_or_path, meta.make_protocol()
    rows = "\n".join(f"| {d} | " + " | ".join(fmt(m[k]) for k in ("srcc", "plcc", "krcc", "rmse")) + " |"
                     for d, m in meta.metrics.items() if "srcc" in m)
    judged = {k: v for k, v in meta.metrics.items() if "srcc" not in v}  # ds pairwise accuracy, ms Kendall tau
    if judged:
        rows += "\n\n" + "; ".join(f"{k}: " + ", ".join(f"{n} {fmt(x) if isinstance(x, float) else x}" for n, x in v.items())
                                  for k, v in judged.items())
    resolved = yaml.safe_dump({"num_processes": meta.num_processes, **cfg}, sort_keys=False).strip()
    return f"""---
base_model: {json.dumps(base)}
library_name: {method.library_name}
tags: [lora_iqa, image-quality-assessment, {method.tags}]
---
# lora_iqa {method.title}: protocol `{meta.adapter_name}`

Image-quality {"captioner" if method.captions else "scorer"} ({method.title}) trained with lora_iqa {meta.lora_iqa_version}.

- base: `{base}` (fingerprint `{meta.base.fingerprint}`)
- protocol: `{meta.protocol}` ({protocol.title}), `{meta.reference}` ({meta.images} image(s) per sample); dimensions: {', '.join(meta.dimensions)} (0–4, higher is better)
- template: `{meta.template_version}`
- data: `{cfg['data']['manifest']}` (if it was made by `lora-iqa synth`, its images and labels are SYNTHETIC)
- training: {cfg['train']['max_steps']} steps, batch {cfg['train']['batch_size']}, lr {cfg['train']['lr']}, adapter {cfg['adapter']}
- selected step: {meta.step}

## Validation metrics ({method.scoring}, at the selected step{'' if protocol.per_image else '; overall: the Thurstone Case V scale of the judgements'})

| dimension | SRCC | PLCC | KRCC | RMSE |
|---|---|---|---|---|
{rows}

## Training config (resolved)

```yaml
{resolved}
```

## Load

```python
{method.load_snippet(meta)}
```

With lora_iqa (checks the base fingerprint; a Hub id works wherever a directory does):
`lora-iqa score IMAGE --adapter PATH_OR_REPO_ID --json`
"""
