"""Thin, accelerate-launchable training recipe: the same code as `lora-iqa train`.

    accelerate launch recipes/train.py recipes/configs/ct_ss_lora.yaml [key=value ...]
"""

import sys

from lora_iqa.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
