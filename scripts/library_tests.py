"""Run a JAX library's own test suite against tinyjax and report the share that passes.

    python scripts/library_tests.py optax [--source DIR] [--sample-one-in N]
                                          [-- pytest options]

The suite is the library's repository at the tag of the release this project tests
(``LIBRARIES``), cloned into ``~/.cache/tinyjax/library-sources`` unless ``--source``
names a checkout.  It runs under ``python -m tinyjax -m pytest`` (``import jax`` is
tinyjax) with the tests listed in ``tests/ecosystem/deselected/<name>.txt`` deselected:
each section there (``## reason``) names tests that need several devices, TPUs, JAX's
compiler internals or packages not installed, or that fail with JAX itself (a line
naming a ``.py`` file leaves out the whole file, which may not even import).
``--sample-one-in N`` runs one selected test in N, chosen by a stable hash of its id
(``scripts/library_sample.py``): the same sample on every run, for a quicker estimate.  The
report counts the selected tests that pass, fail or error (tests the suite skips by
itself count for neither side) and checks the share against the acceptance threshold;
``--failures FILE`` writes the ids of the tests that did not pass.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

ROOT = Path(__file__).resolve().parents[1]
DESELECTED = ROOT / "tests" / "ecosystem" / "deselected"
CACHE = Path.home() / ".cache" / "tinyjax" / "library-sources"


class Library(NamedTuple):
    repository: str         # on GitHub
    tag: str                # the release the tests belong to (pip install --no-deps ...)
    paths: tuple[str, ...]  # test paths inside the repository
    threshold: float        # the share of selected tests that must pass
    pytest_args: tuple[str, ...] = ()  # what the suite needs on tinyjax (each one says why)


LIBRARIES = {
    "optax": Library("google-deepmind/optax", "v0.2.8", ("optax",), 0.95),
    "chex": Library("google-deepmind/chex", "v0.1.92", ("chex",), 0.95),
    # Equinox's conftest asks for two CPU devices (jax_num_cpu_devices), which tinyjax
    # answers with a warning that it has one, and its suite makes warnings errors
    "equinox": Library("patrick-kidger/equinox", "v0.13.8", ("tests",), 0.85,
                       ("-W", "ignore:jax_num_cpu_devices:UserWarning")),
    "flax-linen": Library("google/flax", "v0.12.8", ("tests/linen",), 0.85),
    "flax-nnx": Library("google/flax", "v0.12.8", ("tests/nnx",), 0.85),
    "haiku": Library("google-deepmind/dm-haiku", "v0.0.17", ("haiku",), 0.85),
}


@dataclass
class Outcome:
    passed: list[str]
    failed: list[str]
    skipped: list[str]

    @property
    def selected(self) -> int:
        return len(self.passed) + len(self.failed)

    @property
    def rate(self) -> float:
        return len(self.passed) / self.selected if self.selected else 0.0


def deselected(name: str) -> list[tuple[str, str]]:
    """(test id prefix, reason) for every test listed in ``deselected/<name>.txt``."""
    out, reason = [], None
    for line in (DESELECTED / f"{name}.txt").read_text().splitlines():
        line = line.strip()
        if line.startswith("## "):
            reason = line[3:]
        elif line and not line.startswith("#"):
            if reason is None:
                raise ValueError(f"{name}.txt: '{line}' comes before any '## reason' line")
            out.append((line, reason))
    return out


def checkout(library: Library) -> Path:
    """The library's repository at its tag, cloned into the cache on first use."""
    target = CACHE / f"{library.repository.replace('/', '+')}-{library.tag}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", library.tag,
                        f"https://github.com/{library.repository}", str(target)],
                       check=True)
    return target


def outcome_of(junit_xml: Path) -> Outcome:
    """The test ids that passed, failed (or errored) and were skipped, from pytest's
    JUnit XML report."""
    out = Outcome([], [], [])
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        test_id = _node_id(case.get("file", ""), case.get("classname", ""), case.get("name", ""))
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            out.failed.append(test_id)
        elif "skipped" in kinds:
            out.skipped.append(test_id)
        else:
            out.passed.append(test_id)
    return out


def _node_id(file: str, classname: str, name: str) -> str:
    """pytest's id of a test (``path/to/file.py::Class::test``) from its JUnit fields."""
    if not file:
        return f"{classname}::{name}"
    module = file[:-3].replace("/", ".")
    classes = classname[len(module) + 1:].split(".") if classname.startswith(module + ".") \
        else []
    return "::".join([file, *classes, name])


def run(name: str, source: Path | None = None, pytest_args: Sequence[str] = (),
        sample_one_in: int = 1, report: Path | None = None) -> Outcome:
    """Run the suite of library ``name`` on tinyjax (in ``source`` or a cached clone), or
    one test in ``sample_one_in`` of it; pytest's JUnit XML report is kept at ``report``
    if given."""
    library = LIBRARIES[name]
    source = checkout(library) if source is None else source
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml" if report is None else report.resolve()
        command = [sys.executable, "-m", "tinyjax", "-m", "pytest", *library.paths, "-q",
                   "-p", "no:cacheprovider", f"--junitxml={report}", "-o",
                   "junit_family=xunit1", *library.pytest_args, *pytest_args]
        for test_id, _ in deselected(name):
            command += ["--ignore" if test_id.endswith(".py") else "--deselect", test_id]
        if sample_one_in > 1:
            command += ["-p", "library_sample", "--sample-one-in", str(sample_one_in)]
        env = dict(os.environ)  # with this checkout of tinyjax (and the plugin) on the path
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), str(ROOT / "scripts"), env.get("PYTHONPATH")) if p)
        subprocess.run(command, cwd=source, env=env)
        return outcome_of(report)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("library", choices=sorted(LIBRARIES))
    parser.add_argument("--source", type=Path, help="a checkout of the library at its tag")
    parser.add_argument("--failures", type=Path, help="write the ids of tests not passing")
    parser.add_argument("--sample-one-in", type=int, default=1, metavar="N",
                        help="run one selected test in N (a stable sample)")
    parser.add_argument("--report", type=Path, help="keep pytest's JUnit XML report here")
    args, pytest_args = parser.parse_known_args(argv)
    outcome = run(args.library, args.source, [a for a in pytest_args if a != "--"],
                  args.sample_one_in, args.report)
    library = LIBRARIES[args.library]
    sample = f" (a sample: one in {args.sample_one_in})" if args.sample_one_in > 1 else ""
    print(f"{args.library} {library.tag}{sample}: {outcome.selected} selected tests ran, "
          f"{len(outcome.passed)} passed, {len(outcome.failed)} failed or errored "
          f"({len(outcome.skipped)} skipped by the suite itself, "
          f"{len(deselected(args.library))} deselected): {100 * outcome.rate:.1f} % pass "
          f"(required: {100 * library.threshold:.0f} %)")
    if args.failures:
        args.failures.write_text("".join(f"{t}\n" for t in outcome.failed))
    return 0 if outcome.rate >= library.threshold else 1


if __name__ == "__main__":
    sys.exit(main())
