"""``jax.print_environment_info``: the versions and devices a bug report needs."""
from __future__ import annotations

import platform
import sys

import numpy as np

from tinyjax.backends import devices
from tinyjax.version import __version__, jax_api_version

__all__ = ["print_environment_info"]


def print_environment_info(return_string: bool = False) -> str | None:
    """Print (or return) tinyjax's version, the JAX API version it follows, numpy's and
    Python's versions, the devices and the platform."""
    devs = devices()
    info = "\n".join([
        f"tinyjax: {__version__}",
        f"jax API: {jax_api_version}",
        f"numpy:   {np.__version__}",
        f"python:  {sys.version}",
        f"device info: {devs[0].device_kind}-{len(devs)}, {len(devs)} local devices",
        "process_count: 1",
        f"platform: {platform.uname()}",
    ]) + "\n"
    if return_string:
        return info
    print(info)
    return None
