"""The CUDA backend (the ``cuda`` device): kernels rendered as CUDA C++ from
their GPU loop IR (``render``), compiled by NVRTC and run through the driver API (``driver``) on
device buffers (``runtime``)."""
