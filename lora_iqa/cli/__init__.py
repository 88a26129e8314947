"""The ``lora-iqa`` command line: ``parser`` (arguments), ``main`` (the one error path), ``commands`` and
``scoring`` (one thin function per command)."""

from lora_iqa.cli.main import main

__all__ = ["main"]
