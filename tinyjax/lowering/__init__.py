"""Device-independent lowering machinery: symbolic index expressions, views and shape
trackers, the low-level op graph (``ops``), lowering rules per primitive (``rules``), the
scheduler (``schedule``), the kernel IR (``kernel``) and ``compile_jaxpr``."""


def compile_jaxpr(closed_jaxpr, device: str = "cpu"):
    """Compile a ClosedJaxpr into an :class:`~tinyjax.lowering.compiler.Executable`."""
    from tinyjax.lowering.compiler import compile_jaxpr as _compile
    return _compile(closed_jaxpr, device)
