"""Run Python code in a fresh interpreter (a crash -- SIGBUS, SIGSEGV -- fails the calling
test, not the test run), importing the tinyjax of this checkout."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = str(Path(__file__).resolve().parent.parent)


# capabilities that let root ignore file modes: CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
# CAP_FOWNER (linux/capability.h), and prctl's PR_CAPBSET_DROP
_FILE_CAPABILITIES = (1, 2, 3)
_PR_CAPBSET_DROP = 24


def _drop_file_privileges() -> None:
    """(In the child, before it runs Python) take the capabilities that override file modes
    out of the bounding set, so a process of root's obeys ``chmod`` as any user's does."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _FILE_CAPABILITIES:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def run_python(code: str, env: Optional[dict] = None, timeout: float = 300,
               obey_file_modes: bool = False) -> subprocess.CompletedProcess:
    """Run ``code`` with ``env`` on top of this process's environment (a value of None
    removes the variable); returns the finished process (text output).
    ``obey_file_modes``: read-only files and directories stay read-only for the child even
    when this process is root's (Linux)."""
    full = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    drop = obey_file_modes and hasattr(os, "geteuid") and os.geteuid() == 0
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          preexec_fn=_drop_file_privileges if drop else None)


def describe(proc: subprocess.CompletedProcess) -> str:
    """The exit status and output of ``proc``, for an assertion message."""
    return f"exit status {proc.returncode}\n--- stdout ---\n{proc.stdout[-3000:]}" \
           f"\n--- stderr ---\n{proc.stderr[-3000:]}"
