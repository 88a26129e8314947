"""The model card (README.md) and the directory writer of a trained adapter or model."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from lora_iqa.errors import atomic_write_text
from lora_iqa.metrics import fmt

PROTOCOL_TEXT = {"ss": "single stimulus: scores per dimension", "ds": "double stimulus: which image is better",
                 "ms": "multiple stimulus: a ranking"}


def save_trained(model, processor, out: Path, meta: dict, state_dict: dict | None = None) -> None:
    """Write the adapter (or full model) directory: weights first, ``lora_iqa.json`` last, each atomically.

    ``state_dict`` is the gathered full state under ZeRO-3/FSDP (else the model's own is used).
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".save-", dir=out) as tmp_name:  # removed afterwards, even on error
        tmp = Path(tmp_name)
        model.save_pretrained(str(tmp), **({"state_dict": state_dict} if state_dict is not None else {}))
        if not hasattr(model, "peft_config") and not getattr(model, "is_prompt_learner", False):
            # a full fine-tune is a complete base: it carries its processor
            processor.save_pretrained(str(tmp))
        (tmp / "README.md").write_text(model_card(meta))
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
    atomic_write_text(out / "lora_iqa.json", json.dumps(meta, indent=2))


def model_card(meta: dict) -> str:
    """A model card: base, protocol, dimensions, template, training config, metrics, how to load."""
    import yaml

    cfg, base = meta["config"], meta["base"]["name_or_path"]
    rows = "\n".join(f"| {d} | " + " | ".join(fmt(m[k]) for k in ("srcc", "plcc", "krcc", "rmse")) + " |"
                     for d, m in meta["metrics"].items() if "srcc" in m)
    judged = {k: v for k, v in meta["metrics"].items() if "srcc" not in v}  # ds pairwise accuracy, ms Kendall tau
    if judged:
        rows += "\n\n" + "; ".join(f"{k}: " + ", ".join(f"{n} {fmt(x) if isinstance(x, float) else x}" for n, x in v.items())
                                  for k, v in judged.items())
    method = cfg["adapter"]["method"]
    kind = {"lora": "LoRA adapter", "clip_prompt": "CLIP prompt learner"}.get(method, "fully fine-tuned model")
    if method == "clip_prompt":
        load = ("from lora_iqa.methods.clip.prompt import load_prompt_adapter\n"
                "learner, meta = load_prompt_adapter(\"PATH\")  # loads the CLIP base lora_iqa.json names\n"
                "scores = learner.scores([image])  # float [0, 1] arrays, (H, W) or (H, W, 3)")
    elif method == "lora":
        load = (f"from peft import PeftModel\nfrom transformers import BlipForConditionalGeneration\n"
                f"base = BlipForConditionalGeneration.from_pretrained(\"{base}\")\n"
                + ("from lora_iqa.methods.blip.multi_image import add_image_index\nbase = add_image_index(base)  # this adapter's image-index "
                   "embeddings load into it\n" if meta.get("images", 1) > 1 else "")
                + "model = PeftModel.from_pretrained(base, \"PATH_OR_REPO_ID\")")
    else:
        load = ("from transformers import BlipForConditionalGeneration\n"
                "model = BlipForConditionalGeneration.from_pretrained(\"PATH_OR_REPO_ID\")")
    resolved = yaml.safe_dump({"num_processes": meta.get("num_processes"), **cfg}, sort_keys=False).strip()
    return f"""---
base_model: {json.dumps(base)}
library_name: {"peft" if kind.startswith("LoRA") else "lora_iqa" if method == "clip_prompt" else "transformers"}
tags: [lora_iqa, image-quality-assessment, {"clip, prompt-learning" if method == "clip_prompt" else "blip"}, { {"lora": "lora", "clip_prompt": "clip-prompt"}.get(method, "full-fine-tuning")}]
---
# lora_iqa {kind}: protocol `{meta['protocol']}_{meta.get('reference', 'nr')}`

Image-quality {"scorer" if method == "clip_prompt" else "captioner"} ({kind}) trained with lora_iqa {meta.get('lora_iqa_version', '')}.

- base: `{base}` (fingerprint `{meta['base']['fingerprint']}`)
- protocol: `{meta['protocol']}` ({PROTOCOL_TEXT[meta['protocol']]}), `{meta.get('reference', 'nr')}` ({meta.get('images', 1)} image(s) per sample); dimensions: {', '.join(meta['dimensions'])} (0–4, higher is better)
- template: `{meta['template_version']}`
- data: `{cfg['data']['manifest']}` (if it was made by `lora-iqa synth`, its images and labels are SYNTHETIC)
- training: {cfg['train']['max_steps']} steps, batch {cfg['train']['batch_size']}, lr {cfg['train']['lr']}, adapter {cfg['adapter']}
- selected step: {meta['step']}

## Validation metrics ({"antonym-prompt scoring" if method == "clip_prompt" else "logit scoring"}, at the selected step{'' if meta['protocol'] == 'ss' else '; overall: the Thurstone Case V scale of the judgements'})

| dimension | SRCC | PLCC | KRCC | RMSE |
|---|---|---|---|---|
{rows}

## Training config (resolved)

```yaml
{resolved}
```

## Load

```python
{load}
```

With lora_iqa (checks the base fingerprint; a Hub id works wherever a directory does):
`lora-iqa score IMAGE --adapter PATH_OR_REPO_ID --json`
"""
