"""The C backend (the ``cpu`` device): kernels rendered as C (:mod:`tinyjax.backends.cstyle`,
matrix products by ``gemm``), built by the system C compiler (``compiler``) and launched on
numpy buffers (``runtime``)."""
