"""The compiler: a jaxpr becomes a graph of low-level ops (``lower``; movement ops fold into
views, ``shape``), the graph is fused into kernels (``schedule``, ``kernel``), each kernel's
loops are spelled out and optimised (``codegen``: loop IR and passes), and the kernels run as
an executable over planned buffers (``executable``; with control flow, ``program``).
Nothing here is device specific: a backend renders and runs the kernels."""
