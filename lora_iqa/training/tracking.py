"""Experiment tracking through Accelerate's trackers (W&B, TensorBoard, ...), or nothing at all.

With W&B: the resolved config, per-step loss and lr, validation SRCC per dimension with ``max``
summaries (``define_metric``), and at the end the validation items of the selected step as a table.
Offline unless configured (``WANDB_MODE``); the project comes from ``WANDB_PROJECT`` (default
``lora_iqa``), the group from ``WANDB_RUN_GROUP`` (a bench sets it), the run name from the output dir.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from accelerate import Accelerator

from lora_iqa.config import Config


class Tracker:
    """A null logger when ``cfg.tracking`` is ``none``; else Accelerate's tracker(s)."""

    def __init__(self, accelerator: Accelerator, cfg: Config, out: Path, run_id: str = "") -> None:
        """``run_id`` (kept in checkpoints) makes a resumed training continue the same W&B run."""
        self.accelerator, self.kind, self.run_id = accelerator, cfg.tracking, run_id
        if self.kind == "none":
            return
        init_kwargs = {}
        if self.kind == "wandb":
            out.mkdir(parents=True, exist_ok=True)
            self.run_id = run_id or secrets.token_hex(4)  # a W&B-style 8-character run id
            init_kwargs = {"wandb": {"name": out.name, "dir": str(out), "group": os.environ.get("WANDB_RUN_GROUP"),
                                     "job_type": "train", "id": self.run_id, "resume": "allow"}}
        accelerator.init_trackers(os.environ.get("WANDB_PROJECT", "lora_iqa"), config=cfg.to_dict(),
                                  init_kwargs=init_kwargs)
        if self.kind == "wandb" and accelerator.is_main_process:
            run = accelerator.get_tracker("wandb", unwrap=True)
            run.define_metric("val/*", summary="max")
            run.define_metric("train/loss", summary="min")

    def log(self, values: dict, step: int) -> None:
        if self.kind != "none":
            self.accelerator.log(values, step=step)

    def finish(self, items: list[dict], step: int) -> None:
        """Log the selected step's validation items as a table (W&B)."""
        if self.kind != "wandb" or not self.accelerator.is_main_process or not items:
            return
        if "content" not in items[0]:  # ds / ms: the stimuli, their true overall, the answer and the prediction
            columns = ["images", "true", "answer", "pred"]
            data = [[json.dumps(it[c]) for c in columns] for it in items]
        else:
            dims = list(items[0]["true"])
            columns = ["image", "content"] + [f"{d}_{k}" for d in dims for k in ("true", "pred")]
            data = [[it["images"][0], it["content"]] + [v for d in dims for v in (it["true"][d], it["pred"][d])]
                    for it in items]
        self.accelerator.get_tracker("wandb").log_table(f"val/items_step_{step}", columns=columns, data=data)
