"""Run Python code in a fresh interpreter (a crash -- SIGBUS, SIGSEGV -- fails the calling
test, not the test run), importing the tinyjax of this checkout."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = str(Path(__file__).resolve().parent.parent)


def run_python(code: str, env: Optional[dict] = None, timeout: float = 300
               ) -> subprocess.CompletedProcess:
    """Run ``code`` with ``env`` on top of this process's environment (a value of None
    removes the variable); returns the finished process (text output)."""
    full = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def describe(proc: subprocess.CompletedProcess) -> str:
    """The exit status and output of ``proc``, for an assertion message."""
    return f"exit status {proc.returncode}\n--- stdout ---\n{proc.stdout[-3000:]}" \
           f"\n--- stderr ---\n{proc.stderr[-3000:]}"
