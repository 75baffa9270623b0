"""The loop IR: a kernel as one linear list of ops, loops included.

Every renderer (C, CUDA) walks this list once, spelling each op from a table; nothing in a
renderer decides a loop order, a block size or what runs in parallel -- the passes of
:mod:`tinyjax.compiler.codegen.opts` decided that before the list was made
(:mod:`tinyjax.compiler.codegen.linearizer` makes it).

Each op is a :class:`~tinyjax.compiler.kernel.UOp` ``(op, dtype, srcs, arg)``, as in a
scheduled kernel's bodies; ``srcs`` index earlier ops of the same list (SSA).  The ops:

==============  ========================================================================
``RANGE``       opens a loop, ``arg`` a :class:`Range` (variable, bounds, kind); closed by
                the ``ENDRANGE`` whose ``srcs`` is ``(range,)``
``DEFINE_ACC``  an accumulator of ``dtype`` starting at the identity of ``arg`` (an
                :class:`Acc`: the reduce op, and a row of ``count`` of them indexed by
                ``index`` where a loop below the reduction runs over outputs)
``ACCUMULATE``  ``srcs = (acc, value)``: the accumulator combined with a value
``LOAD``        ``arg = (slot, index, valid)``: buffer ``slot`` at ``index`` where
                ``valid``, else 0; with a source, at ``index + srcs[0]`` (a gather)
``STORE``       ``arg = (slot, index, valid)``: ``srcs[0]`` written where ``valid``
``CONST``       ``arg`` the value
``INDEX``       ``arg`` a symbolic expression of the loop variables, as ``dtype``
``ALU``         ``arg`` the op name (:data:`tinyjax.compiler.ops.ALU_OPS`)
``CAST``        ``srcs[0]`` converted to ``dtype``; ``BITCAST`` its bits read as ``dtype``
==============  ========================================================================

A GPU kernel's loop IR (:mod:`tinyjax.compiler.codegen.gpu_linearizer`) also has:

==================  ====================================================================
``FUNCTION``        opens a launched function (``arg`` a :class:`Function`: its name and
                    launch geometry), closed by ``ENDFUNCTION``; a kernel may launch several
``SPECIAL``         ``arg`` a :class:`Special`: the thread's index in its block or the
                    block's in the grid, named
``DEFINE_VAR``      ``arg`` a :class:`Define`: a named integer (or boolean) of the loop
                    variables, symbolic (a :class:`~tinyjax.compiler.shape.symbolic.Node`)
                    or an :class:`Expr`
``DEFINE_LOCAL``    ``arg`` a :class:`Local`: an array in shared memory, in each thread's
                    registers or in module memory (a buffer's ``slot`` in ``LOAD``/``STORE``
                    may be one: ``srcs`` then start with it)
``IF``/``ENDIF``    the ops between run where ``arg`` (a condition) holds
``BARRIER``         every thread of the block waits for the others
``GROUP_REDUCE``    ``srcs = (acc,)``: the accumulator combined over the threads of one
                    output (``arg`` a :class:`Group`), every one of them left with the result
``GRID_REDUCE``     ``srcs = (acc,)``: the partial results of the blocks sharing an output
                    combined by the last of them to finish (the others return)
``VLOAD``           ``arg = (slot, index, lanes)``: consecutive elements in one access;
                    ``GEP`` (``arg`` the lane) reads one of them; ``VSTORE`` writes its
                    ``srcs`` (one per lane) in one access
``SORT``/``SCATTER``  a row sort (``arg`` its :class:`SortPlan`); a scatter update
                    (``srcs = (offset, value, valid)``, ``arg`` how it combines)
==================  ====================================================================

A CPU product's loop IR (:mod:`tinyjax.compiler.codegen.cpu_gemm_linearizer`) is functions
(``FUNCTION`` with a :class:`Routine`) that fill panels and finish tiles, and the kernel's
``GEMM`` (``arg`` a :class:`Product`): the support library's product driver -- its loops
over panels and tiles, its threads and its register-blocked micro-kernel -- called with the
product's plan and those functions (``srcs``).  A GPU product has
tile ops (:mod:`tinyjax.compiler.codegen.cuda_gemm`): ``TILE`` ops whose
``arg`` names the step (``stage`` a k-slice into shared memory, ``mma`` the tensor cores'
multiply of the fragments, ...) with its parameters, inside ``RANGE`` loops over k-slices,
k-steps and fragments.

A value op inside loops is recomputed per iteration of every loop around it; reading an
accumulator (an op whose source is a ``DEFINE_ACC``) gives its current value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from tinyjax.compiler.kernel import UOp, format_access
from tinyjax.compiler.shape.symbolic import Const, Node, render

__all__ = ["Range", "Acc", "LOOP_KINDS", "format_op", "format_uops", "VALUE_OPS", "Function",
           "Special", "Define", "Expr", "Local", "Group", "Routine", "Product"]

# what a loop is for: "global" runs over outputs, "reduce" over a reduction, "upcast" over a
# row of outputs below a reduction (each with its own accumulator); on a GPU "grid" strides
# over the launch's threads (each thread every gridDim * blockDim-th point)
LOOP_KINDS = ("global", "reduce", "upcast", "grid")
VALUE_OPS = frozenset({"LOAD", "CONST", "INDEX", "ALU", "CAST", "BITCAST"})


@dataclass(frozen=True)
class Range:
    """A loop ``for var in [lo, min(hi, cap))``.  ``parallel``: its iterations go to the
    threads (accumulators ``accs`` combined across them); ``simd``: they run in vector lanes
    (``accs`` combined across lanes); ``independent``: no iteration reads or writes memory
    that another writes (every store inside moves with ``var``; buffers never overlap), so
    a C compiler needs no run-time test of its pointers to vectorise it (a kernel writing
    three outputs from four inputs has too many pairs for GCC to test)."""
    var: str
    lo: Node
    hi: Node
    kind: str = "global"
    cap: Optional[int] = None
    parallel: bool = False
    simd: bool = False
    accs: tuple[int, ...] = ()
    # GPU loops: ``step`` between iterations (a thread's share of a reduce space); ``unroll``
    # the unroll hint (0: fully); ``guard`` a condition under which the loop runs at all,
    # tested as ``guard_style`` says ("and": with the bound, "bound": in the bound, "break":
    # at the top of the body, so that the trip count stays constant)
    step: int = 1
    unroll: Optional[int] = None
    guard: Optional[Node] = None
    guard_style: str = ""
    dtype: Optional[np.dtype] = None  # its variable's type (default: the function's index type)
    branchless: bool = False  # selects inside stay selects (the loads of an unrolled loop go
    #                           out back to back instead of behind branches)
    independent: bool = False

    @property
    def trips(self) -> int:
        """The most iterations (an upper bound for a block of a ragged loop)."""
        n = self.hi.vmax - self.lo.vmin if not isinstance(self.lo, Const) else \
            self.hi.vmax - self.lo.value
        return max(0, min(n, self.cap - self.lo.vmin) if self.cap is not None else n)

    def __str__(self) -> str:
        hi = _text(self.hi) if self.cap is None else f"min({_text(self.hi)}, {self.cap})"
        flags = "".join(f" {f}" for f, on in (("parallel", self.parallel), ("simd", self.simd))
                        if on)
        accs = f" accs={list(self.accs)}" if self.accs else ""
        step = f" step {self.step}" if self.step != 1 else ""
        unroll = "" if self.unroll is None else f" unroll {self.unroll or 'all'}"
        guard = f" while {_text(self.guard)}" if self.guard is not None else ""
        return f"{self.var} in [{_text(self.lo)}, {hi}){step} {self.kind}{flags}{accs}{unroll}{guard}"


@dataclass(frozen=True)
class Acc:
    """An accumulator of reduce op ``op``; ``count > 1``: a row of them, the one in use at
    ``index`` (a symbolic expression of the loop variables)."""
    op: str
    count: int = 1
    index: Optional[Node] = None

    def __str__(self) -> str:
        row = f"[{self.count}] at {render(self.index)}" if self.count > 1 else ""
        return f"{self.op}{row}"


@dataclass(frozen=True)
class Expr:
    """An integer or boolean expression beyond the affine ones of
    :mod:`~tinyjax.compiler.shape.symbolic`: ``op`` applied to ``args`` (nodes, expressions,
    numbers or names).  Ops: ``where`` (c ? a : b), ``min``, ``and``, ``or``, ``not``, ``eq``,
    ``ne``, ``lt``, ``ge``, ``add``, ``sub``, ``mul``, ``div``, ``mod``, ``shl``, ``shr``,
    ``bitand``, ``bitor``, ``xor``, ``aligned`` (every ``(slot, bytes)`` of ``args``: buffer
    ``slot`` starts on a multiple of ``bytes``), ``cast`` (``args = (type name, x)``)."""
    op: str
    args: tuple

    def __str__(self) -> str:
        return f"{self.op}({', '.join(_text(a) for a in self.args)})"


def _text(x) -> str:
    if isinstance(x, tuple):
        return "(" + ", ".join(_text(a) for a in x) + ")"
    return render(x) if isinstance(x, Node) else x.name if isinstance(x, np.dtype) else str(x)


@dataclass(frozen=True)
class Function:
    """A launched GPU function: the kernel's name followed by ``name`` (a suffix: a kernel
    may launch several functions), ``grid`` x ``block`` threads, ``shared`` bytes of
    dynamic shared memory, registers budgeted for ``bounds`` threads (0: no bound), index
    arithmetic in ``index`` (``"int"`` where every address fits in 31 bits, else
    ``"long"``); ``how``: the passes that shaped it, in a few words."""
    name: str
    grid: tuple
    block: tuple
    shared: int = 0
    bounds: int = 0
    index: str = "long"
    how: str = ""

    def __str__(self) -> str:
        return (f"{self.name} grid={list(self.grid)} block={list(self.block)} shared={self.shared}"
                f" index={self.index} ({self.how})")


@dataclass(frozen=True)
class Routine:
    """A function of a CPU kernel: the kernel itself (``name`` empty), or one the support
    library's product driver calls, named the kernel's name followed by ``name``, with the
    integer parameters ``params`` and the untyped pointer ``pointer`` (the panel it fills,
    the tile it reads)."""
    name: str
    params: tuple = ()
    pointer: str = ""

    def __str__(self) -> str:
        return f"{self.name or 'kernel'}({', '.join(self.params + (self.pointer,))})"


@dataclass(frozen=True)
class Product:
    """The product driver's call: ``outer`` products of ``M x N`` over ``K`` (``first``: the
    first reduce axis' extent, what split-K cuts into chunks) as ``plan`` (a
    :class:`~tinyjax.compiler.codegen.gemm.GemmLoops`) says; ``fns``: the kernel's function
    filling ``a``'s panels, ``b``'s, and its epilogue (each a name suffix, or None where
    the driver fills or stores a strided view itself)."""
    M: int
    N: int
    K: int
    first: int
    outer: int
    plan: object
    fns: tuple

    def __str__(self) -> str:
        return f"{self.outer} x {self.M}x{self.N}x{self.K} {self.plan} with {list(self.fns)}"


@dataclass(frozen=True)
class Special:
    """A thread's coordinate: ``what`` is ``thread`` (its index in the block), ``block``,
    ``block_y`` or ``block_z`` (its block's in the grid), below ``extent``."""
    name: str
    what: str
    extent: int

    def __str__(self) -> str:
        return f"{self.name} = {self.what} < {self.extent}"


@dataclass(frozen=True)
class Define:
    """A named value (``const`` in the rendered code): a node or an :class:`Expr`."""
    name: str
    value: object

    def __str__(self) -> str:
        return f"{self.name} = {_text(self.value)}"


@dataclass(frozen=True)
class Local:
    """An array ``name`` of ``size`` elements (a tuple: several dimensions) of the op's
    dtype: ``where`` is ``shared`` (per block), ``register`` (per thread; ``srcs``, where
    given, its initial values), ``module`` (one for the whole GPU, declared before the
    function, named the kernel's name followed by ``name``), ``dynamic`` (the launch's
    dynamic shared memory), ``argument`` (a CPU function's pointer argument named ``offset``,
    seen as this dtype) or ``view`` (the array ``srcs[0]`` seen as this dtype from element
    ``offset`` on -- from the next multiple of ``align`` bytes where given; ``inline``:
    spelled where it is used, not declared); ``qual``: ``const`` or ``volatile``.  A
    ``STORE`` to a local writes its value where ``valid`` holds and zero elsewhere (a tile's
    padding)."""
    name: str
    size: object
    where: str
    offset: object = 0
    align: int = 0
    qual: str = ""
    inline: bool = False

    def __str__(self) -> str:
        if self.where == "argument":
            return f"argument {self.name} = {self.offset}"
        size = "".join(f"[{n}]" for n in (self.size if isinstance(self.size, tuple) else
                                           (self.size,)))
        off = f" + {_text(self.offset)}" if self.offset else ""
        return f"{self.where} {self.name}{size}{off}" + (f" align {self.align}" if self.align else "")


@dataclass(frozen=True)
class Group:
    """``W`` threads per output point, ``P`` points per block, laid out ``rows`` (a point's
    threads consecutive) or ``cols`` (consecutive threads on consecutive points)."""
    layout: str
    W: int
    P: int

    def __str__(self) -> str:
        return f"{self.layout} W={self.W} P={self.P}"


def format_op(u: UOp) -> str:
    """One op of the loop IR on one line: name, dtype, sources, argument."""
    arg = u.arg
    if u.op in ("LOAD", "STORE") and isinstance(arg[0], int):
        arg = format_access(arg)
    elif u.op in ("LOAD", "STORE"):
        idx = arg[1] if isinstance(arg[1], tuple) else (arg[1],)
        arg = arg[0].name + "".join(f"[{_text(i)}]" for i in idx)
    elif u.op in ("VLOAD", "VSTORE"):
        arg = f"{'buf' + str(arg[0]) if arg[0] is not None else ''}[{_text(arg[1])}] x{arg[2]}"
    elif u.op in ("INDEX", "IF", "CP_ASYNC", "LDMATRIX", "ARRIVE", "SUM_SLOTS"):
        arg = _text(arg)
    dt = u.dtype.name if u.dtype is not None else ""
    return f"{u.op:<10} {dt:<8} {list(u.srcs)}" + ("" if arg is None else f" {arg}")


def format_uops(uops: list[UOp]) -> str:
    """The ops one per line, indented by loop depth (DEBUG=3 prints this)."""
    lines, depth = [], 0
    for i, u in enumerate(uops):
        if u.op in ("ENDRANGE", "ENDIF", "ENDFUNCTION"):
            depth -= 1
        lines.append(f"  %{i:<3} {'  ' * depth}{format_op(u)}")
        if u.op in ("RANGE", "IF", "FUNCTION"):
            depth += 1
    return "\n".join(lines)
