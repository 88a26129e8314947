"""The ``lora-iqa`` entry point. Errors: one line on stderr naming the file or key, exit status 1."""

from __future__ import annotations

import os
import sys

from lora_iqa.cli.commands import (
    _bench,
    _data,
    _demo,
    _eval,
    _push,
    _report,
    _sweep,
    _synth,
    _train,
)
from lora_iqa.cli.parser import EXIT_ERROR, _parser
from lora_iqa.cli.scoring import _score
from lora_iqa.errors import LoraIqaError
from lora_iqa.logs import quiet


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lora-iqa`` console script. Every expected failure ends here as one line."""
    args = _parser().parse_args(argv)
    if not args.debug:
        quiet()
    try:
        return _COMMANDS[args.cmd](args) or 0
    except KeyboardInterrupt:
        print("lora-iqa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as e:
        message = _one_line(e)
        if args.debug or message is None:
            raise
        print(f"lora-iqa: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(e: Exception) -> str | None:
    """The one-line message of an expected failure (ours, the OS's, a file format's); None for a bug."""
    if isinstance(e, LoraIqaError):
        return str(e)
    if isinstance(e, OSError):  # disk full, permissions, a path too long...: name the file
        where = e.filename or "?"
        return " ".join(f"{where}: {e.strerror or type(e).__name__}".split())
    import yaml
    from safetensors import SafetensorError

    if isinstance(e, (yaml.YAMLError, SafetensorError)):
        return " ".join(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".split())
    return None


_COMMANDS = {"demo": _demo, "synth": _synth, "train": _train, "eval": _eval, "score": _score, "report": _report,
             "push": _push, "sweep": _sweep, "bench": _bench,
             "data": _data}
if __name__ == "__main__":
    sys.exit(main())
