"""Test speed: MindSpore's stock gradient kernels as ``UNet3Plus``'s default, for tests of training mechanics.

The shipped default, the lean backward (``unet3plus/networks/lean_conv.py``), compiles a 2 x 1 x 32 x 32
training step in about 11.5 s where the stock kernels take 2.7 s (Intel Xeon, 2 cores), and its steps are
4x slower at that size. Resume, kill, Ctrl-C and msrun tests check the loop, not the kernels, and
tests/test_lean_conv.py checks that both kernels give the same gradients and weights; so those tests use
the stock ones, while test_learning, test_volume_training, test_share and the CLI run of test_training keep
the default.

    python tests/stock_gradients.py train ...   # `python -m unet3plus train ...` with the stock kernels
"""
from __future__ import annotations

import runpy
import sys
from typing import List

from unet3plus import UNet3Plus

DEFAULTS = UNet3Plus.__init__.__kwdefaults__


def use_stock_gradients() -> None:
    """For this process (tests use the ``stock_gradients`` fixture, which undoes it)."""
    DEFAULTS["lean_backward"] = False


def cli_command(*args: str) -> List[str]:
    """The argv of ``python -m unet3plus *args`` with the stock kernels."""
    return [sys.executable, __file__, *args]


if __name__ == "__main__":
    use_stock_gradients()
    sys.argv = ["unet3plus", *sys.argv[1:]]
    runpy.run_module("unet3plus", run_name="__main__", alter_sys=True)
