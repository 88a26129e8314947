"""Quiet library output: stderr is kept for lora_iqa's own one-line errors."""

from __future__ import annotations

import os
import sys
import warnings


def quiet() -> None:
    """Keep stderr for our own one-line errors: no library warnings, log records or loading bars."""
    import logging

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bar
    for name in ("bitsandbytes", "peft", "transformers", "accelerate"):  # e.g. bitsandbytes' CPU-kernel notice
        logging.getLogger(name).setLevel(logging.ERROR)
    # pydicom logs each failing decoder plugin's traceback at ERROR (the one-line LoraIqaError says it all):
    # kept from the root handlers (not by level: importing pydicom resets its logger's level to WARNING)
    logging.getLogger("pydicom").propagate = False
    if "transformers" in sys.modules:  # already imported (in-process use): its bar flag is read at import
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
