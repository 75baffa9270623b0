"""``python -m tinyjax script.py [args]``: run a program written for JAX on tinyjax.

The script runs as ``python script.py [args]`` would run it -- as ``__main__``, with
``sys.argv`` its own and its directory first on ``sys.path`` -- after
:func:`tinyjax.install_as_jax`, so that ``import jax`` and the libraries built on JAX use
tinyjax.  ``python -m tinyjax -m module [args]`` runs a module the same way (``python -m
tinyjax -m pytest tests/`` runs a test suite on tinyjax), ``python -m tinyjax -c
"code"`` a string.  An uncaught exception prints its traceback from the program's own
frames on, and the exit status is 1.
"""
from __future__ import annotations

import os
import runpy
import sys
import traceback
from types import TracebackType
from typing import Sequence

from tinyjax.compat import install_as_jax

USAGE = """usage: python -m tinyjax script.py [args ...]
       python -m tinyjax -m module [args ...]
       python -m tinyjax -c command [args ...]
Runs a program written for JAX on tinyjax (`import jax` resolves to tinyjax)."""


def _program_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without the frames of this module and of runpy above the program."""
    while tb is not None and (tb.tb_frame.f_code.co_filename in (__file__,)
                              or "runpy" in tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def run(argv: Sequence[str]) -> None:
    """Run the program ``argv`` names (``[script, *args]``, ``["-m", module, *args]`` or
    ``["-c", command, *args]``) with tinyjax installed as ``jax``."""
    install_as_jax()
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    elif argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
    else:
        script = argv[0]
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        runpy.run_path(script, run_name="__main__")


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: the exit status of the program (0, or 1 for an uncaught
    exception; ``sys.exit`` inside the program passes through)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or (argv[0] in ("-m", "-c") and len(argv) < 2):
        print(USAGE, file=sys.stderr if not argv or argv[0] not in ("-h", "--help")
              else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        run(argv)
    except Exception as e:  # (SystemExit and KeyboardInterrupt pass through)
        traceback.print_exception(type(e), e, _program_frames(e.__traceback__))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
