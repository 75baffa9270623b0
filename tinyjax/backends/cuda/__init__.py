"""The CUDA backend (the ``cuda`` device): kernels rendered as CUDA C++ (``render``, matrix
products by ``gemm``), compiled by NVRTC and run through the driver API (``driver``) on
device buffers (``runtime``)."""
