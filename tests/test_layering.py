"""No import runs from a lower layer to a higher one -- at module scope or inside a function
-- and no modules import each other in a circle.

Every module of the package is parsed (ast, function bodies included) and mapped to its
layer; an import is allowed to a module of the same layer or of a lower one.  The layers,
top to bottom (docs/design.rst states them in the same words):

1. api -- the user API and the transforms: the package itself, ``api``, ``api_util``,
   ``custom_derivatives``, ``ad_checkpoint``, ``dispatch``, ``numpy``, ``nn``, ``random``,
   ``scipy``, ``example_libraries``, ``test_util``;
2. compiler -- ``compiler.lower``, ``compiler.schedule``, ``compiler.program``,
   ``compiler.executable``: lax's primitives lowered, fused and run on a backend it is given;
3. lax -- the primitives and their rules;
4. interpreters -- the traces and their rule tables;
5. core -- ``core``, ``jaxpr``, ``array``: avals, primitives, traces, jaxprs, arrays;
6. backends -- ``backends``: devices, and the kernels rendered, compiled and run on them;
7. kernel IR -- ``compiler.ops``, ``compiler.kernel``, ``compiler.shape``: what the compiler
   hands the backends;
8. base -- ``config``, ``errors``, ``dtypes``, ``tree_util``.

Where a lower layer needs something from a higher one (eager dispatch onto a device, the
default device, the semantics of an ALU op), the higher layer registers it at import time.
"""
import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinyjax"

# (layer, module prefixes), top to bottom; a module takes the layer of its longest prefix
LAYERS = [
    ("api", ["tinyjax", "tinyjax.api", "tinyjax.api_util", "tinyjax.custom_derivatives",
             "tinyjax.ad_checkpoint", "tinyjax.dispatch", "tinyjax.numpy", "tinyjax.nn",
             "tinyjax.random", "tinyjax.scipy", "tinyjax.example_libraries",
             "tinyjax.test_util"]),
    ("compiler", ["tinyjax.compiler", "tinyjax.compiler.lower", "tinyjax.compiler.schedule",
                  "tinyjax.compiler.program", "tinyjax.compiler.executable"]),
    ("lax", ["tinyjax.lax"]),
    ("interpreters", ["tinyjax.interpreters"]),
    ("core", ["tinyjax.core", "tinyjax.jaxpr", "tinyjax.array"]),
    ("backends", ["tinyjax.backends"]),
    ("kernel IR", ["tinyjax.compiler.ops", "tinyjax.compiler.kernel", "tinyjax.compiler.shape",
                   "tinyjax.compiler.steps", "tinyjax.compiler.walk"]),
    ("base", ["tinyjax.config", "tinyjax.errors", "tinyjax.dtypes", "tinyjax.tree_util"]),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}  # 0 is the top


@functools.lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def layer_of(module: str) -> str:
    best, best_len = None, -1
    for name, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = name, len(p)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imports(module: str, path: Path, known: dict) -> list[tuple[int, str]]:
    """(line, imported tinyjax module) for every import in the file, functions included."""
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in known else src
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != module:
                out.append((node.lineno, t))
    return out


def upward_imports() -> list[str]:
    known = modules()
    bad = []
    for module, path in known.items():
        rank = RANK[layer_of(module)]
        for line, target in imports(module, path, known):
            if RANK[layer_of(target)] < rank:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} "
                           f"({layer_of(module)}) imports {target} ({layer_of(target)})")
    return bad


def import_circles() -> list[list[str]]:
    """The strongly connected components (more than one module) of the import graph."""
    known = modules()
    graph = {m: {t for _, t in imports(m, p, known)} for m, p in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return circles


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_no_import_runs_upward():
    bad = upward_imports()
    assert not bad, "imports from a lower layer to a higher one:\n" + "\n".join(bad)


def test_no_import_circles():
    """Within a layer too, modules import each other one way (late bindings are registered)."""
    assert not import_circles(), import_circles()


@pytest.mark.parametrize("module, target, allowed", [
    ("tinyjax.core", "tinyjax.dispatch", False),
    ("tinyjax.lax.elementwise", "tinyjax.interpreters.ad", True),
    ("tinyjax.backends.interp", "tinyjax.lax.elementwise", False),
    ("tinyjax.compiler.lower.dot", "tinyjax.lax.dot", True),
    ("tinyjax.compiler.executable", "tinyjax.backends", True),
    ("tinyjax.backends.cstyle", "tinyjax.compiler.lower.jaxpr", False),
    ("tinyjax.backends.cstyle", "tinyjax.compiler.kernel", True),
    ("tinyjax.array", "tinyjax.backends", True),
    ("tinyjax.interpreters.ad", "tinyjax.lax", False),
    ("tinyjax.api", "tinyjax.numpy", True),
])
def test_the_order_of_the_layers(module, target, allowed):
    assert (RANK[layer_of(target)] >= RANK[layer_of(module)]) == allowed
