"""``jax.debug.breakpoint``: a small command-line debugger ("jdb") entered from inside
traced code with the run-time values of the arrays in the calling frames.

At trace time the breakpoint records the Python frames above it (file, line, function,
globals and locals); the array locals become operands of a debug callback, everything
else is kept as it is.  When the program runs, the callback rebuilds the frames with the
computed values and reads commands from stdin:

  p EXPR / pp EXPR   print (pretty-print) an expression in the current frame
  EXPR               the same as ``p``
  u / d              move up / down the recorded frames
  l / ll             list the source around the current line / the whole function
  w                  show the recorded frames
  c                  continue the program (also at end of input)
  q                  quit: raise ``SystemExit`` in the program
"""
from __future__ import annotations

import cmd
import inspect
import linecache
import pprint
from typing import Any, IO

from tinyjax import dtypes, tree_util
from tinyjax.array import Array
from tinyjax.callback import debug_callback

__all__ = ["breakpoint", "Frame", "Debugger"]

_PACKAGE = __file__.rsplit("/", 1)[0] + "/"


class Frame:
    """One recorded Python frame: where it is and its variables."""

    def __init__(self, filename: str, lineno: int, function: str, code: Any,
                 globals_: dict, locals_: dict):
        self.filename, self.lineno, self.function = filename, lineno, function
        self.code, self.globals, self.locals = code, globals_, locals_

    def __repr__(self) -> str:
        return f"{self.filename}({self.lineno}) {self.function}"


class Debugger(cmd.Cmd):
    """The jdb command loop over recorded frames (innermost first)."""

    prompt = "(jdb) "
    intro = "Entering jdb:"

    def __init__(self, frames: list[Frame], stdin: IO[str] | None = None,
                 stdout: IO[str] | None = None):
        super().__init__(stdin=stdin, stdout=stdout)
        self.use_rawinput = stdin is None
        self.frames, self.index = frames, 0

    @property
    def frame(self) -> Frame:
        return self.frames[self.index]

    def evaluate(self, expr: str) -> Any:
        env = dict(self.frame.globals)
        env.update(self.frame.locals)
        return eval(expr, {}, env)  # noqa: S307  (the user's own expression)

    def _show(self, expr: str, pretty: bool) -> None:
        try:
            value = self.evaluate(expr)
        except Exception as e:  # noqa: BLE001  (report and keep debugging)
            self.stdout.write(f"*** {type(e).__name__}: {e}\n")
            return
        self.stdout.write((pprint.pformat(value) if pretty else repr(value)) + "\n")

    def default(self, line: str) -> None:
        self._show(line, pretty=False)

    def emptyline(self) -> bool:
        return False

    def do_p(self, arg: str) -> None:
        """p EXPR: print the value of EXPR in the current frame."""
        self._show(arg, pretty=False)

    def do_pp(self, arg: str) -> None:
        """pp EXPR: pretty-print the value of EXPR in the current frame."""
        self._show(arg, pretty=True)

    def do_u(self, arg: str) -> None:
        """u(p): move to the frame that called the current one."""
        if self.index + 1 >= len(self.frames):
            self.stdout.write("At topmost frame.\n")
            return
        self.index += 1
        self.do_l("")

    def do_d(self, arg: str) -> None:
        """d(own): move to the frame the current one called."""
        if self.index == 0:
            self.stdout.write("At bottommost frame.\n")
            return
        self.index -= 1
        self.do_l("")

    def _lines(self, first: int, last: int) -> None:
        f = self.frame
        for n in range(max(first, 1), last + 1):
            text = linecache.getline(f.filename, n)
            if not text:
                break
            mark = "->" if n == f.lineno else "  "
            self.stdout.write(f"{n:4d} {mark} {text.rstrip()}\n")

    def do_l(self, arg: str) -> None:
        """l(ist): the source lines around the current line."""
        self.stdout.write(f"> {self.frame}\n")
        self._lines(self.frame.lineno - 5, self.frame.lineno + 5)

    def do_ll(self, arg: str) -> None:
        """ll: the source of the current function."""
        f = self.frame
        try:
            lines, start = inspect.getsourcelines(f.code)
        except (OSError, TypeError):
            lines, start = [], f.lineno
        self.stdout.write(f"> {f}\n")
        self._lines(start, start + max(len(lines), 1) - 1)

    def do_w(self, arg: str) -> None:
        """w(here): the recorded frames, the current one marked."""
        for i, f in reversed(list(enumerate(self.frames))):
            self.stdout.write(f"{'->' if i == self.index else '  '} {f}\n")

    def do_c(self, arg: str) -> bool:
        """c(ontinue): resume the program."""
        return True

    def do_q(self, arg: str) -> None:
        """q(uit): stop the program (SystemExit)."""
        raise SystemExit("quit from jdb")

    do_EOF = do_c
    do_print, do_up, do_down, do_list, do_where, do_bt = do_p, do_u, do_d, do_l, do_w, do_w
    do_continue, do_quit, do_exit = do_c, do_q, do_q


def _recorded_frames(filter_frames: bool, num_frames: int | None) -> list[inspect.FrameInfo]:
    frames = [fi for fi in inspect.stack(0)[2:]
              if not (filter_frames and fi.filename.startswith(_PACKAGE))]
    return frames[:num_frames] if num_frames is not None else frames


def breakpoint(*, backend: Any = None, filter_frames: bool = True,  # noqa: A001
               num_frames: int | None = None, ordered: bool = False, token: Any = None,
               **kwargs: Any) -> Any:
    """Stop here when the program runs and enter jdb with the values of the calling
    frames' variables (arrays as computed at run time).  ``num_frames`` limits how many
    frames are recorded; ``filter_frames`` hides tinyjax's own frames."""
    infos = _recorded_frames(filter_frames, num_frames)
    records = [(fi.filename, fi.lineno, fi.function, fi.frame.f_code, fi.frame.f_globals,
                dict(fi.frame.f_locals)) for fi in infos]
    del infos
    # the array locals are operands (their run-time values come back); the rest as is
    dynamic = [{k: v for k, v in r[5].items() if _is_array_tree(v)} for r in records]

    def enter(*run_time: dict) -> None:
        frames = [Frame(fn, line, func, code, g, {**loc, **values})
                  for (fn, line, func, code, g, loc), values in zip(records, run_time)]
        Debugger(frames).cmdloop()

    debug_callback(enter, *dynamic, ordered=ordered)
    if token is not None:
        return token
    return None


def _is_array_tree(x: Any) -> bool:
    """A pytree whose leaves are all arrays (tracers included)."""
    leaves = tree_util.tree_leaves(x)
    return bool(leaves) and all(isinstance(v, Array) and not dtypes.is_extended(v.dtype)
                                for v in leaves)
